/*
 * The hostile suite: cloudauth against a server that misbehaves on purpose
 * (tests/hostile/server.py, two origins on 127.0.0.1) and a caller that misuses every function.
 *
 * For every case it checks the exact result code, that the call ended within a time bound (no
 * hang), and that cloudauth_last_error() is one line of bounded length holding no secret in any
 * encoding (raw, form-encoded, percent-encoded, base64 of the Basic pair, the decoded pair, or
 * any 12-character piece of those) and no token. The process surviving is the last check.
 *
 *   hostile [FILTER]     runs the cases whose "group/name" contains FILTER
 *
 * Environment: HOSTILE_PORTS="<main> <other>" (set by tests/run/hostile.sh);
 * CLOUDAUTH_TEST_TIME_FACTOR stretches timeouts and time bounds (valgrind).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloudauth.h"

/* ---- credentials and their forbidden forms ---------------------------------------------- */

/* Long, with every character that encodings change, so each form differs from the others. */
static const char *const SECRET = "Sx7+Qv/z%q:&=s3cr3t value~0123456789-ABCDEFGHIJ.klmnop";
static const char *const CLIENT_ID = "hostile client";

#define MAX_FORMS 16
static char *forms[MAX_FORMS];
static int n_forms;

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) abort();
    memcpy(p, s, n);
    return p;
}

static void add_form(const char *s) {
    if (n_forms < MAX_FORMS) forms[n_forms++] = xstrdup(s);
}

/* application/x-www-form-urlencoded (what the body carries), hex in upper or lower case */
static char *form_encode(const char *s, int lower, int space_plus) {
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    if (!out) abort();
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*' || (c == '~' && !space_plus)) {
            *o++ = (char)c;
        } else if (c == ' ' && space_plus) {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = 0;
    return out;
}

static char *base64(const char *s) {
    static const char *alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), i;
    char *out = malloc(n / 3 * 4 + 8), *o = out;
    if (!out) abort();
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = ((unsigned char)s[i] << 16) | ((unsigned char)s[i + 1] << 8) |
                     (unsigned char)s[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned char)s[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        unsigned v = ((unsigned char)s[i] << 16) | ((unsigned char)s[i + 1] << 8);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static void build_forms(void) {
    char pair[512];
    char *f_up = form_encode(SECRET, 0, 1), *f_low = form_encode(SECRET, 1, 1);
    char *p20 = form_encode(SECRET, 0, 0), *id = form_encode(CLIENT_ID, 0, 1), *b;
    add_form(SECRET);
    add_form(f_up);
    add_form(f_low);
    add_form(p20);
    /* The decoded Basic pair is the id (not secret) and the encoded secret (a form above). */
    snprintf(pair, sizeof pair, "%s:%s", id, f_up); /* RFC 6749 2.3.1: encoded, then joined */
    b = base64(pair);
    /* the id's part of the base64 is not secret: keep from the first character past it */
    add_form(b + (strlen(id) + 1) / 3 * 4);
    free(b);
    snprintf(pair, sizeof pair, "%s:%s", CLIENT_ID, SECRET);
    b = base64(pair);
    add_form(b + (strlen(CLIENT_ID) + 1) / 3 * 4);
    free(b);
    b = base64(SECRET);
    add_form(b);
    free(b);
    free(f_up);
    free(f_low);
    free(p20);
    free(id);
}

/* ---- the framework ------------------------------------------------------------------------ */

static int time_factor = 1;
static int timeout_ms = 1000;
static char main_url[64], other_url[64];
static int main_port, other_port;
static const char *filter;

struct group {
    const char *name;
    int run, passed;
};
static struct group groups[16];
static int n_groups;

static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread const char *case_name = "?";
static int case_failed; /* shared: a thread of a case may fail it */

static void fail(const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&report_lock);
    fprintf(stderr, "  FAIL %s: ", case_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    case_failed = 1;
    pthread_mutex_unlock(&report_lock);
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static struct group *group_named(const char *name) {
    int i;
    for (i = 0; i < n_groups; i++)
        if (strcmp(groups[i].name, name) == 0) return &groups[i];
    groups[n_groups].name = name;
    return &groups[n_groups++];
}

static int selected(const char *group, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s/%s", group, name);
    return !filter || strstr(full, filter) != NULL;
}

static void finish_case(const char *group, const char *name) {
    struct group *g = group_named(group);
    g->run++;
    if (!case_failed) g->passed++;
    else fprintf(stderr, "FAILED %s/%s\n", group, name);
}

/* Does `msg` hold `form`, or any 12-character piece of it? */
static int holds_piece(const char *msg, const char *form) {
    size_t n = strlen(form), i;
    char piece[13];
    if (n < 12) return strstr(msg, form) != NULL;
    for (i = 0; i + 12 <= n; i++) {
        memcpy(piece, form + i, 12);
        piece[12] = 0;
        if (strstr(msg, piece)) return 1;
    }
    return 0;
}

#define MAX_MESSAGE_CHARS 512

/* The checks every case makes on this thread's last error. `token` may be NULL. */
static void check_message(const char *token) {
    const char *msg = cloudauth_last_error();
    size_t chars = 0;
    const unsigned char *p;
    int i;
    if (!msg) {
        fail("cloudauth_last_error() is NULL");
        return;
    }
    for (p = (const unsigned char *)msg; *p; p++) {
        if ((*p & 0xC0) != 0x80) chars++;
        if (*p < 0x20 || *p == 0x7f) {
            fail("last error holds control character 0x%02x: %.120s", *p, msg);
            break;
        }
    }
    if (chars > MAX_MESSAGE_CHARS) fail("last error is %zu characters long", chars);
    for (i = 0; i < n_forms; i++)
        if (holds_piece(msg, forms[i])) fail("last error holds a form of the secret: %s", msg);
    if (token && *token && holds_piece(msg, token)) fail("last error holds the token: %s", msg);
}

static void check_rc(cloudauth_result got, cloudauth_result want, const char *what) {
    if (got != want)
        fail("%s: got %s, want %s (%s)", what, cloudauth_result_name(got),
             cloudauth_result_name(want), cloudauth_last_error());
}

static void check_time(long long start, int max_ms, const char *what) {
    long long took = now_ms() - start;
    if (took > (long long)max_ms * time_factor)
        fail("%s took %lld ms, bound %d ms", what, took, max_ms * time_factor);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static cloudauth_result set(cloudauth_config *cfg, const char *k, const char *v) {
    cloudauth_result rc = cloudauth_config_set(cfg, k, v);
    if (rc != CLOUDAUTH_OK) fail("config_set(%s): %s", k, cloudauth_last_error());
    return rc;
}

/* A config against the hostile server: token_url = main origin + "/" + tok; `extra` is
 * "key=value;key=value". */
static cloudauth_config *config_for(const char *tok, const char *extra) {
    cloudauth_config *cfg = cloudauth_config_new();
    char buf[1024], num[32];
    set(cfg, "client_id", CLIENT_ID);
    set(cfg, "client_secret", SECRET);
    snprintf(buf, sizeof buf, "%s/%s", main_url, tok);
    set(cfg, "token_url", buf);
    set(cfg, "base_url", main_url);
    snprintf(num, sizeof num, "%d", timeout_ms);
    set(cfg, "timeout_ms", num);
    set(cfg, "connect_timeout_ms", num);
    set(cfg, "max_retries", "0");
    set(cfg, "max_retry_wait_ms", "50");
    set(cfg, "proxy", "none");
    if (extra) {
        char *copy = xstrdup(extra), *save = NULL, *kv;
        for (kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            set(cfg, kv, eq + 1);
        }
        free(copy);
    }
    return cfg;
}

static cloudauth_session *session_for(const char *tok, const char *extra) {
    cloudauth_config *cfg = config_for(tok, extra);
    cloudauth_session *s = NULL;
    cloudauth_result rc = cloudauth_session_new(cfg, &s);
    cloudauth_config_free(cfg);
    if (rc != CLOUDAUTH_OK) fail("session_new: %s", cloudauth_last_error());
    return s;
}

/* The session's token into buf (cap 256); the result code. */
static cloudauth_result get_token(cloudauth_session *s, char *buf) {
    size_t len = 0;
    return cloudauth_session_token(s, buf, 256, &len);
}

static cloudauth_result get(cloudauth_session *s, const char *url, cloudauth_response **out) {
    return cloudauth_session_request(s, "GET", url, NULL, 0, NULL, 0, out);
}

/* The response body as a NUL-terminated copy (for strstr); caller frees. */
static char *body_of(const cloudauth_response *r) {
    size_t len = 0;
    const uint8_t *b = cloudauth_response_body(r, &len);
    char *copy = malloc(len + 1);
    if (!copy) abort();
    if (len) memcpy(copy, b, len);
    copy[len] = 0;
    return copy;
}

/* ---- table-driven server cases ------------------------------------------------------------ */

struct server_case {
    const char *group;
    const char *name;
    const char *tok;        /* token endpoint behaviour (path on the main origin) */
    const char *api;        /* API path, or NULL for a token-only case */
    const char *extra;      /* config keys */
    cloudauth_result want;
    int status;             /* for API cases ending OK: the HTTP status */
    int max_ms;             /* time bound, before the time factor */
    const char *body_has;   /* the response body must contain this, when not NULL */
    const char *body_lacks;
    const char *error_has;  /* the last error must contain this, when not NULL */
    int token_kept;         /* API: the token after the call is the one before */
};

#define T_ERR(g, n, tok, want, ms) {g, n, tok, NULL, NULL, want, 0, ms, NULL, NULL, NULL, 0}
#define T_ERRX(g, n, tok, extra, want, ms, has) {g, n, tok, NULL, extra, want, 0, ms, NULL, NULL, has, 0}
#define T_OK(g, n, tok, extra) {g, n, tok, NULL, extra, CLOUDAUTH_OK, 0, 2000, NULL, NULL, NULL, 0}

static const struct server_case server_cases[] = {
    /* token endpoint: below HTTP */
    /* identity providers: echoed client assertions and DPoP proofs, nonce loops */
    {"idp", "echoed_assertion_scrubbed", "echo_400_assertion_desc", NULL, "auth_method=client_secret_jwt",
     CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, "***", 0},
    {"idp", "echoed_assertion_signature_scrubbed", "echo_400_assertionsig_html", NULL,
     "auth_method=client_secret_jwt", CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, "***", 0},
    {"idp", "echoed_assertion_as_error_scrubbed", "echo_401_assertion_error", NULL,
     "auth_method=client_secret_jwt", CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, NULL, 0},
    {"idp", "echoed_proof_scrubbed", "echo_400_proof_desc", NULL, "dpop=true",
     CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, "***", 0},
    {"idp", "echoed_proof_signature_scrubbed", "echo_400_proofsig_html", NULL, "dpop=true",
     CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, "***", 0},
    {"idp", "echoed_proof_in_token_type", "echo_200_proof_type", NULL, "dpop=true",
     CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 0, 2000, NULL, NULL, NULL, 0},
    {"idp", "token_nonce_loop_bounded", "dpop_nonce_loop", NULL, "dpop=true",
     CLOUDAUTH_ERR_AUTH_REJECTED, 0, 2000, NULL, NULL, "use_dpop_nonce", 0},
    {"idp", "api_nonce_loop_bounded", "ok", "api_dpop_nonce_loop", "dpop=true", CLOUDAUTH_OK, 401, 2000,
     NULL, NULL, NULL, 1},
    T_ERR("token-transport", "reset", "reset", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "close_before_headers", "close", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "hang", "hang", CLOUDAUTH_ERR_TIMEOUT, 2500),
    T_ERR("token-transport", "drip_headers", "drip_headers", CLOUDAUTH_ERR_TIMEOUT, 2500),
    T_ERR("token-transport", "drip_body", "drip_body", CLOUDAUTH_ERR_TIMEOUT, 2500),
    T_ERR("token-transport", "garbage", "garbage", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "half_status_line", "half_status", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "status_999999", "bad_status", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "headers_never_end", "no_headers_end", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "body_cut_short", "short_body", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "bad_chunk", "bad_chunk", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "500_headers", "many_headers", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERR("token-transport", "1MiB_header", "huge_header", CLOUDAUTH_ERR_NETWORK, 2000),
    T_ERRX("token-transport", "connection_refused", "ok", "token_url=http://127.0.0.1:1/t",
           CLOUDAUTH_ERR_NETWORK, 2000, "127.0.0.1:1"),
    T_ERRX("token-transport", "reset_retried", "reset", "max_retries=2",
           CLOUDAUTH_ERR_NETWORK, 3000, "3 attempts"),
    T_OK("token-transport", "early_hints_then_200", "early_hints", NULL),
    /* token endpoint: every status class */
    T_ERR("token-status", "201", "status_201", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "204", "status_204", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "301_not_followed", "status_301", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "302_not_followed", "status_302", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "303_not_followed", "status_303", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "307_not_followed", "status_307", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "308_not_followed", "status_308", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERRX("token-status", "400_invalid_client", "status_400_invalid_client", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "refused the client credentials"),
    T_ERRX("token-status", "401_invalid_client", "status_401_invalid_client", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "error=invalid_client"),
    T_ERRX("token-status", "400_invalid_grant", "status_400_invalid_grant", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "refused the client credentials"),
    T_ERRX("token-status", "401_invalid_token_names_token_url", "status_401_invalid_token", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "token_url"),
    T_ERRX("token-status", "401_html_names_token_url", "status_401", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "token_url"),
    T_ERRX("token-status", "400_invalid_scope", "status_400_invalid_scope", NULL,
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, "scope"),
    T_ERR("token-status", "403", "status_403", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "404", "status_404", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "418", "status_418", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "429", "status_429", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "500", "status_500", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "502", "status_502", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-status", "503_json", "status_503_temporarily_unavailable",
          CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERRX("token-status", "500_retried", "status_500", "max_retries=2",
           CLOUDAUTH_ERR_TOKEN_ENDPOINT, 3000, "3 attempts"),
    T_ERR("token-status", "600", "status_600", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    /* token endpoint: malformed 200 bodies */
    T_ERR("token-body", "not_json", "not_json", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "empty", "empty", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "json_array", "json_array", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "json_string", "json_string", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "json_null", "json_null", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "truncated", "truncated", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "no_access_token", "no_access_token", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_number", "token_number", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_null", "token_null", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_empty", "token_empty", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_object", "token_object", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_non_ascii_utf8", "token_non_ascii", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_u00ff", "token_latin1_escape", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "body_invalid_utf8", "token_invalid_utf8", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_control_char", "token_control", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_crlf", "token_newline", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_space", "token_space", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_nul", "token_nul", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_emoji", "token_emoji", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_type_mac", "type_mac", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "token_type_number", "type_number", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_negative", "expires_negative", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_zero", "expires_zero", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_word", "expires_word", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_object", "expires_object", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_1e400", "expires_huge", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "expires_nan", "expires_nan", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "nested_100000_deep", "deep_json", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "utf16", "utf16", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "binary", "binary", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-body", "error_field_in_200", "error_in_200", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_OK("token-body", "lowercase_bearer_string_expiry", "ok_lower_bearer", NULL),
    /* token endpoint: sizes */
    T_ERR("token-size", "declared_1TiB", "huge_cl", CLOUDAUTH_ERR_TOO_LARGE, 2000),
    T_ERR("token-size", "declared_1GB_sent_10", "big_cl", CLOUDAUTH_ERR_TOO_LARGE, 2000),
    T_ERR("token-size", "2MiB_body", "big_body", CLOUDAUTH_ERR_TOO_LARGE, 3000),
    T_ERR("token-size", "endless_chunked", "endless_chunked", CLOUDAUTH_ERR_TOO_LARGE, 3000),
    T_ERR("token-size", "endless_until_close", "endless_close", CLOUDAUTH_ERR_TOO_LARGE, 3000),
    /* token endpoint: echoed credentials (post and basic), in every place a message quotes */
    T_ERR("token-echo", "400_body_desc", "echo_400_body_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_body_lower_desc", "echo_400_body_lower_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_decoded_desc", "echo_400_body_decoded_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_at200_desc", "echo_400_at200_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_pct_desc", "echo_400_pct_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_pct_lower_desc", "echo_400_pct_lower_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "400_b64_secret_desc", "echo_400_b64_secret_desc", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "401_all_html", "echo_401_all_html", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "401_at200_html", "echo_401_at200_html", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERR("token-echo", "500_all_html", "echo_500_all_html", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-echo", "500_at200_desc", "echo_500_at200_desc", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-echo", "403_all_error", "echo_403_all_error", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000),
    T_ERR("token-echo", "200_in_token_type", "echo_200_all_type", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-echo", "200_at200_in_expires", "echo_200_at200_expires", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000),
    T_ERR("token-echo", "200_in_error", "echo_200_all_error", CLOUDAUTH_ERR_AUTH_REJECTED, 2000),
    T_ERRX("token-echo", "basic_400_auth_desc", "echo_400_auth_desc", "auth_method=client_secret_basic",
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, NULL),
    T_ERRX("token-echo", "basic_400_decoded_pair", "echo_400_auth_decoded_desc",
           "auth_method=client_secret_basic", CLOUDAUTH_ERR_AUTH_REJECTED, 2000, NULL),
    T_ERRX("token-echo", "basic_400_unquoted_pair", "echo_400_auth_unquoted_desc",
           "auth_method=client_secret_basic", CLOUDAUTH_ERR_AUTH_REJECTED, 2000, NULL),
    T_ERRX("token-echo", "basic_401_all_html", "echo_401_all_html", "auth_method=client_secret_basic",
           CLOUDAUTH_ERR_AUTH_REJECTED, 2000, NULL),
    T_ERRX("token-echo", "basic_500_at200_html", "echo_500_at200_html",
           "auth_method=client_secret_basic", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2000, NULL),
    T_ERRX("token-echo", "basic_200_in_token_type", "echo_200_all_type",
           "auth_method=client_secret_basic", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 2000, NULL),
    T_ERRX("token-echo", "basic_b64_urlsafe", "echo_400_b64_secret_desc",
           "auth_method=client_secret_basic", CLOUDAUTH_ERR_AUTH_REJECTED, 2000, NULL),
    T_ERRX("token-echo", "500_retried_all_html", "echo_500_all_html", "max_retries=1",
           CLOUDAUTH_ERR_TOKEN_ENDPOINT, 3000, "2 attempts"),
    T_OK("token-echo", "basic_accepted", "ok_basic_only", "auth_method=client_secret_basic"),

    /* API: 401 paths, redirects, sizes, transport */
    {"api", "echo_200", "ok", "echo?nonce=n1", NULL, CLOUDAUTH_OK, 200, 2000, "nonce=n1 auth=valid", NULL, NULL, 1},
    {"api", "404_is_a_response", "ok", "code_404", NULL, CLOUDAUTH_OK, 404, 2000, NULL, NULL, NULL, 1},
    {"api", "500_is_a_response", "ok", "code_500", NULL, CLOUDAUTH_OK, 500, 2000, NULL, NULL, NULL, 1},
    {"api", "204_no_body", "ok", "code_204", NULL, CLOUDAUTH_OK, 204, 2000, NULL, NULL, NULL, 1},
    {"api", "302_without_location", "ok", "code_302", NULL, CLOUDAUTH_OK, 302, 2000, NULL, NULL, NULL, 1},
    {"api", "binary_header_value", "ok", "bad_header_value", NULL, CLOUDAUTH_OK, 200, 2000, "ok", NULL, NULL, 1},
    {"api", "401_always_resent_once", "ok", "always_401", NULL, CLOUDAUTH_OK, 401, 2000, "auth=valid", NULL, NULL, 0},
    {"api", "401_once_then_fresh_token", "ok", "401_once?nonce=a1", NULL, CLOUDAUTH_OK, 200, 2000, "fresh auth=valid", NULL, NULL, 0},
    {"api", "401_echoing_the_token", "ok", "token_in_401", NULL, CLOUDAUTH_OK, 401, 2000, NULL, NULL, NULL, 0},
    {"api", "cross_origin_401_keeps_token", "ok", "to_other?to=always_401", NULL, CLOUDAUTH_OK, 401, 2000, "auth=none", NULL, NULL, 1},
    {"api", "cross_origin_no_authorization", "ok", "to_other?to=echo", NULL, CLOUDAUTH_OK, 200, 2000, "auth=none", NULL, NULL, 1},
    {"api", "cross_origin_and_back_401", "ok", "to_other_and_back?to=always_401", NULL, CLOUDAUTH_OK, 401, 2000, "auth=none", NULL, NULL, 1},
    {"api", "same_origin_redirect_keeps_auth", "ok", "to_same?to=echo", NULL, CLOUDAUTH_OK, 200, 2000, "auth=valid", NULL, NULL, 1},
    {"api", "same_origin_redirect_401_resends", "ok", "to_same?to=401_once%3Fnonce%3Db2", NULL, CLOUDAUTH_OK, 200, 2000, "fresh", NULL, NULL, 0},
    {"api", "no_referer_on_redirect", "ok", "to_referer?secret_q=hush", NULL, CLOUDAUTH_OK, 200, 2000, "referer=[]", "hush", NULL, 1},
    {"api", "redirect_to_remote_http", "ok", "to_remote_http", NULL, CLOUDAUTH_ERR_INSECURE_URL, 0, 2000, NULL, NULL, "remote.example", 1},
    {"api", "redirect_loop", "ok", "to_loop", NULL, CLOUDAUTH_ERR_NETWORK, 0, 3000, NULL, NULL, "redirect", 1},
    {"api", "redirect_to_ftp", "ok", "to_ftp", NULL, CLOUDAUTH_OK, 302, 2000, NULL, NULL, NULL, 1},
    {"api", "redirect_to_bad_url", "ok", "to_bad", NULL, CLOUDAUTH_OK, 302, 2000, NULL, NULL, NULL, 1},
    {"api", "reset", "ok", "reset", NULL, CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "close_before_headers", "ok", "close", NULL, CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "hang", "ok", "hang", NULL, CLOUDAUTH_ERR_TIMEOUT, 0, 2500, NULL, NULL, NULL, 1},
    {"api", "drip_headers", "ok", "drip_headers", NULL, CLOUDAUTH_ERR_TIMEOUT, 0, 2500, NULL, NULL, NULL, 1},
    {"api", "drip_body", "ok", "drip_body", NULL, CLOUDAUTH_ERR_TIMEOUT, 0, 2500, NULL, NULL, NULL, 1},
    {"api", "garbage", "ok", "garbage", NULL, CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "body_cut_short", "ok", "short_body", NULL, CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "declared_1TiB", "ok", "huge_cl", "max_response_bytes=1073741824", CLOUDAUTH_ERR_TOO_LARGE, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "declared_1GB_sent_10_under_1GiB_cap", "ok", "big_cl", "max_response_bytes=1073741824", CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "2MiB_over_1MiB_cap", "ok", "big_body", "max_response_bytes=1048576", CLOUDAUTH_ERR_TOO_LARGE, 0, 3000, NULL, NULL, NULL, 1},
    {"api", "2MiB_under_default_cap", "ok", "big_body", NULL, CLOUDAUTH_OK, 200, 3000, NULL, NULL, NULL, 1},
    {"api", "endless_chunked", "ok", "endless_chunked", "max_response_bytes=4194304", CLOUDAUTH_ERR_TOO_LARGE, 0, 3000, NULL, NULL, NULL, 1},
    {"api", "endless_until_close", "ok", "endless_close", "max_response_bytes=4194304", CLOUDAUTH_ERR_TOO_LARGE, 0, 3000, NULL, NULL, NULL, 1},
    {"api", "500_headers", "ok", "many_headers", NULL, CLOUDAUTH_ERR_NETWORK, 0, 2000, NULL, NULL, NULL, 1},
    {"api", "token_endpoint_fails_nothing_sent", "token_non_ascii", "echo", NULL, CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 0, 2000, NULL, NULL, NULL, 1},
};

static void run_server_case(const struct server_case *c) {
    cloudauth_session *s = session_for(c->tok, c->extra);
    char before[256] = "", after[256] = "";
    long long start;
    cloudauth_result rc;
    if (!s) return;
    if (!c->api) {
        start = now_ms();
        rc = get_token(s, before);
        check_time(start, c->max_ms, "token");
        check_rc(rc, c->want, "session_token");
        check_message(NULL);
        /* a JWS (client assertion, DPoP proof) starts with a base64url '{"': never in a message */
        if (strcmp(c->group, "idp") == 0 && strstr(cloudauth_last_error(), "eyJ"))
            fail("last error holds a JWS: %s", cloudauth_last_error());
        if (c->error_has && !strstr(cloudauth_last_error(), c->error_has))
            fail("last error lacks '%s': %s", c->error_has, cloudauth_last_error());
        /* the process lives on and the session still answers the same way */
        rc = get_token(s, before);
        check_rc(rc, c->want, "session_token, again");
        check_message(NULL);
    } else {
        cloudauth_response *r = NULL;
        int token_first = c->want != CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE;
        if (token_first) {
            rc = get_token(s, before);
            check_rc(rc, CLOUDAUTH_OK, "session_token before the request");
        }
        start = now_ms();
        rc = get(s, c->api, &r);
        check_time(start, c->max_ms, "request");
        check_rc(rc, c->want, "session_request");
        check_message(before);
        if (c->error_has && rc != CLOUDAUTH_OK && !strstr(cloudauth_last_error(), c->error_has))
            fail("last error lacks '%s': %s", c->error_has, cloudauth_last_error());
        if (rc == CLOUDAUTH_OK) {
            char *body = body_of(r);
            if (cloudauth_response_status(r) != c->status)
                fail("status %u, want %d", cloudauth_response_status(r), c->status);
            if (c->body_has && !strstr(body, c->body_has))
                fail("body lacks '%s': %.200s", c->body_has, body);
            if (c->body_lacks && strstr(body, c->body_lacks))
                fail("body holds '%s': %.200s", c->body_lacks, body);
            free(body);
        } else if (r) {
            fail("*out written on failure");
        }
        cloudauth_response_free(r);
        if (token_first) {
            rc = get_token(s, after);
            check_rc(rc, CLOUDAUTH_OK, "session_token after the request");
            if (c->token_kept && strcmp(before, after) != 0)
                fail("the token was dropped (before %.12s..., after %.12s...)", before, after);
            if (!c->token_kept && strcmp(before, after) == 0)
                fail("the token rejected with 401 was kept");
        }
    }
    cloudauth_session_free(s);
}

/* ---- misuse of every function ------------------------------------------------------------ */

static cloudauth_session *plain_session(void) { return session_for("ok", NULL); }

#define BAD_UTF8 "caf\xc3\x28"

static void m_config_null_cfg(void) {
    check_rc(cloudauth_config_set(NULL, "client_id", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL cfg");
    check_message(NULL);
}
static void m_config_null_key(void) {
    cloudauth_config *c = cloudauth_config_new();
    check_rc(cloudauth_config_set(c, NULL, "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL key");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_config_null_value(void) {
    cloudauth_config *c = cloudauth_config_new();
    check_rc(cloudauth_config_set(c, "client_secret", NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL value");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_config_bad_utf8(void) {
    cloudauth_config *c = cloudauth_config_new();
    check_rc(cloudauth_config_set(c, BAD_UTF8, "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad key");
    check_message(NULL);
    check_rc(cloudauth_config_set(c, "client_id", BAD_UTF8), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad value");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_config_unknown_key(void) {
    cloudauth_config *c = cloudauth_config_new();
    char key[4096];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = 0;
    check_rc(cloudauth_config_set(c, "tiemout_ms", "1"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "unknown key");
    if (!strstr(cloudauth_last_error(), "tiemout_ms")) fail("unknown key not named");
    check_message(NULL);
    check_rc(cloudauth_config_set(c, key, "1"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "4 KiB key");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_config_bad_values(void) {
    static const char *const kv[][2] = {
        {"timeout_ms", "-1"}, {"timeout_ms", "abc"}, {"timeout_ms", "0"},
        {"max_retries", "99"}, {"auth_method", "digest"}, {"allow_insecure_http", "maybe"},
        {"token_url", "ftp://x/"}, {"base_url", "not a url"}, {"user_agent", "a\r\nb"},
        {"max_response_bytes", "1099511627776"}, {"max_response_bytes", "1073741825"},
        {"max_response_bytes", "0"}, {"client_secret", ""}, {"client_id", ""},
        {"refresh_skew_s", "18446744073709551616"},
    };
    cloudauth_config *c = cloudauth_config_new();
    size_t i;
    for (i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        check_rc(cloudauth_config_set(c, kv[i][0], kv[i][1]), CLOUDAUTH_ERR_INVALID_ARGUMENT, kv[i][0]);
        check_message(NULL);
    }
    check_rc(cloudauth_config_set(c, "max_response_bytes", "1073741824"), CLOUDAUTH_OK, "1 GiB cap");
    cloudauth_config_free(c);
}
static void m_config_secret_not_echoed(void) {
    cloudauth_config *c = cloudauth_config_new();
    char url[512];
    /* a secret pasted into the wrong key, and a URL with credentials in it */
    check_rc(cloudauth_config_set(c, "timeout_ms", SECRET), CLOUDAUTH_ERR_INVALID_ARGUMENT, "secret as timeout");
    check_message(NULL);
    check_rc(cloudauth_config_set(c, "auth_method", SECRET), CLOUDAUTH_ERR_INVALID_ARGUMENT, "secret as auth_method");
    check_message(NULL);
    snprintf(url, sizeof url, "ftp://user:%s@host/x?client_secret=%s", "pw", SECRET);
    check_rc(cloudauth_config_set(c, "token_url", url), CLOUDAUTH_ERR_INVALID_ARGUMENT, "ftp url");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_config_huge_url(void) {
    cloudauth_config *c = cloudauth_config_new();
    size_t n = 1 << 20;
    char *url = malloc(n + 1);
    if (!url) abort();
    memcpy(url, "https://h/", 10);
    memset(url + 10, 'a', n - 10);
    url[n] = 0;
    check_rc(cloudauth_config_set(c, "token_url", url), CLOUDAUTH_ERR_INVALID_ARGUMENT, "1 MiB token_url");
    check_message(NULL);
    check_rc(cloudauth_config_set(c, "base_url", url), CLOUDAUTH_ERR_INVALID_ARGUMENT, "1 MiB base_url");
    check_message(NULL);
    free(url);
    cloudauth_config_free(c);
}
static void m_session_new_nulls(void) {
    cloudauth_config *c = config_for("ok", NULL);
    cloudauth_session *s = (cloudauth_session *)&s;
    check_rc(cloudauth_session_new(NULL, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL cfg");
    if (s != (cloudauth_session *)&s) fail("*out written on failure");
    check_message(NULL);
    check_rc(cloudauth_session_new(c, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL out");
    check_message(NULL);
    cloudauth_config_free(c);
}
static void m_session_new_missing(void) {
    cloudauth_config *c = cloudauth_config_new();
    cloudauth_session *s = NULL;
    check_rc(cloudauth_session_new(c, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "no client_id");
    check_message(NULL);
    set(c, "client_id", "x");
    check_rc(cloudauth_session_new(c, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "no client_secret");
    check_message(NULL);
    set(c, "client_secret", SECRET);
    set(c, "token_url", "http://example.com/token");
    check_rc(cloudauth_session_new(c, &s), CLOUDAUTH_ERR_INSECURE_URL, "remote http token_url");
    check_message(NULL);
    set(c, "token_url", "https://example.com/token");
    set(c, "ca_file", "/nonexistent/ca.pem");
    check_rc(cloudauth_session_new(c, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "missing ca_file");
    check_message(NULL);
    set(c, "ca_file", "/etc/hostname");
    check_rc(cloudauth_session_new(c, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "ca_file not PEM");
    check_message(NULL);
    cloudauth_config_free(c);
    if (s) fail("a session was made");
}
static void m_token_nulls(void) {
    cloudauth_session *s = plain_session();
    char buf[256];
    size_t len = 0;
    if (!s) return;
    check_rc(cloudauth_session_token(NULL, buf, sizeof buf, &len), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_message(NULL);
    check_rc(cloudauth_session_token(s, buf, sizeof buf, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL len");
    check_message(NULL);
    cloudauth_session_free(s);
}
static void m_token_buffers(void) {
    cloudauth_session *s = plain_session();
    char buf[256], tiny[4] = "abc";
    size_t len = 0, need;
    if (!s) return;
    check_rc(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "NULL buf");
    need = len;
    if (need < 10) fail("token_len %zu", need);
    check_message(NULL);
    check_rc(cloudauth_session_token(s, tiny, sizeof tiny, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "tiny buf");
    if (strcmp(tiny, "abc") != 0) fail("a too-small buffer was written");
    check_message(NULL);
    check_rc(cloudauth_session_token(s, buf, need, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "no room for NUL");
    check_rc(cloudauth_session_token(s, buf, need + 1, &len), CLOUDAUTH_OK, "exact");
    if (strlen(buf) != need) fail("token length %zu, want %zu", strlen(buf), need);
    check_rc(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "again");
    check_message(buf);
    cloudauth_session_free(s);
}
static void m_expires_in_nulls(void) {
    cloudauth_session *s = plain_session();
    uint64_t secs = 0;
    if (!s) return;
    check_rc(cloudauth_session_token_expires_in(NULL, &secs), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_token_expires_in(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL out");
    check_message(NULL);
    check_rc(cloudauth_session_token_expires_in(s, &secs), CLOUDAUTH_OK, "ok");
    if (secs < 3000 || secs > 3600) fail("expires_in %llu", (unsigned long long)secs);
    cloudauth_session_free(s);
}
static void m_invalidate_nulls(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    check_rc(cloudauth_session_invalidate(NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "invalidate NULL");
    check_rc(cloudauth_session_invalidate_token(NULL, "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_invalidate_token(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL token");
    check_rc(cloudauth_session_invalidate_token(s, BAD_UTF8), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad UTF-8");
    check_message(NULL);
    check_rc(cloudauth_session_invalidate(s), CLOUDAUTH_OK, "invalidate");
    check_rc(cloudauth_session_invalidate_token(s, "not the token"), CLOUDAUTH_OK, "other token");
    cloudauth_session_free(s);
}
static void m_request_nulls(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    const char *h[1] = {NULL};
    if (!s) return;
    check_rc(cloudauth_session_request(NULL, "GET", "echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_request(s, NULL, "echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL method");
    check_rc(cloudauth_session_request(s, "GET", NULL, NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL url");
    check_rc(cloudauth_session_request(s, "GET", "echo", NULL, 0, NULL, 0, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL out");
    check_rc(cloudauth_session_request(s, "GET", "echo", NULL, 3, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL headers, n 3");
    check_rc(cloudauth_session_request(s, "GET", "echo", h, 1, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL headers[0]");
    check_rc(cloudauth_session_request(s, "GET", "echo", NULL, 0, NULL, 5, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL body, len 5");
    check_message(NULL);
    if (r) fail("*out written on failure");
    cloudauth_session_free(s);
}
static void m_request_bad_utf8(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    const char *h[1] = {"X-A: " BAD_UTF8};
    if (!s) return;
    check_rc(cloudauth_session_request(s, BAD_UTF8, "echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "method");
    check_rc(cloudauth_session_request(s, "GET", "echo/" BAD_UTF8, NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "url");
    check_rc(cloudauth_session_request(s, "GET", "echo", h, 1, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "header");
    check_message(NULL);
    cloudauth_session_free(s);
}
static void m_request_bad_headers(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    char tok[256] = "";
    static const char *const bad[] = {"X-A: b\r\nX-Evil: 1", "no colon here", "bad name: v",
                                      "Authorization: Bearer mine", ": empty name", "X: \x01"};
    size_t i;
    if (!s) return;
    get_token(s, tok);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        check_rc(cloudauth_session_request(s, "GET", "echo", &bad[i], 1, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, bad[i]);
        check_message(tok);
    }
    cloudauth_session_free(s);
}
static void m_request_bad_method_url(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    if (!s) return;
    check_rc(cloudauth_session_request(s, "GE T", "echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "method with space");
    check_rc(cloudauth_session_request(s, "", "echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "empty method");
    check_rc(cloudauth_session_request(s, "GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "ftp url");
    check_rc(cloudauth_session_request(s, "GET", "http://", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "no host");
    check_rc(cloudauth_session_request(s, "GET", "http://example.com/x?client_secret=1", NULL, 0, NULL, 0, &r), CLOUDAUTH_ERR_INSECURE_URL, "remote http");
    if (strstr(cloudauth_last_error(), "client_secret=1")) fail("query shown: %s", cloudauth_last_error());
    check_message(NULL);
    cloudauth_session_free(s);
}

/* A 1 MiB string: prefix, then `fill` repeated. */
static char *big_string(const char *prefix, char fill, size_t n) {
    char *p = malloc(n + 1);
    size_t k = strlen(prefix);
    if (!p) abort();
    memcpy(p, prefix, k);
    memset(p + k, fill, n - k);
    p[n] = 0;
    return p;
}

static void expect_oversized(const char *method, const char *url, const char *header, const char *what) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    char tok[256] = "";
    long long start;
    if (!s) return;
    get_token(s, tok);
    start = now_ms();
    check_rc(cloudauth_session_request(s, method, url, header ? &header : NULL, header ? 1 : 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT, what);
    check_time(start, 500, what);
    check_message(tok);
    if (strlen(cloudauth_last_error()) > 400) fail("%s: message of %zu bytes", what, strlen(cloudauth_last_error()));
    cloudauth_session_free(s);
}
static void m_url_1MiB(void) {
    char *u = big_string("http://127.0.0.1/", 'a', 1 << 20);
    expect_oversized("GET", u, NULL, "1 MiB URL");
    free(u);
}
static void m_path_1MiB(void) {
    char *u = big_string("/echo?q=", 'b', 1 << 20);
    expect_oversized("GET", u, NULL, "1 MiB path");
    free(u);
}
static void m_url_9KiB_with_secret(void) {
    /* the message must quote only a prefix, and never the query */
    char *u = big_string("http://127.0.0.1/x?client_secret=", 'c', 9 << 10);
    memcpy(u + 40, SECRET, strlen(SECRET));
    expect_oversized("GET", u, NULL, "9 KiB URL with a secret");
    free(u);
}
static void m_header_value_1MiB(void) {
    char *h = big_string("X-Big: ", 'v', 1 << 20);
    expect_oversized("GET", "echo", h, "1 MiB header value");
    free(h);
}
static void m_header_name_1MiB(void) {
    char *h = big_string("X", 'n', 1 << 20);
    h[(1 << 20) - 3] = ':';
    expect_oversized("GET", "echo", h, "1 MiB header name");
    free(h);
}
static void m_method_1MiB(void) {
    char *m = big_string("GET", 'G', 1 << 20);
    expect_oversized(m, "echo", NULL, "1 MiB method");
    free(m);
}
static void m_headers_total(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    const char *h[40];
    char *line = big_string("X-Many: ", 'm', 4000);
    int i;
    if (!s) return;
    for (i = 0; i < 40; i++) h[i] = line;
    check_rc(cloudauth_session_request(s, "GET", "echo", h, 40, NULL, 0, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT, "160 KB of headers");
    check_message(NULL);
    check_rc(cloudauth_session_request(s, "GET", "echo", h, 2, NULL, 0, &r), CLOUDAUTH_OK, "8 KB of headers");
    cloudauth_response_free(r);
    free(line);
    cloudauth_session_free(s);
}
static void m_binary_body(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    uint8_t body[1000];
    char *text;
    int i;
    if (!s) return;
    for (i = 0; i < 1000; i++) body[i] = (uint8_t)i;
    check_rc(cloudauth_session_request(s, "POST", "echo", NULL, 0, body, sizeof body, &r), CLOUDAUTH_OK, "POST");
    if (r) {
        text = body_of(r);
        if (!strstr(text, "method=POST len=1000")) fail("echo: %s", text);
        free(text);
    }
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}
static void m_response_nulls(void) {
    size_t len = 7;
    const char *n = "x", *v = "y";
    if (cloudauth_response_status(NULL) != 0) fail("status(NULL)");
    if (cloudauth_response_body(NULL, &len) != NULL || len != 0) fail("body(NULL)");
    if (cloudauth_response_body(NULL, NULL) != NULL) fail("body(NULL, NULL)");
    if (cloudauth_response_header(NULL, "x") != NULL) fail("header(NULL)");
    if (cloudauth_response_header_count(NULL) != 0) fail("header_count(NULL)");
    check_rc(cloudauth_response_header_at(NULL, 0, &n, &v), CLOUDAUTH_ERR_INVALID_ARGUMENT, "header_at(NULL)");
    check_message(NULL);
}
static void m_response_misuse(void) {
    cloudauth_session *s = plain_session();
    cloudauth_response *r = NULL;
    const char *n = "x", *v = "y";
    size_t count;
    if (!s) return;
    check_rc(get(s, "echo?nonce=hdr", &r), CLOUDAUTH_OK, "get");
    if (!r) { cloudauth_session_free(s); return; }
    if (cloudauth_response_header(r, NULL) != NULL) fail("header(r, NULL)");
    if (cloudauth_response_header(r, BAD_UTF8) != NULL) fail("header(r, bad UTF-8)");
    if (!cloudauth_response_header(r, "x-NONCE") || strcmp(cloudauth_response_header(r, "x-NONCE"), "hdr") != 0)
        fail("header x-nonce");
    count = cloudauth_response_header_count(r);
    check_rc(cloudauth_response_header_at(r, count, &n, &v), CLOUDAUTH_ERR_INVALID_ARGUMENT, "index out of range");
    if (strcmp(n, "x") != 0 || strcmp(v, "y") != 0) fail("outputs written on failure");
    check_rc(cloudauth_response_header_at(r, (size_t)-1, &n, &v), CLOUDAUTH_ERR_INVALID_ARGUMENT, "SIZE_MAX");
    check_rc(cloudauth_response_header_at(r, 0, NULL, &v), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL name");
    check_rc(cloudauth_response_header_at(r, 0, &n, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL value");
    check_message(NULL);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}
static void m_free_null(void) {
    cloudauth_config_free(NULL);
    cloudauth_session_free(NULL);
    cloudauth_response_free(NULL);
}
static void m_result_names(void) {
    int i;
    for (i = -3; i < 40; i++) {
        const char *n = cloudauth_result_name((cloudauth_result)i);
        if (!n || strncmp(n, "CLOUDAUTH_", 10) != 0) fail("result_name(%d)", i);
    }
    if (strcmp(cloudauth_result_name((cloudauth_result)12345), "CLOUDAUTH_UNKNOWN_RESULT") != 0)
        fail("result_name(12345)");
    if (strcmp(cloudauth_result_name(CLOUDAUTH_ERR_TOO_LARGE), "CLOUDAUTH_ERR_TOO_LARGE") != 0)
        fail("result_name(TOO_LARGE)");
    if (!cloudauth_version() || !*cloudauth_version()) fail("version");
}
static void m_last_error_cleared(void) {
    cloudauth_config *c = cloudauth_config_new();
    check_rc(cloudauth_config_set(c, "nope", "1"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "unknown");
    if (!*cloudauth_last_error()) fail("no message after a failure");
    check_rc(cloudauth_config_set(c, "client_id", "x"), CLOUDAUTH_OK, "ok");
    if (*cloudauth_last_error()) fail("message after success: %s", cloudauth_last_error());
    cloudauth_config_free(c);
}
static void m_remote_http_opt_in(void) {
    cloudauth_session *s = session_for("ok", "allow_insecure_http=yes");
    cloudauth_response *r = NULL;
    if (!s) return;
    check_rc(get(s, "to_remote_http", &r), CLOUDAUTH_ERR_NETWORK, "opted in: the redirect is followed");
    check_message(NULL);
    cloudauth_session_free(s);
}

/* the v1 functions */
static void dummy_response_fn(void *u, cloudauth_result rc, cloudauth_response *r, const char *e) {
    (void)u; (void)rc; (void)e;
    cloudauth_response_free(r);
}
static void dummy_token_fn(void *u, cloudauth_result rc, const char *t, size_t n, const char *e) {
    (void)u; (void)rc; (void)t; (void)n; (void)e;
}
static void m_async_nulls(void) {
    cloudauth_session *s = plain_session();
    cloudauth_op *op = (cloudauth_op *)&op;
    const char *h[1] = {"no colon"};
    if (!s) return;
    check_rc(cloudauth_session_request_async(NULL, "GET", "echo", NULL, 0, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_request_async(s, "GET", "echo", NULL, 0, NULL, 0, NULL, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL done");
    check_rc(cloudauth_session_request_async(s, NULL, "echo", NULL, 0, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL method");
    check_rc(cloudauth_session_request_async(s, "GET", NULL, NULL, 0, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL url");
    check_rc(cloudauth_session_request_async(s, "GET", "echo", NULL, 2, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL headers, n 2");
    check_rc(cloudauth_session_request_async(s, "GET", "echo", h, 1, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad header");
    check_rc(cloudauth_session_request_async(s, "GET", "echo", NULL, 0, NULL, 3, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL body, len 3");
    check_rc(cloudauth_session_request_async(s, BAD_UTF8, "echo", NULL, 0, NULL, 0, dummy_response_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad UTF-8 method");
    check_rc(cloudauth_session_token_async(NULL, dummy_token_fn, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "token_async NULL s");
    check_rc(cloudauth_session_token_async(s, NULL, NULL, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "token_async NULL done");
    check_message(NULL);
    if (op != (cloudauth_op *)&op) fail("*out_op written on failure");
    cloudauth_op_cancel(NULL);
    cloudauth_op_free(NULL);
    cloudauth_session_free(s);
}
static void m_queue_misuse(void) {
    cloudauth_session *s = plain_session();
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_completion *c = (cloudauth_completion *)&c;
    cloudauth_op *op = (cloudauth_op *)&op;
    cloudauth_config *cfg = cloudauth_config_new();
    const char *h[1] = {"no colon"};
    if (!s || !q || !cfg) { fail("setup"); return; }
    check_rc(cloudauth_session_request_queued(NULL, "GET", "echo", NULL, 0, NULL, 0, q, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_request_queued(s, "GET", "echo", NULL, 0, NULL, 0, NULL, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL queue");
    check_rc(cloudauth_session_request_queued(s, BAD_UTF8, "echo", NULL, 0, NULL, 0, q, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad UTF-8 method");
    check_rc(cloudauth_session_request_queued(s, "GET", "echo", h, 1, NULL, 0, q, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad header");
    check_rc(cloudauth_session_request_queued(s, "GET", "echo", NULL, 0, NULL, 3, q, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL body, len 3");
    check_rc(cloudauth_session_token_queued(NULL, q, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "token_queued NULL s");
    check_rc(cloudauth_session_token_queued(s, NULL, 1, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT, "token_queued NULL queue");
    check_message(NULL);
    if (op != (cloudauth_op *)&op) fail("*out_op written on failure");
    check_rc(cloudauth_queue_wait(NULL, 0, &c), CLOUDAUTH_ERR_INVALID_ARGUMENT, "wait NULL queue");
    check_rc(cloudauth_queue_wait(q, 0, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "wait NULL out");
    /* nothing started, so nothing arrives */
    check_rc(cloudauth_queue_wait(q, 20, &c), CLOUDAUTH_ERR_TIMEOUT, "wait empty");
    check_message(NULL);
    if (c != (cloudauth_completion *)&c) fail("*out written on timeout");
    check_rc(cloudauth_config_set_event_queue(NULL, q, 1), CLOUDAUTH_ERR_INVALID_ARGUMENT, "event_queue NULL cfg");
    check_rc(cloudauth_config_set_event_queue(cfg, NULL, 1), CLOUDAUTH_OK, "event_queue NULL queue removes");
    if (cloudauth_queue_fd(NULL) != -1) fail("queue_fd(NULL) is not -1");
    cloudauth_completion_free(NULL);
    cloudauth_queue_free(NULL);
    cloudauth_config_free(cfg);
    cloudauth_queue_free(q);
    cloudauth_session_free(s);
}
static void m_token_cached_misuse(void) {
    cloudauth_session *s = plain_session();
    char buf[256], tiny[2] = "x";
    size_t len = 0;
    cloudauth_result rc;
    int i;
    if (!s) return;
    check_rc(cloudauth_session_token_cached(NULL, buf, sizeof buf, &len), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_token_cached(s, buf, sizeof buf, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL len");
    check_message(NULL);
    /* no token yet: WOULD_BLOCK, and a fetch starts; then the token is there */
    rc = cloudauth_session_token_cached(s, buf, sizeof buf, &len);
    if (rc != CLOUDAUTH_ERR_WOULD_BLOCK && rc != CLOUDAUTH_OK) check_rc(rc, CLOUDAUTH_ERR_WOULD_BLOCK, "first");
    for (i = 0; i < 200 * time_factor && rc != CLOUDAUTH_OK; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        rc = cloudauth_session_token_cached(s, buf, sizeof buf, &len);
    }
    check_rc(rc, CLOUDAUTH_OK, "the background fetch delivered");
    check_rc(cloudauth_session_token_cached(s, tiny, sizeof tiny, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "tiny");
    if (strcmp(tiny, "x") != 0) fail("a too-small buffer was written");
    check_message(buf);
    cloudauth_session_free(s);
}
static void m_set_credentials_misuse(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    check_rc(cloudauth_session_set_credentials(NULL, "a", "b"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_set_credentials(s, NULL, "b"), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL id");
    check_rc(cloudauth_session_set_credentials(s, "a", NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL secret");
    check_rc(cloudauth_session_set_credentials(s, "a", ""), CLOUDAUTH_ERR_INVALID_ARGUMENT, "empty secret");
    check_rc(cloudauth_session_set_credentials(s, "a", BAD_UTF8), CLOUDAUTH_ERR_INVALID_ARGUMENT, "bad UTF-8");
    check_message(NULL);
    cloudauth_session_free(s);
}
static void m_stats_misuse(void) {
    cloudauth_session *s = plain_session();
    cloudauth_stats st;
    uint64_t first = 77;
    if (!s) return;
    check_rc(cloudauth_session_stats(NULL, &st, sizeof st), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL s");
    check_rc(cloudauth_session_stats(s, NULL, sizeof st), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL out");
    check_rc(cloudauth_session_stats(s, &st, 4), CLOUDAUTH_ERR_INVALID_ARGUMENT, "4 bytes");
    check_message(NULL);
    check_rc(cloudauth_session_stats(s, (cloudauth_stats *)(void *)&first, sizeof first), CLOUDAUTH_OK, "a prefix");
    if (first != 0) fail("token_requests %llu before any use", (unsigned long long)first);
    check_rc(cloudauth_session_stats(s, &st, sizeof st + 64), CLOUDAUTH_OK, "a bigger size: the known part");
    cloudauth_session_free(s);
}
static void m_event_callback_misuse(void) {
    check_rc(cloudauth_config_set_event_callback(NULL, NULL, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT, "NULL cfg");
    check_message(NULL);
}

struct simple_case {
    const char *group, *name;
    void (*fn)(void);
};

/* ---- identity providers: discovery and key files ----------------------------------------- */

/* A session that discovers its token endpoint from issuer = main origin + "/" + which. */
static void discovery_case(const char *which, cloudauth_result want, const char *has) {
    cloudauth_config *cfg = cloudauth_config_new();
    cloudauth_session *s = NULL;
    char buf[256], num[32];
    long long start;
    set(cfg, "client_id", CLIENT_ID);
    set(cfg, "client_secret", SECRET);
    snprintf(buf, sizeof buf, "%s/%s", main_url, which);
    set(cfg, "issuer", buf);
    snprintf(num, sizeof num, "%d", timeout_ms);
    set(cfg, "timeout_ms", num);
    set(cfg, "max_retries", "0");
    set(cfg, "proxy", "none");
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "session_new");
    cloudauth_config_free(cfg);
    if (!s) return;
    start = now_ms();
    check_rc(get_token(s, buf), want, "session_token");
    check_time(start, 2000, "discovery and token");
    check_message(NULL);
    if (has && !strstr(cloudauth_last_error(), has))
        fail("last error lacks '%s': %s", has, cloudauth_last_error());
    if (want != CLOUDAUTH_OK && strncmp(cloudauth_last_error(), "discovery", 9) != 0 &&
        want != CLOUDAUTH_ERR_INSECURE_URL && want != CLOUDAUTH_ERR_TOO_LARGE)
        fail("last error does not name the discovery step: %s", cloudauth_last_error());
    /* a failure is not remembered: the next call discovers again, with the same answer */
    check_rc(get_token(s, buf), want, "session_token, again");
    cloudauth_session_free(s);
}
static void i_discovery_ok(void) { discovery_case("disc_ok", CLOUDAUTH_OK, NULL); }
static void i_discovery_404(void) { discovery_case("disc_404", CLOUDAUTH_ERR_TOKEN_ENDPOINT, "HTTP 404"); }
static void i_discovery_html(void) { discovery_case("disc_html", CLOUDAUTH_ERR_TOKEN_ENDPOINT, "JSON"); }
static void i_discovery_foreign(void) {
    discovery_case("disc_foreign", CLOUDAUTH_ERR_TOKEN_ENDPOINT, "not the configured one");
}
static void i_discovery_no_endpoint(void) {
    discovery_case("disc_no_endpoint", CLOUDAUTH_ERR_TOKEN_ENDPOINT, "no token_endpoint");
}
static void i_discovery_remote_http(void) {
    discovery_case("disc_remote_http", CLOUDAUTH_ERR_INSECURE_URL, "token_endpoint");
}
static void i_discovery_huge(void) { discovery_case("disc_huge", CLOUDAUTH_ERR_TOO_LARGE, NULL); }
static void i_discovery_redirect(void) {
    discovery_case("disc_redirect", CLOUDAUTH_ERR_TOKEN_ENDPOINT, "HTTP 302");
}

/* session_new with `key` = a file holding `contents` (NULL: a path that does not exist). */
static void key_file_case(const char *key, const char *contents, const char *extra_key,
                          const char *extra_value) {
    char path[] = "/tmp/cloudauth-hostile-key-XXXXXX";
    cloudauth_config *cfg = config_for("ok", NULL);
    cloudauth_session *s = NULL;
    const char *msg;
    if (contents) {
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) abort();
        fputs(contents, f);
        fclose(f);
    } else {
        strcpy(path, "/nonexistent/cloudauth/key.pem");
    }
    if (extra_key) set(cfg, extra_key, extra_value);
    set(cfg, key, path);
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "session_new");
    if (s) fail("*out written on failure");
    check_message(NULL);
    msg = cloudauth_last_error();
    if (strncmp(msg, key, strlen(key)) != 0) fail("last error does not name %s: %s", key, msg);
    if (strstr(msg, "SECRETSTUFF") || strstr(msg, "BEGIN")) fail("last error quotes the key: %s", msg);
    cloudauth_config_free(cfg);
    if (contents) unlink(path);
}
#define JUNK_KEY "-----BEGIN PRIVATE KEY-----\nSECRETSTUFFSECRETSTUFF\n-----END PRIVATE KEY-----\n"
static void i_client_key_missing(void) {
    key_file_case("client_key_file", NULL, "auth_method", "private_key_jwt");
}
static void i_client_key_junk(void) {
    key_file_case("client_key_file", JUNK_KEY, "auth_method", "private_key_jwt");
}
static void i_client_key_encrypted(void) {
    key_file_case("client_key_file",
                  "-----BEGIN ENCRYPTED PRIVATE KEY-----\nSECRETSTUFF\n-----END ENCRYPTED PRIVATE KEY-----\n",
                  "auth_method", "private_key_jwt");
}
static void i_client_key_binary(void) {
    key_file_case("client_key_file", "\x7f" "ELF SECRETSTUFF \xff\xfe", "auth_method", "private_key_jwt");
}
static void i_dpop_key_junk(void) { key_file_case("dpop_key_file", JUNK_KEY, "dpop", "true"); }
static void i_dpop_key_missing(void) { key_file_case("dpop_key_file", NULL, "dpop", "true"); }

static const struct simple_case idp_cases[] = {
    {"idp", "discovery_ok", i_discovery_ok},
    {"idp", "discovery_404", i_discovery_404},
    {"idp", "discovery_not_json", i_discovery_html},
    {"idp", "discovery_foreign_issuer", i_discovery_foreign},
    {"idp", "discovery_no_token_endpoint", i_discovery_no_endpoint},
    {"idp", "discovery_remote_http_endpoint", i_discovery_remote_http},
    {"idp", "discovery_2MiB", i_discovery_huge},
    {"idp", "discovery_redirect_not_followed", i_discovery_redirect},
    {"idp", "client_key_missing", i_client_key_missing},
    {"idp", "client_key_junk", i_client_key_junk},
    {"idp", "client_key_encrypted", i_client_key_encrypted},
    {"idp", "client_key_binary", i_client_key_binary},
    {"idp", "dpop_key_junk", i_dpop_key_junk},
    {"idp", "dpop_key_missing", i_dpop_key_missing},
};

static const struct simple_case misuse_cases[] = {
    {"misuse", "config_set_null_cfg", m_config_null_cfg},
    {"misuse", "config_set_null_key", m_config_null_key},
    {"misuse", "config_set_null_value", m_config_null_value},
    {"misuse", "config_set_bad_utf8", m_config_bad_utf8},
    {"misuse", "config_set_unknown_key", m_config_unknown_key},
    {"misuse", "config_set_bad_values", m_config_bad_values},
    {"misuse", "config_set_secret_not_echoed", m_config_secret_not_echoed},
    {"misuse", "config_set_1MiB_url", m_config_huge_url},
    {"misuse", "session_new_nulls", m_session_new_nulls},
    {"misuse", "session_new_incomplete", m_session_new_missing},
    {"misuse", "token_nulls", m_token_nulls},
    {"misuse", "token_buffer_too_small", m_token_buffers},
    {"misuse", "token_expires_in_nulls", m_expires_in_nulls},
    {"misuse", "invalidate_nulls", m_invalidate_nulls},
    {"misuse", "request_nulls", m_request_nulls},
    {"misuse", "request_bad_utf8", m_request_bad_utf8},
    {"misuse", "request_bad_headers", m_request_bad_headers},
    {"misuse", "request_bad_method_or_url", m_request_bad_method_url},
    {"misuse", "request_1MiB_url", m_url_1MiB},
    {"misuse", "request_1MiB_path", m_path_1MiB},
    {"misuse", "request_9KiB_url_with_secret", m_url_9KiB_with_secret},
    {"misuse", "request_1MiB_header_value", m_header_value_1MiB},
    {"misuse", "request_1MiB_header_name", m_header_name_1MiB},
    {"misuse", "request_1MiB_method", m_method_1MiB},
    {"misuse", "request_headers_total", m_headers_total},
    {"misuse", "request_binary_body", m_binary_body},
    {"misuse", "response_nulls", m_response_nulls},
    {"misuse", "response_misuse", m_response_misuse},
    {"misuse", "free_null", m_free_null},
    {"misuse", "result_names", m_result_names},
    {"misuse", "last_error_cleared_on_success", m_last_error_cleared},
    {"misuse", "remote_http_opt_in", m_remote_http_opt_in},
    {"misuse", "async_nulls", m_async_nulls},
    {"misuse", "token_cached", m_token_cached_misuse},
    {"misuse", "queue", m_queue_misuse},
    {"misuse", "set_credentials", m_set_credentials_misuse},
    {"misuse", "stats", m_stats_misuse},
    {"misuse", "event_callback", m_event_callback_misuse},
};

/* ---- what events and async completions carry ------------------------------------------------ */

/* Every string handed to a callback obeys the last error's rules. */
#define MAX_SEEN 64
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen[MAX_SEEN][1100];
static int n_seen;
static const char *extra_secret; /* a rotated secret, checked like SECRET */

static void remember(const char *text) {
    pthread_mutex_lock(&seen_lock);
    if (n_seen < MAX_SEEN) {
        if (strlen(text) >= sizeof seen[0]) {
            snprintf(seen[n_seen], sizeof seen[0], "[a message of %zu bytes]", strlen(text));
        } else {
            strcpy(seen[n_seen], text);
        }
        n_seen++;
    }
    pthread_mutex_unlock(&seen_lock);
}

static void on_event(void *user, const cloudauth_event *e) {
    (void)user;
    remember(e->message ? e->message : "(NULL message)");
    remember(e->reason ? e->reason : "(NULL reason)");
}

static void check_seen(const char *token, int want_at_least) {
    int i, j;
    pthread_mutex_lock(&seen_lock);
    if (n_seen < want_at_least) fail("only %d callback strings, want %d", n_seen, want_at_least);
    for (i = 0; i < n_seen; i++) {
        const char *m = seen[i];
        size_t chars = 0;
        const unsigned char *p;
        for (p = (const unsigned char *)m; *p; p++) {
            if ((*p & 0xC0) != 0x80) chars++;
            if (*p < 0x20 || *p == 0x7f) fail("a callback string holds a control character: %.100s", m);
        }
        if (chars > MAX_MESSAGE_CHARS) fail("a callback string of %zu characters", chars);
        for (j = 0; j < n_forms; j++)
            if (holds_piece(m, forms[j])) fail("a callback string holds a form of the secret: %s", m);
        if (extra_secret && holds_piece(m, extra_secret)) fail("a callback string holds the new secret: %s", m);
        if (token && *token && holds_piece(m, token)) fail("a callback string holds the token: %s", m);
    }
    n_seen = 0;
    pthread_mutex_unlock(&seen_lock);
}

static cloudauth_session *session_with_events(const char *tok, const char *extra) {
    cloudauth_config *cfg = config_for(tok, extra);
    cloudauth_session *s = NULL;
    check_rc(cloudauth_config_set_event_callback(cfg, on_event, NULL), CLOUDAUTH_OK, "set_event_callback");
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "session_new");
    cloudauth_config_free(cfg);
    pthread_mutex_lock(&seen_lock);
    n_seen = 0;
    pthread_mutex_unlock(&seen_lock);
    return s;
}

static void e_events_of_echoing_endpoint(const char *extra) {
    cloudauth_session *s = session_with_events("echo_500_at200_html", extra);
    char t[256];
    if (!s) return;
    check_rc(get_token(s, t), CLOUDAUTH_ERR_TOKEN_ENDPOINT, "token");
    check_message(NULL);
    check_seen(NULL, 4); /* a retry and a failure, message and reason each */
    cloudauth_session_free(s);
}
static void e_events_post(void) { e_events_of_echoing_endpoint("max_retries=1"); }
static void e_events_basic(void) { e_events_of_echoing_endpoint("max_retries=1;auth_method=client_secret_basic"); }

static void e_events_of_api(void) {
    cloudauth_session *s = session_with_events("ok", NULL);
    cloudauth_response *r = NULL;
    char t[256] = "";
    if (!s) return;
    check_rc(get_token(s, t), CLOUDAUTH_OK, "token");
    check_rc(get(s, "token_in_401", &r), CLOUDAUTH_OK, "401 echoing the token");
    cloudauth_response_free(r);
    r = NULL;
    check_rc(get(s, "to_remote_http", &r), CLOUDAUTH_ERR_INSECURE_URL, "redirect with the token in its path");
    check_message(t);
    check_seen(t, 2);
    cloudauth_session_free(s);
}

struct completion {
    pthread_mutex_t lock;
    int done;
    cloudauth_result rc;
    char error[1100];
    char token[256];
};

static void on_token(void *user, cloudauth_result rc, const char *token, size_t len, const char *error) {
    struct completion *c = user;
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    snprintf(c->error, sizeof c->error, "%s", error ? error : "(NULL)");
    if (token && len < sizeof c->token) memcpy(c->token, token, len + 1);
    c->done++;
    pthread_mutex_unlock(&c->lock);
}
static void on_response(void *user, cloudauth_result rc, cloudauth_response *r, const char *error) {
    struct completion *c = user;
    pthread_mutex_lock(&c->lock);
    c->rc = rc;
    snprintf(c->error, sizeof c->error, "%s", error ? error : "(NULL)");
    c->done++;
    pthread_mutex_unlock(&c->lock);
    cloudauth_response_free(r);
}

static int wait_done(struct completion *c, int max_ms) {
    long long until = now_ms() + (long long)max_ms * time_factor;
    int done = 0;
    while (now_ms() < until) {
        struct timespec pause = {0, 5 * 1000 * 1000};
        pthread_mutex_lock(&c->lock);
        done = c->done;
        pthread_mutex_unlock(&c->lock);
        if (done) break;
        nanosleep(&pause, NULL);
    }
    return done;
}

static void e_async_token_error(const char *tok, const char *extra, cloudauth_result want) {
    cloudauth_session *s = session_for(tok, extra);
    struct completion c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.lock, NULL);
    if (!s) return;
    check_rc(cloudauth_session_token_async(s, on_token, &c, NULL), CLOUDAUTH_OK, "token_async");
    if (!wait_done(&c, 4000)) fail("token_async never completed");
    else {
        check_rc(c.rc, want, "token_async result");
        remember(c.error);
        check_seen(NULL, 1);
        if (c.done != 1) fail("done ran %d times", c.done);
    }
    cloudauth_session_free(s);
    pthread_mutex_destroy(&c.lock);
}
static void e_async_echo_post(void) { e_async_token_error("echo_400_all_desc", NULL, CLOUDAUTH_ERR_AUTH_REJECTED); }
static void e_async_echo_basic(void) { e_async_token_error("echo_401_at200_html", "auth_method=client_secret_basic", CLOUDAUTH_ERR_AUTH_REJECTED); }
static void e_async_hang(void) { e_async_token_error("hang", NULL, CLOUDAUTH_ERR_TIMEOUT); }

static void e_async_request_token_scrubbed(void) {
    cloudauth_session *s = plain_session();
    struct completion c;
    char t[256] = "";
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.lock, NULL);
    if (!s) return;
    check_rc(get_token(s, t), CLOUDAUTH_OK, "token");
    check_rc(cloudauth_session_request_async(s, "GET", "to_remote_http", NULL, 0, NULL, 0, on_response, &c, NULL),
             CLOUDAUTH_OK, "request_async");
    if (!wait_done(&c, 4000)) fail("request_async never completed");
    else {
        check_rc(c.rc, CLOUDAUTH_ERR_INSECURE_URL, "request_async result");
        remember(c.error);
        check_seen(t, 1);
    }
    cloudauth_session_free(s);
    pthread_mutex_destroy(&c.lock);
}

/* After a rotation the new secret is scrubbed too (the scrubber follows the credentials). */
static void e_rotated_secret_scrubbed(void) {
    static const char *const NEW_SECRET = "N3w+S3cr3t/after%rotation:&=xyz-0123456789";
    cloudauth_session *s = session_with_events("echo_400_all_desc", NULL);
    char t[256];
    if (!s) return;
    extra_secret = NEW_SECRET;
    check_rc(cloudauth_session_set_credentials(s, "rotated id", NEW_SECRET), CLOUDAUTH_OK, "set_credentials");
    check_rc(get_token(s, t), CLOUDAUTH_ERR_AUTH_REJECTED, "token");
    remember(cloudauth_last_error());
    {
        char *enc = form_encode(NEW_SECRET, 0, 1);
        if (holds_piece(cloudauth_last_error(), enc)) fail("the new secret, form-encoded: %s", cloudauth_last_error());
        free(enc);
    }
    check_seen(NULL, 1);
    extra_secret = NULL;
    cloudauth_session_free(s);
}

static const struct simple_case event_cases[] = {
    {"events-async", "events_of_echoing_endpoint_post", e_events_post},
    {"events-async", "events_of_echoing_endpoint_basic", e_events_basic},
    {"events-async", "events_of_hostile_api", e_events_of_api},
    {"events-async", "async_token_echo_post", e_async_echo_post},
    {"events-async", "async_token_echo_basic", e_async_echo_basic},
    {"events-async", "async_token_hang", e_async_hang},
    {"events-async", "async_request_token_in_redirect", e_async_request_token_scrubbed},
    {"events-async", "rotated_secret_scrubbed", e_rotated_secret_scrubbed},
};

/* ---- concurrency ------------------------------------------------------------------------- */

#define THREADS 8
struct worker {
    cloudauth_session *s;
    int id;
    const char *mode;
    char token[256];
    pthread_t t;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    char url[128], want[160];
    int i;
    case_name = "concurrency worker";
    if (strcmp(w->mode, "token") == 0) {
        check_rc(get_token(w->s, w->token), CLOUDAUTH_OK, "token");
        return NULL;
    }
    for (i = 0; i < 15; i++) {
        cloudauth_response *r = NULL;
        cloudauth_result rc;
        const char *path = w->mode;
        cloudauth_result want_rc = CLOUDAUTH_OK;
        int want_status = 200;
        if (strcmp(w->mode, "mixed") == 0) {
            static const char *const paths[] = {"echo", "reset", "always_401", "close", "code_404", "big_body"};
            static const cloudauth_result codes[] = {CLOUDAUTH_OK, CLOUDAUTH_ERR_NETWORK, CLOUDAUTH_OK,
                                                     CLOUDAUTH_ERR_NETWORK, CLOUDAUTH_OK, CLOUDAUTH_OK};
            static const int statuses[] = {200, 0, 401, 0, 404, 200};
            int k = (w->id + i) % 6;
            path = paths[k];
            want_rc = codes[k];
            want_status = statuses[k];
        }
        if (strcmp(w->mode, "invalidate") == 0 && i % 3 == 0) cloudauth_session_invalidate(w->s);
        if (strcmp(path, "invalidate") == 0) path = "need_token";
        snprintf(url, sizeof url, "%s?nonce=t%d-%d", path, w->id, i);
        rc = get(w->s, url, &r);
        check_rc(rc, want_rc, url);
        check_message(NULL);
        if (rc == CLOUDAUTH_OK) {
            if (cloudauth_response_status(r) != want_status)
                fail("%s: status %u", url, cloudauth_response_status(r));
            if (want_status == 200 && strcmp(path, "big_body") != 0) {
                char *body = body_of(r);
                snprintf(want, sizeof want, "nonce=t%d-%d ", w->id, i);
                if (strncmp(body, "fresh", 5) != 0 && !strstr(body, want))
                    fail("%s: another's response: %.100s", url, body);
                free(body);
            }
        }
        cloudauth_response_free(r);
    }
    return NULL;
}

static void run_workers(const char *tok, const char *mode, int check_one_token) {
    cloudauth_session *s = session_for(tok, NULL);
    struct worker w[THREADS];
    int i;
    long long start = now_ms();
    if (!s) return;
    for (i = 0; i < THREADS; i++) {
        w[i].s = s;
        w[i].id = i;
        w[i].mode = mode;
        w[i].token[0] = 0;
        if (pthread_create(&w[i].t, NULL, worker_main, &w[i]) != 0) abort();
    }
    for (i = 0; i < THREADS; i++) pthread_join(w[i].t, NULL);
    check_time(start, 8000, mode);
    if (check_one_token)
        for (i = 1; i < THREADS; i++)
            if (strcmp(w[i].token, w[0].token) != 0) fail("threads got different tokens: single flight broken");
    cloudauth_session_free(s);
}

static void c_echo(void) { run_workers("ok", "echo", 0); }
static void c_single_flight(void) { run_workers("slow_ok?s=0.5", "token", 1); }
static void c_mixed(void) { run_workers("ok", "mixed", 0); }
static void c_invalidate(void) { run_workers("ok", "invalidate", 0); }
static void c_401_once(void) { run_workers("ok", "need_token", 0); }

static void *free_race_main(void *arg) {
    cloudauth_session *s = session_for("ok", NULL);
    int i;
    (void)arg;
    case_name = "sessions_made_and_freed";
    for (i = 0; i < 10 && s; i++) {
        cloudauth_response *r = NULL;
        check_rc(get(s, "echo", &r), CLOUDAUTH_OK, "get");
        cloudauth_response_free(r);
        cloudauth_session_free(s);
        s = session_for("ok", NULL);
    }
    cloudauth_session_free(s);
    return NULL;
}
static void c_sessions_made_and_freed(void) {
    pthread_t t[4];
    int i;
    for (i = 0; i < 4; i++) pthread_create(&t[i], NULL, free_race_main, NULL);
    for (i = 0; i < 4; i++) pthread_join(t[i], NULL);
}

static const struct simple_case concurrency_cases[] = {
    {"concurrency", "8_threads_own_responses", c_echo},
    {"concurrency", "8_threads_first_use_one_token", c_single_flight},
    {"concurrency", "8_threads_mixed_hostile", c_mixed},
    {"concurrency", "8_threads_with_invalidate", c_invalidate},
    {"concurrency", "8_threads_need_valid_token", c_401_once},
    {"concurrency", "4_threads_making_and_freeing_sessions", c_sessions_made_and_freed},
};

/* ---- fork ---------------------------------------------------------------------------------- */

/* n requests, each checked to answer its own nonce; returns the number that went wrong. */
static int own_responses(cloudauth_session *s, const char *who, int n) {
    int i, bad = 0;
    char url[128], want[128];
    for (i = 0; i < n; i++) {
        cloudauth_response *r = NULL;
        cloudauth_result rc;
        snprintf(url, sizeof url, "need_token?nonce=%s-%ld-%d", who, (long)getpid(), i);
        rc = get(s, url, &r);
        if (rc != CLOUDAUTH_OK) {
            fprintf(stderr, "  %s %ld request %d: %s: %s\n", who, (long)getpid(), i,
                    cloudauth_result_name(rc), cloudauth_last_error());
            bad++;
        } else {
            char *body = body_of(r);
            snprintf(want, sizeof want, "nonce=%s-%ld-%d auth=valid", who, (long)getpid(), i);
            if (cloudauth_response_status(r) != 200 || strcmp(body, want) != 0) {
                fprintf(stderr, "  %s %ld request %d: got %u '%.80s', want '%s'\n", who,
                        (long)getpid(), i, cloudauth_response_status(r), body, want);
                bad++;
            }
            free(body);
        }
        cloudauth_response_free(r);
    }
    return bad;
}

/* Under valgrind (HOSTILE_VALGRIND=1) a child that leaves with _exit may have memory counted as
 * lost that only the parent's other threads pointed at (valgrind does not see the stacks of
 * threads a child does not have: tests/valgrind/README.md; earlier groups leave library threads
 * running), and valgrind's --error-exitcode (99) replaces its status; the verdict then travels
 * through a pipe instead. Natively the status must be 0. tests/c/test_fork.c checks children
 * under valgrind strictly, from a parent whose threads are known. */
static int under_valgrind;

static int child_status_ok(int status) {
    if (!WIFEXITED(status)) return 0;
    return WEXITSTATUS(status) == 0 || (under_valgrind && WEXITSTATUS(status) == 99);
}

/* Runs `child` in a forked child (bounded by alarm; it leaves with _exit, so no destructors
 * run) while the parent runs `parent`; the child's verdict comes back through a pipe. */
static void fork_and_check(cloudauth_session *s, int (*child)(cloudauth_session *),
                           int (*parent)(cloudauth_session *)) {
    pid_t pid;
    int status = 0, bad_parent = 0, fds[2];
    char verdict = '?';
    long long start = now_ms();
    if (pipe(fds) != 0) {
        fail("pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fail("fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        char v;
        close(fds[0]);
        alarm((unsigned)(8 * time_factor));
        v = child(s) ? 'F' : 'P';
        if (write(fds[1], &v, 1) != 1) _exit(3);
        _exit(v == 'P' ? 0 : 1);
    }
    close(fds[1]);
    if (parent) bad_parent = parent(s);
    while (read(fds[0], &verdict, 1) < 0 && errno == EINTR) {}
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    check_time(start, 12000, "fork case");
    if (bad_parent) fail("the parent got %d wrong answers", bad_parent);
    if (WIFSIGNALED(status)) fail("the child died of signal %d (14 = alarm: it hung)", WTERMSIG(status));
    else if (verdict != 'P' || !child_status_ok(status))
        fail("the child failed (verdict %c, exit %d)", verdict, WEXITSTATUS(status));
}

static int child_requests(cloudauth_session *s) { return own_responses(s, "child", 20); }
static int parent_requests(cloudauth_session *s) { return own_responses(s, "parent", 20); }

static void f_parent_and_child_at_once(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    if (own_responses(s, "before", 3)) fail("before the fork");
    fork_and_check(s, child_requests, parent_requests);
    if (own_responses(s, "after", 3)) fail("after the fork");
    cloudauth_session_free(s);
}
static void f_before_first_use(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    fork_and_check(s, child_requests, parent_requests);
    cloudauth_session_free(s);
}

static char parent_token[256];
static int child_keeps_token(cloudauth_session *s) {
    char t[256] = "";
    if (get_token(s, t) != CLOUDAUTH_OK) return 1;
    if (strcmp(t, parent_token) != 0) {
        fprintf(stderr, "  child: the token was not kept across fork\n");
        return 1;
    }
    return own_responses(s, "child", 5);
}
static void f_child_keeps_token(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    check_rc(get_token(s, parent_token), CLOUDAUTH_OK, "token");
    fork_and_check(s, child_keeps_token, parent_requests);
    cloudauth_session_free(s);
}

static int child_new_session(cloudauth_session *inherited) {
    cloudauth_session *s = session_for("ok", NULL);
    int bad;
    (void)inherited;
    if (!s) return 1;
    bad = own_responses(s, "fresh", 10);
    cloudauth_session_free(s);
    return bad;
}
static void f_new_session_in_child(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    if (own_responses(s, "before", 3)) fail("before the fork");
    fork_and_check(s, child_new_session, parent_requests);
    cloudauth_session_free(s);
}

static void *slow_fetch(void *arg) {
    char t[256];
    case_name = "fork_while_fetching (thread)";
    check_rc(get_token(arg, t), CLOUDAUTH_OK, "slow token");
    return NULL;
}
static int child_after_held_fetch(cloudauth_session *s) {
    char t[256] = "";
    cloudauth_result rc = get_token(s, t);
    if (rc != CLOUDAUTH_OK) {
        fprintf(stderr, "  child: token: %s: %s\n", cloudauth_result_name(rc), cloudauth_last_error());
        return 1;
    }
    return own_responses(s, "child", 5);
}
static void f_while_fetching(void) {
    cloudauth_session *s = session_for("slow_ok?s=0.6", NULL);
    pthread_t t;
    struct timespec pause = {0, 300 * 1000 * 1000};
    if (!s) return;
    pthread_create(&t, NULL, slow_fetch, s);
    nanosleep(&pause, NULL); /* the thread is now inside the token request */
    fork_and_check(s, child_after_held_fetch, NULL);
    pthread_join(t, NULL);
    if (own_responses(s, "parent", 5)) fail("the parent after the fork");
    cloudauth_session_free(s);
}

static int child_forks_again(cloudauth_session *s) {
    pid_t pid;
    int status = 0, fds[2], bad = own_responses(s, "child", 3);
    char verdict = '?';
    if (pipe(fds) != 0) return 1;
    pid = fork();
    if (pid == 0) {
        char v = own_responses(s, "grandchild", 5) ? 'F' : 'P';
        if (write(fds[1], &v, 1) != 1) _exit(3);
        _exit(v == 'P' ? 0 : 1);
    }
    close(fds[1]);
    bad += own_responses(s, "child", 5);
    while (read(fds[0], &verdict, 1) < 0 && errno == EINTR) {}
    close(fds[0]);
    waitpid(pid, &status, 0);
    return bad || verdict != 'P' || !child_status_ok(status);
}
static void f_grandchild(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    if (own_responses(s, "before", 2)) fail("before the fork");
    fork_and_check(s, child_forks_again, parent_requests);
    cloudauth_session_free(s);
}

static void *thread_requests(void *arg) {
    case_name = "fork thread";
    if (own_responses(arg, "thread", 5)) fail("a thread got wrong answers");
    return NULL;
}
static int child_with_threads(cloudauth_session *s) {
    pthread_t t;
    int bad = 0;
    if (pthread_create(&t, NULL, thread_requests, s) != 0) return 1;
    bad = own_responses(s, "child", 5);
    pthread_join(t, NULL);
    return bad || case_failed;
}
static void f_threads_then_fork(void) {
    cloudauth_session *s = plain_session();
    pthread_t t[3];
    int i;
    if (!s) return;
    for (i = 0; i < 3; i++) pthread_create(&t[i], NULL, thread_requests, s);
    for (i = 0; i < 3; i++) pthread_join(t[i], NULL);
    fork_and_check(s, child_with_threads, parent_requests);
    cloudauth_session_free(s);
}

static int child_frees_inherited(cloudauth_session *s) {
    int bad = own_responses(s, "child", 3);
    cloudauth_session_free(s); /* frees without touching the parent's sockets */
    return bad;
}
static void f_child_frees_session(void) {
    cloudauth_session *s = plain_session();
    if (!s) return;
    if (own_responses(s, "before", 2)) fail("before the fork");
    fork_and_check(s, child_frees_inherited, parent_requests);
    if (own_responses(s, "after", 3)) fail("the parent after the child freed its copy");
    cloudauth_session_free(s);
}

static const struct simple_case fork_cases[] = {
    {"fork", "parent_and_child_at_once", f_parent_and_child_at_once},
    {"fork", "before_first_use", f_before_first_use},
    {"fork", "child_keeps_the_token", f_child_keeps_token},
    {"fork", "new_session_in_child", f_new_session_in_child},
    {"fork", "while_another_thread_fetches", f_while_fetching},
    {"fork", "grandchild", f_grandchild},
    {"fork", "threads_then_fork", f_threads_then_fork},
    {"fork", "child_frees_its_copy", f_child_frees_session},
};

/* ---- mutual TLS: bad certificate and key files ------------------------------------------- */

/* Made once with openssl in a private directory: a self-signed client certificate and its key,
 * and every kind of bad file. Removed at exit. */
static char mtls_dir[128];

static void mtls_cleanup(void) {
    char cmd[192];
    if (!mtls_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", mtls_dir);
    if (system(cmd) != 0) fprintf(stderr, "hostile: could not remove %s\n", mtls_dir);
}

/* Two buffers in turn, so one call may use two paths. */
static const char *mtls_path(const char *name) {
    static __thread char paths[2][256];
    static __thread int next;
    char *path = paths[next++ & 1];
    snprintf(path, sizeof paths[0], "%s/%s", mtls_dir, name);
    return path;
}

static int mtls_setup(void) {
    static const char *const steps[] = {
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout good.key"
        " -out good.pem -days 2 -subj /CN=hostile",
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key",
        "openssl pkcs8 -topk8 -in good.key -out enc-pkcs8.key -v2 aes-256-cbc -passout pass:pw",
        "openssl ec -in good.key -out enc-trad.key -aes256 -passout pass:pw",
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.key",
        "printf -- '-----BEGIN PRIVATE KEY-----\\n!!not base64!!\\n-----END PRIVATE KEY-----\\n'"
        " > garbage.key",
        ": > empty.key",
        "head -c 1048576 /dev/zero | tr '\\0' 'A' > huge.key",
    };
    char cmd[512];
    size_t i;
    if (mtls_dir[0]) return 1;
    snprintf(mtls_dir, sizeof mtls_dir, "/tmp/cloudauth-hostile-mtls-XXXXXX");
    if (!mkdtemp(mtls_dir)) {
        mtls_dir[0] = 0;
        fail("mkdtemp: %s", strerror(errno));
        return 0;
    }
    atexit(mtls_cleanup);
    for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(cmd, sizeof cmd, "cd '%s' && %s >/dev/null 2>&1", mtls_dir, steps[i]);
        if (system(cmd) != 0) {
            fail("setup failed: %s", steps[i]);
            return 0;
        }
    }
    return 1;
}

/* The message must name `key` first and quote no line of any key file's PEM. */
static void check_names_key(const char *key) {
    static const char *const keys[] = {"good.key", "other.key", "enc-pkcs8.key", "enc-trad.key",
                                       "p521.key"};
    const char *msg = cloudauth_last_error();
    char line[256];
    size_t i, n = strlen(key);
    check_message(NULL);
    if (strncmp(msg, key, n) != 0 || (msg[n] != ':' && msg[n] != ' '))
        fail("the message does not start with %s: %s", key, msg);
    if (strstr(msg, "-----")) fail("the message quotes a PEM line: %s", msg);
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        FILE *f = fopen(mtls_path(keys[i]), "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            /* the base64 lines (not the markers, a blank line or Proc-Type/DEK-Info headers) */
            if (strlen(line) >= 12 && strncmp(line, "-----", 5) != 0 && !strchr(line, ':') &&
                holds_piece(msg, line))
                fail("the message quotes %s: %s", keys[i], msg);
        }
        fclose(f);
    }
}

static cloudauth_config *mtls_config(const char *cert, const char *key) {
    cloudauth_config *cfg = cloudauth_config_new();
    char num[32];
    snprintf(num, sizeof num, "%d", timeout_ms);
    set(cfg, "client_id", CLIENT_ID);
    set(cfg, "auth_method", "tls_client_auth");
    /* Nothing listens there: a case that gets past the files ends at connect. */
    set(cfg, "token_url", "https://127.0.0.1:1/token");
    set(cfg, "timeout_ms", num);
    set(cfg, "connect_timeout_ms", num);
    set(cfg, "max_retries", "0");
    set(cfg, "refresh_mode", "inline");
    if (cert) set(cfg, "client_cert_file", mtls_path(cert));
    if (key) set(cfg, "client_key_file", mtls_path(key));
    return cfg;
}

static void mtls_refused(const char *cert, const char *key, const char *named, const char *what) {
    cloudauth_config *cfg = mtls_config(cert, key);
    cloudauth_session *s = NULL;
    long long start = now_ms();
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, what);
    check_time(start, 2000, what);
    check_names_key(named);
    if (s) fail("%s: a session was made", what);
    cloudauth_session_free(s);
    cloudauth_config_free(cfg);
}

static void t_mtls_bad_files(void) {
    if (!mtls_setup()) return;
    mtls_refused("missing.pem", "good.key", "client_cert_file", "missing certificate");
    mtls_refused("good.pem", "missing.key", "client_key_file", "missing key");
    mtls_refused("good.pem", ".", "client_key_file", "key is a directory");
    mtls_refused("good.pem", "enc-pkcs8.key", "client_key_file", "encrypted PKCS#8");
    mtls_refused("good.pem", "enc-trad.key", "client_key_file", "encrypted traditional");
    mtls_refused("good.pem", "p521.key", "client_key_file", "P-521 key");
    mtls_refused("good.pem", "good.pem", "client_key_file", "a certificate as the key");
    mtls_refused("good.pem", "garbage.key", "client_key_file", "garbled PEM");
    mtls_refused("good.pem", "empty.key", "client_key_file", "empty key");
    mtls_refused("good.pem", "huge.key", "client_key_file", "1 MiB of 'A'");
    mtls_refused("good.pem", "other.key", "client_key_file", "a key of another certificate");
    mtls_refused("good.key", "good.key", "client_cert_file", "a key as the certificate");
    mtls_refused(NULL, "good.key", "client_cert_file", "no certificate set");
    mtls_refused("good.pem", NULL, "client_key_file", "no key set");
}

static void t_mtls_secret_and_http(void) {
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    char url[128];
    if (!mtls_setup()) return;
    cfg = mtls_config("good.pem", "good.key");
    set(cfg, "client_secret", SECRET);
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "a secret too");
    check_names_key("client_secret");
    cloudauth_config_free(cfg);
    cfg = mtls_config("good.pem", "good.key");
    snprintf(url, sizeof url, "%s/ok", main_url);
    set(cfg, "token_url", url);
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "http token_url");
    check_names_key("token_url");
    cloudauth_config_free(cfg);
    if (s) fail("a session was made");
    cloudauth_session_free(s);
}

/* Files that break after session_new fail each token request, naming the key, and nothing
 * is sent; good files again make it go on to the network (where nothing listens). */
static void t_mtls_files_break_later(void) {
    char cmd[600], buf[256];
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    if (!mtls_setup()) return;
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mtls_path("good.key"), mtls_path("live.key"));
    if (system(cmd) != 0) fail("cp failed");
    cfg = mtls_config("good.pem", "live.key");
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "good files");
    cloudauth_config_free(cfg);
    if (!s) return;
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mtls_path("garbage.key"), mtls_path("live.key"));
    if (system(cmd) != 0) fail("cp failed");
    check_rc(get_token(s, buf), CLOUDAUTH_ERR_INVALID_ARGUMENT, "garbled key at fetch");
    check_names_key("client_key_file");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mtls_path("other.key"), mtls_path("live.key"));
    if (system(cmd) != 0) fail("cp failed");
    check_rc(get_token(s, buf), CLOUDAUTH_ERR_INVALID_ARGUMENT, "mismatched key at fetch");
    check_names_key("client_key_file");
    snprintf(cmd, sizeof cmd, "rm -f '%s'", mtls_path("live.key"));
    if (system(cmd) != 0) fail("rm failed");
    check_rc(get_token(s, buf), CLOUDAUTH_ERR_INVALID_ARGUMENT, "key removed at fetch");
    check_names_key("client_key_file");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", mtls_path("good.key"), mtls_path("live.key"));
    if (system(cmd) != 0) fail("cp failed");
    check_rc(get_token(s, buf), CLOUDAUTH_ERR_NETWORK, "good key again: on to connect");
    check_message(NULL);
    cloudauth_session_free(s);
}

static const struct simple_case mtls_cases[] = {
    {"mtls-files", "bad_files_at_session_new", t_mtls_bad_files},
    {"mtls-files", "secret_or_http_token_url_refused", t_mtls_secret_and_http},
    {"mtls-files", "files_break_after_session_new", t_mtls_files_break_later},
};

/* ---- main ---------------------------------------------------------------------------------- */

static void run_simple(const struct simple_case *cases, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (!selected(cases[i].group, cases[i].name)) continue;
        case_name = cases[i].name;
        case_failed = 0;
        cases[i].fn();
        finish_case(cases[i].group, cases[i].name);
    }
}

/* ---- workload identity: token files, service-account files, keys that do not fit ---------- */

/* A JWT-shaped token the "platform" wrote ({"alg":"RS256"} . {"sub":"hostile"} . signature). */
#define PLATFORM_JWT "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJob3N0aWxlIn0.c2lnbmF0dXJlLW9mLXRoZS1wbGF0Zm9ybS10b2tlbg"

static char wl_dir[128];

static void wl_cleanup(void) {
    char cmd[192];
    if (!wl_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", wl_dir);
    if (system(cmd) != 0) fprintf(stderr, "hostile: could not remove %s\n", wl_dir);
}

/* `name` in a private directory holding `contents` (NULL: removed); its path. */
static const char *wl_file(const char *name, const char *contents) {
    static __thread char paths[4][256];
    static __thread int next;
    char *path = paths[next++ & 3];
    if (!wl_dir[0]) {
        snprintf(wl_dir, sizeof wl_dir, "/tmp/cloudauth-hostile-wl-XXXXXX");
        if (!mkdtemp(wl_dir)) {
            wl_dir[0] = 0;
            fail("mkdtemp: %s", strerror(errno));
            return "/nonexistent";
        }
        atexit(wl_cleanup);
    }
    snprintf(path, sizeof paths[0], "%s/%s", wl_dir, name);
    if (contents) {
        FILE *f = fopen(path, "w");
        if (!f) abort();
        fputs(contents, f);
        fclose(f);
    } else {
        unlink(path);
    }
    return path;
}

/* A config against the hostile server with no secret: `extra` as in config_for. */
static cloudauth_config *wl_config(const char *tok, const char *extra) {
    /* as config_for, without the secret these deployments do not have */
    cloudauth_config *bare = cloudauth_config_new();
    char buf[1024], num[32];
    set(bare, "client_id", CLIENT_ID);
    snprintf(buf, sizeof buf, "%s/%s", main_url, tok);
    set(bare, "token_url", buf);
    set(bare, "base_url", main_url);
    snprintf(num, sizeof num, "%d", timeout_ms);
    set(bare, "timeout_ms", num);
    set(bare, "max_retries", "0");
    set(bare, "proxy", "none");
    if (extra) {
        char *copy = xstrdup(extra), *save = NULL, *kv;
        for (kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            set(bare, kv, eq + 1);
        }
        free(copy);
    }
    return bare;
}

/* The last error is clean, names `key` first and holds no JWT piece. */
static void check_workload_message(const char *key) {
    const char *msg = cloudauth_last_error();
    check_message(PLATFORM_JWT);
    if (strstr(msg, "eyJ")) fail("last error holds a JWS: %s", msg);
    if (key && strncmp(msg, key, strlen(key)) != 0) fail("last error does not name %s: %s", key, msg);
}

/* A server that echoes what it got: the message scrubs it. `file_key` names the token file. */
static void wl_echo(const char *tok, const char *keys, const char *file_key, cloudauth_result want) {
    char extra[768], buf[256];
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    snprintf(extra, sizeof extra, "%s;%s=%s", keys, file_key, wl_file(file_key, PLATFORM_JWT "\n"));
    cfg = wl_config(tok, extra);
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "session_new");
    cloudauth_config_free(cfg);
    if (!s) return;
    check_rc(get_token(s, buf), want, "session_token");
    check_workload_message(NULL);
    if (!strstr(cloudauth_last_error(), "***")) fail("nothing was scrubbed: %s", cloudauth_last_error());
    cloudauth_session_free(s);
}
#define REJECTED CLOUDAUTH_ERR_AUTH_REJECTED
static void w_echoed_federated_assertion(void) {
    wl_echo("echo_400_assertion_desc", "auth_method=client_assertion", "client_assertion_file", REJECTED);
}
static void w_echoed_federated_assertion_signature(void) {
    wl_echo("echo_401_assertionsig_html", "auth_method=client_assertion", "client_assertion_file", REJECTED);
}
static void w_echoed_subject_token(void) {
    wl_echo("echo_400_subject_desc", "grant_type=token_exchange", "subject_token_file", REJECTED);
}
static void w_echoed_subject_token_signature(void) {
    /* a 500 is retried: the retry reads the file again, and both echoes are scrubbed */
    wl_echo("echo_500_subjectsig_html", "grant_type=token_exchange;max_retries=1", "subject_token_file",
            CLOUDAUTH_ERR_TOKEN_ENDPOINT);
}
static void w_echoed_jwt_bearer_assertion(void) {
    char extra[512], buf[256];
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    if (!mtls_setup()) return;
    snprintf(extra, sizeof extra, "grant_type=jwt_bearer;client_key_file=%s", mtls_path("good.key"));
    cfg = wl_config("echo_400_grantassertion_desc", extra);
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "session_new");
    cloudauth_config_free(cfg);
    if (!s) return;
    check_rc(get_token(s, buf), CLOUDAUTH_ERR_AUTH_REJECTED, "session_token");
    check_workload_message(NULL);
    if (!strstr(cloudauth_last_error(), "***")) fail("nothing was scrubbed: %s", cloudauth_last_error());
    cloudauth_session_free(s);
}

/* session_new refuses the config; the message names `key`. */
static void wl_refused(const char *extra, const char *key) {
    cloudauth_config *cfg = wl_config("ok", extra);
    cloudauth_session *s = NULL;
    check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT, "session_new");
    if (s) fail("*out written on failure");
    check_workload_message(key);
    cloudauth_config_free(cfg);
    cloudauth_session_free(s);
}
static void w_bad_token_files(void) {
    static const char *const files[] = {NULL, "", " \n\n", "not a jwt at all", "{\"token\":1}",
                                        "-----BEGIN PRIVATE KEY-----\nSECRETSTUFF\n", "a.b"};
    static const char *const keys[][2] = {
        {"auth_method=client_assertion", "client_assertion_file"},
        {"grant_type=token_exchange", "subject_token_file"},
        {"grant_type=token_exchange;subject_token_file=", "actor_token_file"},
    };
    char extra[768];
    size_t i, k;
    for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (i = 0; i < sizeof files / sizeof files[0]; i++) {
            const char *path = wl_file("bad", files[i]);
            if (k == 2)
                snprintf(extra, sizeof extra, "%s%s;actor_token_file=%s", keys[k][0],
                         wl_file("subject", PLATFORM_JWT), path);
            else
                snprintf(extra, sizeof extra, "%s;%s=%s", keys[k][0], keys[k][1], path);
            wl_refused(extra, keys[k][1]);
            if (strstr(cloudauth_last_error(), "SECRETSTUFF")) fail("the file was quoted");
        }
    }
}
static void w_bad_service_account_files(void) {
    static const char *const files[][2] = {
        {"not json SECRETSTUFF", "is not JSON"},
        {"{\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nSECRETSTUFF\\n\"}", "has no client_email"},
        {"{\"client_email\":\"a@b\"}", "has no private_key"},
        {"{\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN ENCRYPTED PRIVATE KEY-----\\n"
         "SECRETSTUFF\\n-----END ENCRYPTED PRIVATE KEY-----\\n\"}", "encrypted"},
        {"{\"client_email\":\"a@b\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nSECRETSTUFF\\n"
         "-----END PRIVATE KEY-----\\n\"}", "usable"},
        {"{\"type\":\"external_account\"}", "external_account"},
        {"[1,2]", "not an object"},
    };
    char extra[512];
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(extra, sizeof extra, "grant_type=jwt_bearer;credentials_file=%s",
                 wl_file("sa.json", files[i][0]));
        wl_refused(extra, "credentials_file");
        if (!strstr(cloudauth_last_error(), files[i][1]))
            fail("last error lacks '%s': %s", files[i][1], cloudauth_last_error());
        if (strstr(cloudauth_last_error(), "SECRETSTUFF")) fail("the file was quoted");
    }
}
static void w_keys_that_do_not_fit(void) {
    char extra[512];
    cloudauth_config *cfg = cloudauth_config_new();
    /* an unknown grant type: refused by config_set, naming the key */
    check_rc(cloudauth_config_set(cfg, "grant_type", "password"), CLOUDAUTH_ERR_INVALID_ARGUMENT,
             "grant_type=password");
    check_workload_message("grant_type");
    cloudauth_config_free(cfg);
    snprintf(extra, sizeof extra, "client_secret=%s;auth_method=client_assertion;client_assertion_file=%s",
             SECRET, wl_file("fit", PLATFORM_JWT));
    wl_refused(extra, "client_secret");
    snprintf(extra, sizeof extra, "subject_token_file=%s", wl_file("fit", PLATFORM_JWT));
    wl_refused(extra, "subject_token_file");
    snprintf(extra, sizeof extra, "client_secret=x;client_assertion_file=%s", wl_file("fit", PLATFORM_JWT));
    wl_refused(extra, "client_assertion_file");
    wl_refused("grant_type=jwt_bearer", "client_key_file");
    wl_refused("token_cache=redis;redis_url=redis://127.0.0.1:9/;auth_method=client_assertion;"
               "client_assertion_file=/nonexistent", "client_assertion_file");
    snprintf(extra, sizeof extra, "token_cache=redis;redis_url=redis://127.0.0.1:9/;"
             "auth_method=client_assertion;client_assertion_file=%s", wl_file("fit", PLATFORM_JWT));
    wl_refused(extra, "token_cache_key_file");
}
/* A file that goes bad after session_new: each fetch names it; fixed, the next one works. */
static void w_files_break_later(void) {
    static const char *const keys[][2] = {
        {"auth_method=client_assertion", "client_assertion_file"},
        {"grant_type=token_exchange", "subject_token_file"},
    };
    char extra[512], buf[256];
    size_t k;
    for (k = 0; k < 2; k++) {
        const char *path = wl_file("live", PLATFORM_JWT);
        cloudauth_config *cfg;
        cloudauth_session *s = NULL;
        snprintf(extra, sizeof extra, "%s;%s=%s", keys[k][0], keys[k][1], path);
        cfg = wl_config("ok", extra);
        check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "session_new");
        cloudauth_config_free(cfg);
        if (!s) continue;
        check_rc(get_token(s, buf), CLOUDAUTH_OK, "token");
        cloudauth_session_invalidate(s);
        wl_file("live", "\n");
        check_rc(get_token(s, buf), CLOUDAUTH_ERR_INVALID_ARGUMENT, "emptied file at fetch");
        check_workload_message(keys[k][1]);
        wl_file("live", NULL);
        check_rc(get_token(s, buf), CLOUDAUTH_ERR_INVALID_ARGUMENT, "removed file at fetch");
        check_workload_message(keys[k][1]);
        wl_file("live", PLATFORM_JWT "\r\n");
        check_rc(get_token(s, buf), CLOUDAUTH_OK, "rewritten file");
        cloudauth_session_free(s);
    }
}

static const struct simple_case workload_cases[] = {
    {"workload", "echoed_federated_assertion", w_echoed_federated_assertion},
    {"workload", "echoed_federated_assertion_signature", w_echoed_federated_assertion_signature},
    {"workload", "echoed_subject_token", w_echoed_subject_token},
    {"workload", "echoed_subject_token_signature", w_echoed_subject_token_signature},
    {"workload", "echoed_jwt_bearer_assertion", w_echoed_jwt_bearer_assertion},
    {"workload", "bad_token_files", w_bad_token_files},
    {"workload", "bad_service_account_files", w_bad_service_account_files},
    {"workload", "keys_that_do_not_fit", w_keys_that_do_not_fit},
    {"workload", "files_break_later", w_files_break_later},
};

int main(int argc, char **argv) {
    const char *ports = getenv("HOSTILE_PORTS");
    const char *tf = getenv("CLOUDAUTH_TEST_TIME_FACTOR");
    size_t i;
    int total = 0, passed = 0, g;
    if (!ports || sscanf(ports, "%d %d", &main_port, &other_port) != 2) {
        fprintf(stderr, "hostile: HOSTILE_PORTS is not set; run tests/run/hostile.sh\n");
        return 2;
    }
    if (tf && atoi(tf) > 1) time_factor = atoi(tf);
    under_valgrind = getenv("HOSTILE_VALGRIND") != NULL;
    timeout_ms = time_factor > 1 ? 3000 : 1000;
    filter = argc > 1 ? argv[1] : NULL;
    snprintf(main_url, sizeof main_url, "http://127.0.0.1:%d", main_port);
    snprintf(other_url, sizeof other_url, "http://127.0.0.1:%d", other_port);
    build_forms();

    for (i = 0; i < sizeof server_cases / sizeof server_cases[0]; i++) {
        const struct server_case *c = &server_cases[i];
        if (!selected(c->group, c->name)) continue;
        case_name = c->name;
        case_failed = 0;
        run_server_case(c);
        finish_case(c->group, c->name);
    }
    run_simple(misuse_cases, sizeof misuse_cases / sizeof misuse_cases[0]);
    run_simple(event_cases, sizeof event_cases / sizeof event_cases[0]);
    run_simple(concurrency_cases, sizeof concurrency_cases / sizeof concurrency_cases[0]);
    run_simple(fork_cases, sizeof fork_cases / sizeof fork_cases[0]);
    run_simple(idp_cases, sizeof idp_cases / sizeof idp_cases[0]);
    run_simple(mtls_cases, sizeof mtls_cases / sizeof mtls_cases[0]);
    run_simple(workload_cases, sizeof workload_cases / sizeof workload_cases[0]);

    for (g = 0; g < n_groups; g++) {
        printf("hostile %-16s %3d/%-3d passed\n", groups[g].name, groups[g].passed, groups[g].run);
        total += groups[g].run;
        passed += groups[g].passed;
    }
    printf("hostile: %d/%d cases passed\n", passed, total);
    for (g = 0; g < n_forms; g++) free(forms[g]);
    return passed == total && total > 0 ? 0 : 1;
}
