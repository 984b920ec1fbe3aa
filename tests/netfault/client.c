/*
 * The client side of the network-fault suite (tests/netfault/run.sh): one session (cloudauth)
 * or one reused easy handle (libcurl), the same timeouts, driven line by line from stdin so the
 * runner can change the network between calls.
 *
 *   netfault_client cloudauth|curl BASE_URL TIMEOUT_MS CONNECT_TIMEOUT_MS
 *
 * stdin, one call per line:  TOKEN | GET <path> | POST <path> <body bytes> | STATS
 * stdout, one line per call: <class> <code> <http status> <body bytes> <elapsed ms> <body ok>
 *   class: ok | timeout | network | other.  STATS prints "stats <token requests> <api requests>"
 *   as the client counted them (cloudauth_session_stats; libcurl: this program's own count).
 *
 * The libcurl side is what a careful libcurl user writes: one handle for every call (its
 * connection cache), CURLOPT_TIMEOUT_MS / CURLOPT_CONNECTTIMEOUT_MS, a token fetched once from
 * /connect/token and sent as a Bearer header, "Expect:" off, no signals.
 */
#define _POSIX_C_SOURCE 200809L
#include <cloudauth.h>
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The body of a POST of n bytes: a pattern the echo must give back. */
static unsigned char *pattern(size_t n)
{
    unsigned char *b = malloc(n ? n : 1);
    size_t i;
    for (i = 0; i < n; i++)
        b[i] = (unsigned char)('a' + (i * 7 + i / 26) % 26);
    return b;
}

struct outcome {
    const char *klass;
    char code[64];
    long status;
    size_t body_len;
    int body_ok;
};

/* ---- cloudauth ------------------------------------------------------------------------------ */

static cloudauth_session *ca;

static void ca_open(const char *base, const char *timeout, const char *connect_timeout)
{
    cloudauth_config *cfg = cloudauth_config_new();
    char token_url[512];
    snprintf(token_url, sizeof token_url, "%s/connect/token", base);
    if (cloudauth_config_set(cfg, "client_id", "demo-client") ||
        cloudauth_config_set(cfg, "client_secret", "demo-secret") ||
        cloudauth_config_set(cfg, "token_url", token_url) ||
        cloudauth_config_set(cfg, "base_url", base) ||
        cloudauth_config_set(cfg, "allow_insecure_http", "true") ||
        cloudauth_config_set(cfg, "timeout_ms", timeout) ||
        cloudauth_config_set(cfg, "connect_timeout_ms", connect_timeout) ||
        cloudauth_session_new(cfg, &ca)) {
        fprintf(stderr, "netfault_client: cloudauth setup: %s\n", cloudauth_last_error());
        exit(2);
    }
    cloudauth_config_free(cfg);
}

static const char *ca_class(cloudauth_result rc)
{
    switch (rc) {
    case CLOUDAUTH_OK: return "ok";
    case CLOUDAUTH_ERR_TIMEOUT: return "timeout";
    case CLOUDAUTH_ERR_NETWORK: return "network";
    default: return "other";
    }
}

static void ca_call(const char *method, const char *path, size_t n, struct outcome *o)
{
    cloudauth_response *r = NULL;
    cloudauth_result rc;
    unsigned char *body = NULL;
    if (strcmp(method, "TOKEN") == 0) {
        char token[4096];
        size_t len = 0;
        rc = cloudauth_session_token(ca, token, sizeof token, &len);
        o->body_len = rc == CLOUDAUTH_OK ? len : 0;
        o->body_ok = rc == CLOUDAUTH_OK && len > 0;
    } else {
        if (n)
            body = pattern(n);
        rc = cloudauth_session_request(ca, method, path, NULL, 0, body, n, &r);
        if (rc == CLOUDAUTH_OK) {
            size_t len = 0;
            const uint8_t *b = cloudauth_response_body(r, &len);
            o->status = cloudauth_response_status(r);
            o->body_len = len;
            o->body_ok = body ? len == n && memcmp(b, body, n) == 0 : 1;
        }
        cloudauth_response_free(r);
        free(body);
    }
    o->klass = ca_class(rc);
    snprintf(o->code, sizeof o->code, "%s", cloudauth_result_name(rc));
    if (rc != CLOUDAUTH_OK)
        fprintf(stderr, "  cloudauth %s %s: %s\n", method, path, cloudauth_last_error());
}

/* ---- libcurl -------------------------------------------------------------------------------- */

static CURL *cu;
static char cu_base[512], cu_token[4096];
static unsigned long cu_token_requests, cu_api_requests;

struct buf {
    unsigned char *data;
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *user)
{
    struct buf *b = user;
    unsigned char *grown = realloc(b->data, b->len + size * n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, p, size * n);
    b->len += size * n;
    return size * n;
}

static void cu_open(const char *base, long timeout, long connect_timeout)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cu = curl_easy_init();
    snprintf(cu_base, sizeof cu_base, "%s", base);
    curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, collect);
}

static const char *cu_class(CURLcode c)
{
    switch (c) {
    case CURLE_OK: return "ok";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_COULDNT_RESOLVE_HOST:
        return "network";
    default: return "other";
    }
}

/* One exchange on the reused handle; returns the curl code, fills status and body. */
static CURLcode cu_exchange(const char *method, const char *url, const unsigned char *body,
                            size_t n, const char *auth, long *status, struct buf *out)
{
    struct curl_slist *h = NULL;
    char header[4200];
    CURLcode c;
    h = curl_slist_append(h, "Expect:");
    if (auth) {
        snprintf(header, sizeof header, "Authorization: %s", auth);
        h = curl_slist_append(h, header);
    }
    curl_easy_setopt(cu, CURLOPT_URL, url);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, out);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(cu, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    }
    c = curl_easy_perform(cu);
    *status = 0;
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    return c;
}

/* Fetches a token into cu_token (client_secret_post, as cloudauth's default). */
static CURLcode cu_fetch_token(void)
{
    static const char form[] =
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret";
    char url[600];
    struct buf b = {NULL, 0};
    long status = 0;
    CURLcode c;
    const char *at, *end;
    snprintf(url, sizeof url, "%s/connect/token", cu_base);
    cu_token_requests++;
    c = cu_exchange("POST", url, (const unsigned char *)form, sizeof form - 1, NULL, &status, &b);
    cu_token[0] = 0;
    if (c == CURLE_OK && status == 200 && b.data) {
        b.data[b.len] = 0;
        at = strstr((char *)b.data, "\"access_token\"");
        at = at ? strchr(at + 14, '"') : NULL;
        end = at ? strchr(at + 1, '"') : NULL;
        if (end && (size_t)(end - at) < sizeof cu_token - 8)
            snprintf(cu_token, sizeof cu_token, "Bearer %.*s", (int)(end - at - 1), at + 1);
    }
    free(b.data);
    return c;
}

static void cu_call(const char *method, const char *path, size_t n, struct outcome *o)
{
    CURLcode c;
    if (strcmp(method, "TOKEN") == 0) {
        c = cu_token[0] ? CURLE_OK : cu_fetch_token();
        o->body_len = strlen(cu_token);
        o->body_ok = cu_token[0] != 0;
    } else {
        char url[2400];
        unsigned char *body = n ? pattern(n) : NULL;
        struct buf b = {NULL, 0};
        int attempt;
        if (!cu_token[0])
            cu_fetch_token();
        snprintf(url, sizeof url, "%s%s", cu_base, path);
        for (attempt = 0; attempt < 2; attempt++) {
            free(b.data);
            b.data = NULL;
            b.len = 0;
            cu_api_requests++;
            c = cu_exchange(method, url, body, n, cu_token, &o->status, &b);
            /* A 401: a new token and one resend, as cloudauth does. */
            if (c != CURLE_OK || o->status != 401 || attempt == 1)
                break;
            cu_fetch_token();
        }
        o->body_len = c == CURLE_OK ? b.len : 0;
        o->body_ok = c == CURLE_OK && (body ? b.len == n && memcmp(b.data, body, n) == 0 : 1);
        free(b.data);
        free(body);
    }
    o->klass = cu_class(c);
    snprintf(o->code, sizeof o->code, "CURLE_%d", (int)c);
    if (c != CURLE_OK)
        fprintf(stderr, "  libcurl %s %s: %s\n", method, path, curl_easy_strerror(c));
}

int main(int argc, char **argv)
{
    char line[2048];
    int curl;
    if (argc != 5) {
        fprintf(stderr, "usage: %s cloudauth|curl BASE_URL TIMEOUT_MS CONNECT_TIMEOUT_MS\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl = strcmp(argv[1], "curl") == 0;
    if (curl)
        cu_open(argv[2], atol(argv[3]), atol(argv[4]));
    else
        ca_open(argv[2], argv[3], argv[4]);
    while (fgets(line, sizeof line, stdin)) {
        char method[16] = "", path[1800] = "";
        unsigned long n = 0;
        struct outcome o;
        double start;
        if (sscanf(line, "%15s %1799s %lu", method, path, &n) < 1)
            continue;
        if (strcmp(method, "STATS") == 0) {
            if (curl) {
                printf("stats %lu %lu\n", cu_token_requests, cu_api_requests);
            } else {
                cloudauth_stats st;
                memset(&st, 0, sizeof st);
                cloudauth_session_stats(ca, &st, sizeof st);
                printf("stats %llu %llu\n", (unsigned long long)st.token_requests,
                       (unsigned long long)st.api_requests);
            }
            continue;
        }
        memset(&o, 0, sizeof o);
        start = now_ms();
        if (curl)
            cu_call(method, path, n, &o);
        else
            ca_call(method, path, n, &o);
        printf("%s %s %ld %zu %.0f %d\n", o.klass, o.code, o.status, o.body_len, now_ms() - start,
               o.body_ok);
    }
    if (curl) {
        curl_easy_cleanup(cu);
        curl_global_cleanup();
    } else {
        cloudauth_session_free(ca);
    }
    return 0;
}
