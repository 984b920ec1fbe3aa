/*
 * The ABI's plumbing: version, result names, the per-thread last error, argument checks
 * (NULL, invalid UTF-8, bad headers) and configuration keys. None of these should cause
 * any network traffic, and the tests check that too.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL_SESSION ((cloudauth_session *)(uintptr_t)0x5e55)
#define SENTINEL_RESPONSE ((cloudauth_response *)(uintptr_t)0x7e5b)

static void test_version(void)
{
    const char *v = cloudauth_version();
    int major, minor, patch;
    REQUIRE(v != NULL);
    CHECK(sscanf(v, "%d.%d.%d", &major, &minor, &patch) == 3);
    CHECK(isdigit((unsigned char)v[0]));
    CHECK(cloudauth_version() == v); /* static storage */
}

static void test_result_names(void)
{
    static const struct {
        cloudauth_result code;
        int value;
        const char *name;
    } codes[] = {
        {CLOUDAUTH_OK, 0, "CLOUDAUTH_OK"},
        {CLOUDAUTH_ERR_INVALID_ARGUMENT, 1, "CLOUDAUTH_ERR_INVALID_ARGUMENT"},
        {CLOUDAUTH_ERR_BUFFER_TOO_SMALL, 2, "CLOUDAUTH_ERR_BUFFER_TOO_SMALL"},
        {CLOUDAUTH_ERR_INSECURE_URL, 3, "CLOUDAUTH_ERR_INSECURE_URL"},
        {CLOUDAUTH_ERR_NETWORK, 4, "CLOUDAUTH_ERR_NETWORK"},
        {CLOUDAUTH_ERR_TIMEOUT, 5, "CLOUDAUTH_ERR_TIMEOUT"},
        {CLOUDAUTH_ERR_AUTH_REJECTED, 6, "CLOUDAUTH_ERR_AUTH_REJECTED"},
        {CLOUDAUTH_ERR_TOKEN_ENDPOINT, 7, "CLOUDAUTH_ERR_TOKEN_ENDPOINT"},
        {CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, 8, "CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE"},
        {CLOUDAUTH_ERR_TOO_LARGE, 9, "CLOUDAUTH_ERR_TOO_LARGE"},
        {CLOUDAUTH_ERR_INTERNAL, 10, "CLOUDAUTH_ERR_INTERNAL"},
        {CLOUDAUTH_ERR_CANCELLED, 11, "CLOUDAUTH_ERR_CANCELLED"},
        {CLOUDAUTH_ERR_WOULD_BLOCK, 12, "CLOUDAUTH_ERR_WOULD_BLOCK"},
    };
    size_t i;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK_EQ(codes[i].code, codes[i].value); /* the values are ABI */
        CHECK_STR(cloudauth_result_name(codes[i].code), codes[i].name);
        CHECK(cloudauth_result_name(codes[i].code) == cloudauth_result_name(codes[i].code));
    }
    CHECK_STR(cloudauth_result_name((cloudauth_result)13), "CLOUDAUTH_UNKNOWN_RESULT");
    CHECK_STR(cloudauth_result_name((cloudauth_result)1000), "CLOUDAUTH_UNKNOWN_RESULT");
    CHECK_STR(cloudauth_result_name((cloudauth_result)-1), "CLOUDAUTH_UNKNOWN_RESULT");
}

static void *fresh_thread_last_error(void *arg)
{
    /* A thread that never called cloudauth has no error, whatever other threads did. */
    const char *e = cloudauth_last_error();
    (void)arg;
    CHECK(e != NULL);
    if (e != NULL)
        CHECK_STR(e, "");
    /* A failure here shows up here... */
    CHECK_RC(cloudauth_config_set(NULL, "client_id", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("cfg");
    return NULL;
}

static void test_last_error(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    pthread_t t;
    REQUIRE(cfg != NULL);

    CHECK_RC(cloudauth_config_set(cfg, "client_id", "demo-client"), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");

    CHECK_RC(cloudauth_config_set(cfg, "no_such_key", "1"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("no_such_key");
    CHECK(strchr(cloudauth_last_error(), '\n') == NULL); /* one line */

    /* ...and stays on this thread: another thread neither sees ours nor clears it. */
    CHECK(pthread_create(&t, NULL, fresh_thread_last_error, NULL) == 0);
    pthread_join(t, NULL);
    CHECK_ERROR_MENTIONS("no_such_key");

    /* A success clears it. */
    CHECK_RC(cloudauth_config_set(cfg, "client_secret", "demo-secret"), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");
    cloudauth_config_free(cfg);
}

static void test_null_arguments(void)
{
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL, *out_s = SENTINEL_SESSION;
    cloudauth_response *out_r = SENTINEL_RESPONSE;
    const char *hdrs[] = {"X-A: 1", NULL};
    const uint8_t body[] = {1, 2, 3};
    char buf[64] = "untouched";
    size_t token_len = 12345, blen = 777;
    const char *name = "n", *value = "v";
    REQUIRE(cfg != NULL);

    /* config_set */
    CHECK_RC(cloudauth_config_set(NULL, "client_id", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("cfg");
    CHECK_RC(cloudauth_config_set(cfg, NULL, "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("key");
    CHECK_RC(cloudauth_config_set(cfg, "client_id", NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("value");

    /* session_new */
    CHECK_RC(cloudauth_session_new(NULL, &out_s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(out_s == SENTINEL_SESSION);
    CHECK_RC(cloudauth_session_new(cfg, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("out");
    REQUIRE_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    REQUIRE(s != NULL);

    /* session_token: NULL session or NULL token_len; the outputs stay untouched */
    CHECK_RC(cloudauth_session_token(NULL, buf, sizeof buf, &token_len),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("session");
    CHECK_EQ(token_len, 12345);
    CHECK_STR(buf, "untouched");
    CHECK_RC(cloudauth_session_token(s, buf, sizeof buf, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("token_len");
    CHECK_STR(buf, "untouched");

    /* session_invalidate */
    CHECK_RC(cloudauth_session_invalidate(NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);

    /* session_request: each pointer in turn; *out stays untouched */
    CHECK_RC(cloudauth_session_request(NULL, "GET", "/echo", NULL, 0, NULL, 0, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("session");
    CHECK_RC(cloudauth_session_request(s, NULL, "/echo", NULL, 0, NULL, 0, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("method");
    CHECK_RC(cloudauth_session_request(s, "GET", NULL, NULL, 0, NULL, 0, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("url");
    CHECK_RC(cloudauth_session_request(s, "GET", "/echo", NULL, 1, NULL, 0, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("headers");
    CHECK_RC(cloudauth_session_request(s, "GET", "/echo", hdrs, 2, NULL, 0, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT); /* hdrs[1] is NULL */
    CHECK_ERROR_MENTIONS("headers[1]");
    CHECK_RC(cloudauth_session_request(s, "POST", "/echo", NULL, 0, NULL, 3, &out_r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("body");
    CHECK_RC(cloudauth_session_request(s, "POST", "/echo", hdrs, 1, body, 3, NULL),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("out");
    CHECK(out_r == SENTINEL_RESPONSE);

    /* response accessors */
    CHECK_EQ(cloudauth_response_status(NULL), 0);
    CHECK(cloudauth_response_body(NULL, &blen) == NULL);
    CHECK_EQ(blen, 0);
    CHECK(cloudauth_response_body(NULL, NULL) == NULL);
    CHECK(cloudauth_response_header(NULL, "content-type") == NULL);
    CHECK_EQ(cloudauth_response_header_count(NULL), 0);
    CHECK_RC(cloudauth_response_header_at(NULL, 0, &name, &value),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_STR(name, "n");
    CHECK_STR(value, "v");

    /* every _free(NULL) is a no-op */
    cloudauth_config_free(NULL);
    cloudauth_session_free(NULL);
    cloudauth_response_free(NULL);

    /* none of this touched the network */
    CHECK_EQ(stat_long("token_requests"), 0);
    CHECK_EQ(stat_long("api_requests"), 0);

    cloudauth_session_free(s);
    cloudauth_config_free(cfg);
}

static void test_response_accessors_null_name(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    const char *name = "n", *value = "v";
    size_t n, i;
    REQUIRE(s != NULL);
    r = GET(s, "/echo");
    if (r != NULL) {
        CHECK(cloudauth_response_header(r, NULL) == NULL);
        CHECK(cloudauth_response_header(r, "\xff\xfe") == NULL);
        n = cloudauth_response_header_count(r);
        CHECK(n > 0);
        CHECK_RC(cloudauth_response_header_at(r, 0, NULL, &value), CLOUDAUTH_ERR_INVALID_ARGUMENT);
        CHECK_RC(cloudauth_response_header_at(r, 0, &name, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
        CHECK_RC(cloudauth_response_header_at(r, n, &name, &value), CLOUDAUTH_ERR_INVALID_ARGUMENT);
        CHECK_STR(name, "n"); /* untouched on failure */
        CHECK_STR(value, "v");
        for (i = 0; i < n; i++) {
            const char *hn = NULL, *hv = NULL;
            CHECK_RC(cloudauth_response_header_at(r, i, &hn, &hv), CLOUDAUTH_OK);
            if (hn != NULL && hv != NULL) {
                char *low = lower_dup(hn);
                CHECK_STR(hn, low); /* names are lower-case */
                free(low);
            }
        }
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);
}

static void test_invalid_utf8(void)
{
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL;
    cloudauth_response *r = SENTINEL_RESPONSE;
    const char *bad_value_hdr[] = {"X-Bad: caf\xc3\x28"};
    const char *bad_name_hdr[] = {"X-\xff: 1"};
    REQUIRE(cfg != NULL);

    CHECK_RC(cloudauth_config_set(cfg, "client_\xff", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("UTF-8");
    CHECK_RC(cloudauth_config_set(cfg, "client_id", "demo\xc3\x28"),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("UTF-8");
    CHECK_RC(cloudauth_config_set(cfg, "client_secret", "\xe2\x82"),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("UTF-8");

    REQUIRE_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_request(s, "GET", "/echo\xff", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("url");
    CHECK_RC(cloudauth_session_request(s, "G\xc0T", "/echo", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_request(s, "GET", "/echo", bad_value_hdr, 1, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("headers[0]");
    CHECK_RC(cloudauth_session_request(s, "GET", "/echo", bad_name_hdr, 1, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(r == SENTINEL_RESPONSE);

    /* the earlier good values are still in place: the session works */
    CHECK_EQ(stat_long("token_requests"), 0);
    r = GET(s, "/echo");
    if (r != NULL)
        CHECK_EQ(cloudauth_response_status(r), 200);
    cloudauth_response_free(r);

    cloudauth_session_free(s);
    cloudauth_config_free(cfg);
}

static void test_config_keys(void)
{
    /* Every documented key takes a well-formed value. */
    static const char *const good[][2] = {
        {"client_id", "demo-client"},
        {"client_secret", "demo-secret"},
        {"token_url", "https://api.aspose.cloud/connect/token"},
        {"base_url", "https://api.aspose.cloud"},
        {"scope", "ocr"},
        {"auth_method", "client_secret_basic"},
        {"auth_method", "client_secret_post"},
        {"timeout_ms", "1500"},
        {"connect_timeout_ms", "800"},
        {"refresh_skew_s", "30"},
        {"max_retries", "0"},
        {"max_retries", "5"},
        {"max_retry_wait_ms", "2000"},
        {"default_expires_in_s", "600"},
        {"max_response_bytes", "1048576"},
        {"user_agent", "cloudauth-ctests/1"},
        {"ca_file", "/nonexistent/ca.pem"},
        {"proxy", "none"},
        {"allow_insecure_http", "true"},
        {"allow_insecure_http", "false"},
    };
    /* Malformed values: the message names the key. */
    static const char *const bad[][2] = {
        {"timeout_ms", "abc"},
        {"timeout_ms", ""},
        {"timeout_ms", "12abc"},
        {"connect_timeout_ms", "-5"},
        {"max_retries", "-1"},
        {"max_retries", "1.5"},
        {"refresh_skew_s", "soon"},
        {"max_retry_wait_ms", "x"},
        {"default_expires_in_s", "-3600"},
        {"max_response_bytes", "lots"},
        {"auth_method", "nope"},
        {"auth_method", ""},
        {"allow_insecure_http", "maybe"},
        {"token_url", "not a url"},
        {"token_url", "ftp://example.com/token"},
        {"base_url", "/relative/only"},
        {"user_agent", "a\r\nX-Evil: 1"},
        {"client_id", ""},
        {"client_secret", ""},
    };
    cloudauth_config *cfg = cloudauth_config_new();
    size_t i;
    REQUIRE(cfg != NULL);
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (!CHECK_RC(cloudauth_config_set(cfg, good[i][0], good[i][1]), CLOUDAUTH_OK))
            printf("      key %s = \"%s\"\n", good[i][0], good[i][1]);
        CHECK_STR(cloudauth_last_error(), "");
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!CHECK_RC(cloudauth_config_set(cfg, bad[i][0], bad[i][1]),
                      CLOUDAUTH_ERR_INVALID_ARGUMENT))
            printf("      key %s = \"%s\"\n", bad[i][0], bad[i][1]);
        CHECK_ERROR_MENTIONS(bad[i][0]);
    }

    /* An unknown key is named in the message. */
    CHECK_RC(cloudauth_config_set(cfg, "timeout", "5000"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("'timeout'");
    CHECK_RC(cloudauth_config_set(cfg, "Client_ID", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("Client_ID");

    /* A rejected secret value never shows up in the message. */
    CHECK_RC(cloudauth_config_set(cfg, "client_secret", "hunter2\xff"),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_LACKS(cloudauth_last_error(), "hunter2");
    cloudauth_config_free(cfg);
}

static void test_session_new_checks(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    cloudauth_session *s = SENTINEL_SESSION;
    REQUIRE(cfg != NULL);

    /* The credentials are required. */
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("client_id");
    CHECK_RC(cloudauth_config_set(cfg, "client_id", "demo-client"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("client_secret");
    CHECK(s == SENTINEL_SESSION);
    cloudauth_config_free(cfg);

    /* An unreadable ca_file is reported when the session is made. */
    cfg = OPEN_CONFIG("ca_file", "/nonexistent/cloudauth-test-ca.pem", NULL);
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("ca_file");
    CHECK(s == SENTINEL_SESSION);
    cloudauth_config_free(cfg);

    CHECK_EQ(stat_long("token_requests"), 0);
}

static void test_session_copies_config(void)
{
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL;
    cloudauth_response *r;
    REQUIRE(cfg != NULL);
    REQUIRE_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    /* Changing, then freeing, the config afterwards does not affect the session. */
    CHECK_RC(cloudauth_config_set(cfg, "client_secret", "changed-afterwards"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_config_set(cfg, "base_url", "http://127.0.0.1:9/nowhere"), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);

    r = GET(s, "/headers");
    if (r != NULL)
        CHECK_EQ(cloudauth_response_status(r), 200);
    cloudauth_response_free(r);
    CHECK_EQ(stat_long("token_requests"), 1);

    /* Two sessions from one config are independent: each fetches its own token. */
    cfg = OPEN_CONFIG(NULL);
    if (cfg != NULL) {
        cloudauth_session *a = NULL, *b = NULL;
        char *ta, *tb;
        CHECK_RC(cloudauth_session_new(cfg, &a), CLOUDAUTH_OK);
        CHECK_RC(cloudauth_session_new(cfg, &b), CLOUDAUTH_OK);
        cloudauth_config_free(cfg);
        ta = GET_TOKEN(a);
        tb = GET_TOKEN(b);
        CHECK(ta != NULL && tb != NULL && strcmp(ta, tb) != 0);
        CHECK_EQ(stat_long("token_requests"), 3);
        free(ta);
        free(tb);
        cloudauth_session_free(a);
        cloudauth_session_free(b);
    }
    cloudauth_session_free(s);
}

static void test_bad_headers(void)
{
    static const char *const bad[] = {
        "X-A: b\r\nX-Evil: 1",      /* CR LF: would split the request */
        "X-A: b\nX-Evil: 1",        /* a lone LF */
        "X-A: b\rc",                /* a lone CR */
        "no colon here",
        "",
        "Bad Name: v",              /* a space in the name */
        ": no name",
        "Authorization: Bearer mine", /* the session owns it */
        "authorization: Basic abc",
    };
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = SENTINEL_RESPONSE;
    size_t i;
    REQUIRE(s != NULL);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *h[1];
        h[0] = bad[i];
        if (!CHECK_RC(cloudauth_session_request(s, "GET", "/headers", h, 1, NULL, 0, &r),
                      CLOUDAUTH_ERR_INVALID_ARGUMENT))
            printf("      header \"%s\"\n", bad[i]);
        CHECK_ERROR_MENTIONS(NULL);
        CHECK(r == SENTINEL_RESPONSE);
    }
    CHECK_RC(cloudauth_session_request(s, "BAD METHOD", "/headers", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("method");
    CHECK_RC(cloudauth_session_request(s, "GET", "ftp://127.0.0.1/x", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_request(s, "GET", "http://", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(r == SENTINEL_RESPONSE);
    /* the request is checked before a token is fetched */
    CHECK_EQ(stat_long("token_requests"), 0);
    CHECK_EQ(stat_long("api_requests"), 0);
    cloudauth_session_free(s);
}

const struct test_case api_tests[] = {
    {"api_version", test_version},
    {"api_result_names", test_result_names},
    {"api_last_error", test_last_error},
    {"api_null_arguments", test_null_arguments},
    {"api_response_accessors", test_response_accessors_null_name},
    {"api_invalid_utf8", test_invalid_utf8},
    {"api_config_keys", test_config_keys},
    {"api_session_new_checks", test_session_new_checks},
    {"api_session_copies_config", test_session_copies_config},
    {"api_bad_headers", test_bad_headers},
    {NULL, NULL},
};
