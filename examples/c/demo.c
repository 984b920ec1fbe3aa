/*
 * cloudauth demo in C: the reference usage of the C API.
 *
 * It runs an OCR job the way an Aspose.OCR Cloud client does, against the local stand-in
 * (tests/standin/server.py). `make demo` starts the stand-in and sets STANDIN_URL.
 *
 *   1. configure a session: client credentials, token endpoint, API base URL;
 *   2. get the access token, only to show its size and lifetime (never print a token);
 *   3. submit an image: POST /v5.0/ocr/RecognizeImage answers with a task id;
 *   4. poll GET /v5.0/ocr/RecognizeImage?id=<task> until the task is Completed;
 *   5. decode and print the recognized text.
 *
 * Against the real Aspose Cloud, leave token_url and base_url at their defaults and set your
 * own client_id and client_secret. Step 2 is optional: every request fetches, caches and
 * refreshes the token by itself, and retries once with a fresh one after a 401.
 *
 * Every cloudauth function that can fail returns a cloudauth_result; when it is not
 * CLOUDAUTH_OK, cloudauth_last_error() says why, on the calling thread.
 *
 * Build:  cc -std=c99 -Iinclude examples/c/demo.c -Ltarget/release -lcloudauth
 * Run:    STANDIN_URL=http://127.0.0.1:<port> ./demo     (tests/run/demo.sh does both)
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <cloudauth.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The "scanned document": an 8x8 grayscale PNG of the letter H. */
static const uint8_t IMAGE_PNG[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0xe1,
    0x64, 0xe1, 0x57, 0x00, 0x00, 0x00, 0x18, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8,
    0x0f, 0x05, 0x0c, 0x40, 0x08, 0xa5, 0x10, 0x0c, 0x30, 0xc0, 0x2e, 0x85, 0xa4, 0x07, 0x04,
    0x00, 0xa7, 0xf4, 0x2f, 0xd1, 0x8a, 0xd7, 0x08, 0x6a, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

#define OCR_PATH "/v5.0/ocr/RecognizeImage"
#define MAX_POLLS 20           /* give up after this many status checks */
#define POLL_INTERVAL_MS 250   /* between two status checks */

/* ---- small helpers: base64 and just enough JSON for these answers ------------------------ */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, NUL-terminated, malloc'd (NULL if out of memory). */
static char *base64_encode(const uint8_t *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    size_t i;
    if (out == NULL)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t n = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = B64[n >> 18 & 63];
        *o++ = B64[n >> 12 & 63];
        *o++ = B64[n >> 6 & 63];
        *o++ = B64[n & 63];
    }
    if (i < len) { /* one or two bytes left */
        uint32_t n = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        *o++ = B64[n >> 18 & 63];
        *o++ = B64[n >> 12 & 63];
        *o++ = i + 1 < len ? B64[n >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* Decodes base64, standard or URL-safe, padding optional. Returns a malloc'd buffer with a
 * NUL after the *out_len bytes, or NULL if the text is not base64. */
static uint8_t *base64_decode(const char *text, size_t len, size_t *out_len)
{
    uint8_t *out = malloc(len / 4 * 3 + 4);
    uint32_t acc = 0;
    size_t i, n = 0;
    int bits = 0;
    if (out == NULL)
        return NULL;
    for (i = 0; i < len && text[i] != '='; i++) {
        const char *p = strchr(B64, text[i]);
        int v = text[i] == '-' ? 62 : text[i] == '_' ? 63 : p && *p ? (int)(p - B64) : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits & 0xff);
        }
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Where the value of "key" starts in a JSON text, or NULL. A plain search, good enough for the
 * small, known answers of this demo; a real program would use a JSON library. */
static const char *json_value(const char *json, const char *key)
{
    size_t klen = strlen(key);
    const char *p = json;
    while ((p = strchr(p, '"')) != NULL) {
        if (strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
            p += klen + 2;
            p += strspn(p, " \t\r\n");
            if (*p == ':')
                return p + 1 + strspn(p + 1, " \t\r\n");
        }
        p++;
    }
    return NULL;
}

/* The string value of "key" (simple escapes undone), malloc'd; NULL if absent or no string. */
static char *json_string(const char *json, const char *key)
{
    const char *p = json_value(json, key);
    char *out, *o;
    if (p == NULL || *p != '"')
        return NULL;
    out = o = malloc(strlen(p));
    if (out == NULL)
        return NULL;
    for (p++; *p != '\0' && *p != '"'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++; /* \" \\ \/ : keep the escaped character */
        *o++ = *p;
    }
    *o = '\0';
    return out;
}

/* A response body as a NUL-terminated string, malloc'd. */
static char *body_text(const cloudauth_response *response)
{
    size_t len = 0;
    const uint8_t *body = cloudauth_response_body(response, &len);
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    if (len > 0)
        memcpy(text, body, len);
    text[len] = '\0';
    return text;
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = ms % 1000 * 1000000L;
    nanosleep(&ts, NULL);
}

/* ---- the demo's steps ---------------------------------------------------------------------- */

/* Prints which step failed, the result's name and the library's message. */
static void report(const char *step, cloudauth_result rc)
{
    fprintf(stderr, "demo: %s failed: %s: %s\n", step, cloudauth_result_name(rc),
            cloudauth_last_error());
}

/* Prints an HTTP answer that is not what the step expected. */
static void report_status(const char *step, const cloudauth_response *response)
{
    char *body = body_text(response);
    fprintf(stderr, "demo: %s failed: HTTP %u: %.300s\n", step,
            (unsigned)cloudauth_response_status(response), body ? body : "");
    free(body);
}

/* Step 2: the token's size and lifetime. The size protocol: a NULL buffer asks for the length
 * (CLOUDAUTH_ERR_BUFFER_TOO_SMALL, with *token_len set), then a buffer of length + 1 gets it. */
static int show_token(cloudauth_session *session)
{
    size_t token_len = 0;
    uint64_t seconds_left = 0;
    char *token;
    cloudauth_result rc = cloudauth_session_token(session, NULL, 0, &token_len);
    if (rc != CLOUDAUTH_ERR_BUFFER_TOO_SMALL) {
        report("getting the access token", rc);
        return 0;
    }
    token = malloc(token_len + 1);
    if (token == NULL)
        return 0;
    rc = cloudauth_session_token(session, token, token_len + 1, &token_len);
    if (rc != CLOUDAUTH_OK) {
        report("getting the access token", rc);
        free(token);
        return 0;
    }

    /* How long the token has left, from the token response's expires_in. The session refreshes
     * it before then by itself; this is only for display. */
    rc = cloudauth_session_token_expires_in(session, &seconds_left);
    if (rc != CLOUDAUTH_OK) {
        report("reading the token's lifetime", rc);
        memset(token, 0, token_len);
        free(token);
        return 0;
    }
    printf("token: %zu bytes, expires in %llu s; the session refreshes it before then\n", token_len,
           (unsigned long long)seconds_left);

    memset(token, 0, token_len); /* a credential: do not leave it lying around */
    free(token);
    return 1;
}

/* Step 3: POST the image; returns the task id (malloc'd) or NULL. */
static char *submit_image(cloudauth_session *session)
{
    static const char *const headers[] = {"Content-Type: application/json"};
    cloudauth_response *response = NULL;
    cloudauth_result rc;
    char *image = base64_encode(IMAGE_PNG, sizeof IMAGE_PNG), *body, *task = NULL;
    size_t body_cap;
    if (image == NULL)
        return NULL;
    body_cap = strlen(image) + 128;
    body = malloc(body_cap);
    if (body == NULL) {
        free(image);
        return NULL;
    }
    snprintf(body, body_cap,
             "{\"image\": \"%s\", \"settings\": {\"language\": \"English\", "
             "\"makeSkewCorrect\": true}}",
             image);
    free(image);

    /* A path is joined to base_url; the session adds "Authorization: Bearer <token>". */
    rc = cloudauth_session_request(session, "POST", OCR_PATH, headers, 1,
                                   (const uint8_t *)body, strlen(body), &response);
    free(body);
    if (rc != CLOUDAUTH_OK) {
        report("submitting the image", rc);
        return NULL;
    }
    /* Any HTTP status is CLOUDAUTH_OK: the status is ours to check. */
    if (cloudauth_response_status(response) != 200) {
        report_status("submitting the image", response);
    } else {
        task = body_text(response); /* the answer is the bare task id */
        if (task != NULL) {
            task[strcspn(task, " \t\r\n\"")] = '\0';
            /* It goes into a URL: accept only what a UUID is made of. */
            if (task[0] == '\0' ||
                strspn(task, "0123456789abcdefABCDEF-") != strlen(task)) {
                fprintf(stderr, "demo: submitting the image failed: unexpected task id\n");
                free(task);
                task = NULL;
            }
        }
    }
    cloudauth_response_free(response); /* the body above was copied first */
    return task;
}

/* Step 4: poll until Completed; returns the JSON of the finished task (malloc'd) or NULL. */
static char *wait_for_task(cloudauth_session *session, const char *task)
{
    char url[256];
    int poll;
    snprintf(url, sizeof url, OCR_PATH "?id=%s", task);
    for (poll = 1; poll <= MAX_POLLS; poll++) {
        cloudauth_response *response = NULL;
        cloudauth_result rc =
            cloudauth_session_request(session, "GET", url, NULL, 0, NULL, 0, &response);
        char *json, *status;
        if (rc != CLOUDAUTH_OK) {
            report("polling the task", rc);
            return NULL;
        }
        if (cloudauth_response_status(response) != 200) {
            report_status("polling the task", response);
            cloudauth_response_free(response);
            return NULL;
        }
        json = body_text(response);
        cloudauth_response_free(response);
        status = json ? json_string(json, "taskStatus") : NULL;
        printf("poll %d: %s\n", poll, status ? status : "(no taskStatus)");
        if (status != NULL && strcmp(status, "Completed") == 0) {
            free(status);
            return json;
        }
        if (status == NULL ||
            (strcmp(status, "Pending") != 0 && strcmp(status, "Processing") != 0)) {
            fprintf(stderr, "demo: the OCR task failed: %.300s\n", json ? json : "");
            free(status);
            free(json);
            return NULL;
        }
        free(status);
        free(json);
        sleep_ms(POLL_INTERVAL_MS);
    }
    fprintf(stderr, "demo: the OCR task was not done after %d polls\n", MAX_POLLS);
    return NULL;
}

int main(void)
{
    const char *standin = getenv("STANDIN_URL");
    char token_url[512];
    cloudauth_config *config = NULL;
    cloudauth_session *session = NULL;
    cloudauth_result rc;
    char *task = NULL, *result = NULL, *data = NULL;
    uint8_t *text = NULL;
    size_t text_len = 0, i;
    int exit_code = 1;

    if (standin == NULL || standin[0] == '\0') {
        fprintf(stderr, "demo: STANDIN_URL is not set; run it with tests/run/demo.sh "
                        "(or `make demo`), which starts the local stand-in\n");
        return 2;
    }
    snprintf(token_url, sizeof token_url, "%s/connect/token", standin);
    printf("cloudauth %s, Aspose stand-in at %s\n", cloudauth_version(), standin);

    /* Step 1: a config is a set of string keys; the session copies it. */
    {
        const char *const settings[][2] = {
            {"client_id", "demo-client"},
            {"client_secret", "demo-secret"},
            {"token_url", token_url},
            {"base_url", standin},
        };
        config = cloudauth_config_new();
        for (i = 0; i < sizeof settings / sizeof settings[0]; i++) {
            rc = cloudauth_config_set(config, settings[i][0], settings[i][1]);
            if (rc != CLOUDAUTH_OK) {
                report("configuring", rc); /* the message names the key */
                goto done;
            }
        }
    }
    rc = cloudauth_session_new(config, &session); /* checks the config; sends nothing yet */
    cloudauth_config_free(config);               /* the session has its own copy */
    config = NULL;
    if (rc != CLOUDAUTH_OK) {
        report("creating the session", rc);
        goto done;
    }

    /* Step 2. */
    if (!show_token(session))
        goto done;

    /* Step 3. */
    task = submit_image(session);
    if (task == NULL)
        goto done;
    printf("OCR task %s submitted (%zu-byte PNG)\n", task, sizeof IMAGE_PNG);

    /* Step 4. */
    result = wait_for_task(session, task);
    if (result == NULL)
        goto done;

    /* Step 5: results[0].data is the recognized text, base64-encoded. */
    data = json_string(result, "data");
    text = data ? base64_decode(data, strlen(data), &text_len) : NULL;
    if (text == NULL) {
        fprintf(stderr, "demo: the finished task has no readable results[0].data: %.300s\n",
                result);
        goto done;
    }
    printf("recognized text: %.*s\n", (int)text_len, (const char *)text);
    exit_code = 0;

done:
    free(text);
    free(data);
    free(result);
    free(task);
    cloudauth_session_free(session); /* NULL is fine */
    cloudauth_config_free(config);
    return exit_code;
}
