/*
 * The token: the buffer protocol of cloudauth_session_token, caching, single flight,
 * invalidation, the refresh-and-retry after a 401, and how every kind of token-endpoint
 * answer (bad, odd but valid, refused, transient) is reported.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_token_buffer_protocol(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    size_t len = 0, len2 = 0;
    char small[8], *exact, *big;
    REQUIRE(s != NULL);

    /* NULL buffer: the length needed (without the NUL) and BUFFER_TOO_SMALL. */
    REQUIRE_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
    REQUIRE(len > 0);
    CHECK_ERROR_MENTIONS(num((long long)len + 1)); /* the message says what is needed */

    /* A buffer one byte short (no room for the NUL) is too small and stays untouched. */
    exact = malloc(len + 1);
    big = malloc(len + 64);
    REQUIRE(exact != NULL && big != NULL);
    memset(exact, 'x', len + 1);
    len2 = 0;
    CHECK_RC(cloudauth_session_token(s, exact, len, &len2), CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(len2, len);
    CHECK(exact[0] == 'x' && exact[len - 1] == 'x' && exact[len] == 'x');
    memset(small, 'y', sizeof small);
    CHECK_RC(cloudauth_session_token(s, small, sizeof small, &len2),
             CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == 'y' && small[7] == 'y');
    CHECK_RC(cloudauth_session_token(s, small, 0, &len2), CLOUDAUTH_ERR_BUFFER_TOO_SMALL);

    /* Exactly len + 1 bytes: the token, NUL-terminated. */
    len2 = 0;
    CHECK_RC(cloudauth_session_token(s, exact, len + 1, &len2), CLOUDAUTH_OK);
    CHECK_EQ(len2, len);
    CHECK_EQ(strlen(exact), len);
    CHECK_STR(cloudauth_last_error(), "");

    /* A bigger buffer gets the same (cached) token. */
    CHECK_RC(cloudauth_session_token(s, big, len + 64, &len2), CLOUDAUTH_OK);
    CHECK_STR(big, exact);

    /* The token never appears in a message, not even in the buffer-size one. */
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len2), CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
    CHECK_LACKS(cloudauth_last_error(), exact);

    /* All of this was one token request. */
    CHECK_EQ(stat_long("token_requests"), 1);
    free(exact);
    free(big);
    cloudauth_session_free(s);
}

/* ---- single flight ------------------------------------------------------------------------ */

#define N_THREADS 16

struct flight {
    cloudauth_session *s;
    pthread_barrier_t *start;
    cloudauth_result rc;
    char token[8192];
    char error[512];
};

static void *ask_for_token(void *arg)
{
    struct flight *f = arg;
    size_t len = 0;
    pthread_barrier_wait(f->start);
    f->rc = cloudauth_session_token(f->s, f->token, sizeof f->token, &len);
    snprintf(f->error, sizeof f->error, "%s", cloudauth_last_error());
    return NULL;
}

/* N_THREADS threads ask one session for its token at once; returns how many started. */
static int fly(cloudauth_session *s, struct flight *flights)
{
    pthread_t threads[N_THREADS];
    pthread_barrier_t start;
    int i, started = 0;
    pthread_barrier_init(&start, NULL, N_THREADS);
    for (i = 0; i < N_THREADS; i++) {
        flights[i].s = s;
        flights[i].start = &start;
        flights[i].rc = CLOUDAUTH_ERR_INTERNAL;
        flights[i].token[0] = '\0';
        if (pthread_create(&threads[i], NULL, ask_for_token, &flights[i]) != 0)
            break;
        started++;
    }
    if (started < N_THREADS) { /* cannot happen on a sane machine; do not hang the barrier */
        fprintf(stderr, "pthread_create failed\n");
        abort();
    }
    for (i = 0; i < N_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&start);
    return started;
}

static void test_token_single_flight(void)
{
    static struct flight flights[N_THREADS];
    cloudauth_session *s = OPEN_SESSION(NULL);
    char knobs[64];
    int i;
    REQUIRE(s != NULL);
    /* A slow token endpoint, so that every thread arrives while the first fetch is running. */
    snprintf(knobs, sizeof knobs, "{\"token_delay_ms\": %ld}", 300 * time_factor());
    ctl_config(knobs);

    CHECK_EQ(fly(s, flights), N_THREADS);
    for (i = 0; i < N_THREADS; i++) {
        CHECK_RC(flights[i].rc, CLOUDAUTH_OK);
        CHECK_STR(flights[i].error, "");
        CHECK(flights[i].token[0] != '\0');
        CHECK(strcmp(flights[i].token, flights[0].token) == 0);
    }
    CHECK_EQ(stat_long("token_requests"), 1);
    cloudauth_session_free(s);
}

static void test_token_single_flight_shares_failure(void)
{
    static struct flight flights[N_THREADS];
    cloudauth_session *s = OPEN_SESSION(NULL);
    char knobs[160];
    int i;
    REQUIRE(s != NULL);
    /* Every token request is refused, slowly: the waiting threads share the one refusal
     * rather than each asking again. */
    snprintf(knobs, sizeof knobs,
             "{\"token_default\": {\"status\": 401, \"delay_ms\": %ld, \"body\": "
             "\"{\\\"error\\\": \\\"invalid_client\\\"}\"}}",
             1000 * time_factor());
    ctl_config(knobs);

    CHECK_EQ(fly(s, flights), N_THREADS);
    for (i = 0; i < N_THREADS; i++) {
        CHECK_RC(flights[i].rc, CLOUDAUTH_ERR_AUTH_REJECTED);
        CHECK_CONTAINS(flights[i].error, "invalid_client");
    }
    CHECK_EQ(stat_long("token_requests"), 1);
    cloudauth_session_free(s);
}

/* ---- invalidation and 401 ----------------------------------------------------------------- */

static void test_token_invalidate(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    char *t1, *t2, *t3;
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_invalidate(s), CLOUDAUTH_OK); /* nothing cached yet: fine */
    CHECK_EQ(stat_long("token_requests"), 0);

    t1 = GET_TOKEN(s);
    t2 = GET_TOKEN(s);
    CHECK(t1 != NULL && t2 != NULL && strcmp(t1, t2) == 0); /* cached */
    CHECK_EQ(stat_long("token_requests"), 1);

    CHECK_RC(cloudauth_session_invalidate(s), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");
    t3 = GET_TOKEN(s);
    CHECK(t1 != NULL && t3 != NULL && strcmp(t1, t3) != 0);
    CHECK_EQ(stat_long("token_requests"), 2);
    free(t1);
    free(t2);
    free(t3);
    cloudauth_session_free(s);
}

static void test_token_invalidate_token(void)
{
    /* Drops the cached token only if it is still the one named. */
    cloudauth_session *s = OPEN_SESSION(NULL);
    char *t1, *t2, *t3;
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_invalidate_token(NULL, "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_invalidate_token(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("token");
    CHECK_RC(cloudauth_session_invalidate_token(s, "\xff\xfe"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_invalidate_token(s, "nothing-cached-yet"), CLOUDAUTH_OK);

    t1 = GET_TOKEN(s);
    REQUIRE(t1 != NULL);
    /* another token (one the session no longer holds): the current one survives */
    CHECK_RC(cloudauth_session_invalidate_token(s, "an-older-token"), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");
    t2 = GET_TOKEN(s);
    CHECK(t2 != NULL && strcmp(t1, t2) == 0);
    CHECK_EQ(stat_long("token_requests"), 1);

    /* the current token: dropped, the next call fetches a new one */
    CHECK_RC(cloudauth_session_invalidate_token(s, t1), CLOUDAUTH_OK);
    t3 = GET_TOKEN(s);
    CHECK(t3 != NULL && strcmp(t1, t3) != 0);
    CHECK_EQ(stat_long("token_requests"), 2);
    /* t1 again (late news about an old token): t3 survives */
    CHECK_RC(cloudauth_session_invalidate_token(s, t1), CLOUDAUTH_OK);
    free(t2);
    t2 = GET_TOKEN(s);
    CHECK(t2 != NULL && t3 != NULL && strcmp(t2, t3) == 0);
    CHECK_EQ(stat_long("token_requests"), 2);
    free(t1);
    free(t2);
    free(t3);
    cloudauth_session_free(s);
}

static void test_token_expires_in(void)
{
    /* Seconds left on the current token, from expires_in; fetched on demand. */
    cloudauth_session *s;
    uint64_t left = 12345;
    ctl_config("{\"token_expires_in\": 1800}");
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token_expires_in(NULL, &left), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_token_expires_in(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(left, 12345); /* untouched on failure */
    CHECK_EQ(stat_long("token_requests"), 0);
    CHECK_RC(cloudauth_session_token_expires_in(s, &left), CLOUDAUTH_OK);
    CHECK(left > 1700 && left <= 1800);
    CHECK_EQ(stat_long("token_requests"), 1);
    cloudauth_session_free(s);

    /* A failing token endpoint is reported, and the output stays untouched. */
    ctl_config("{\"token_default\": {\"status\": 401, \"body\": \"{\\\"error\\\":\\\"invalid_client\\\"}\"}}");
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    left = 7;
    CHECK_RC(cloudauth_session_token_expires_in(s, &left), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_EQ(left, 7);
    cloudauth_session_free(s);
}

static void test_token_refresh_after_401(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    char *t1, *t2 = NULL, *json, *auth;
    REQUIRE(s != NULL);
    t1 = GET_TOKEN(s);
    REQUIRE(t1 != NULL);
    ctl_revoke(); /* the server forgets t1; the session does not know yet */

    r = GET(s, "/headers");
    if (r != NULL) {
        CHECK_EQ(cloudauth_response_status(r), 200);
        /* the retried request carried the new token */
        t2 = GET_TOKEN(s);
        json = body_text(r);
        auth = json ? json_string(json, "headers.authorization") : NULL;
        CHECK(auth != NULL && t2 != NULL && strncmp(auth, "Bearer ", 7) == 0 &&
              strcmp(auth + 7, t2) == 0);
        CHECK(t2 != NULL && strcmp(t1, t2) != 0);
        free(auth);
        free(json);
        cloudauth_response_free(r);
    }
    CHECK_EQ(stat_long("token_requests"), 2);
    CHECK_EQ(stat_long("unauthorized"), 1);
    CHECK_STR(cloudauth_last_error(), "");
    free(t1);
    free(t2);
    cloudauth_session_free(s);
}

static void test_token_403_does_not_refresh(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    REQUIRE(s != NULL);
    r = GET(s, "/status/403");
    if (r != NULL)
        CHECK_EQ(cloudauth_response_status(r), 403);
    cloudauth_response_free(r);
    CHECK_EQ(stat_long("token_requests"), 1);
    CHECK_EQ(stat_long("api_requests"), 1);
    cloudauth_session_free(s);
}

static void test_token_scripted_401_then_success(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    REQUIRE(s != NULL);
    /* one 401 (after the Bearer check passed), then normal answers */
    ctl_config("{\"api_script\": [{\"status\": 401, \"headers\": {\"WWW-Authenticate\": "
               "\"Bearer error=\\\"invalid_token\\\"\"}, \"body\": \"{}\"}]}");
    r = GET(s, "/headers");
    if (r != NULL)
        CHECK_EQ(cloudauth_response_status(r), 200);
    cloudauth_response_free(r);
    CHECK_EQ(stat_long("token_requests"), 2);

    /* Two 401s in a row: one refresh only, and the second 401 is the caller's response.
     * (A new session: the reset makes the stand-in forget the tokens it issued.) */
    cloudauth_session_free(s);
    ctl_reset();
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    ctl_config("{\"api_script\": [{\"status\": 401}, {\"status\": 401, \"body\": \"still no\"}]}");
    r = GET(s, "/headers");
    if (r != NULL) {
        char *body = body_text(r);
        CHECK_EQ(cloudauth_response_status(r), 401);
        CHECK_STR(body, "still no");
        free(body);
    }
    cloudauth_response_free(r);
    CHECK_EQ(stat_long("token_requests"), 2);
    cloudauth_session_free(s);
}

struct storm {
    cloudauth_session *s;
    pthread_barrier_t *start;
    int status;
};

static void *storm_run(void *arg)
{
    struct storm *w = arg;
    cloudauth_response *r = NULL;
    pthread_barrier_wait(w->start);
    if (cloudauth_session_request(w->s, "GET", "/headers", NULL, 0, NULL, 0, &r) == CLOUDAUTH_OK)
        w->status = cloudauth_response_status(r);
    cloudauth_response_free(r);
    return NULL;
}

static void test_token_401_storm_one_refresh(void)
{
    /* Many threads meet a 401 with the same revoked token at once: the token is dropped only
     * if it is still the current one, so all of them share one new token. */
    static struct storm workers[8];
    pthread_t threads[8];
    pthread_barrier_t start;
    cloudauth_session *s = OPEN_SESSION(NULL);
    char *t1;
    int i;
    REQUIRE(s != NULL);
    t1 = GET_TOKEN(s);
    REQUIRE(t1 != NULL);
    free(t1);
    ctl_revoke();
    pthread_barrier_init(&start, NULL, 8);
    for (i = 0; i < 8; i++) {
        workers[i].s = s;
        workers[i].start = &start;
        workers[i].status = 0;
        if (pthread_create(&threads[i], NULL, storm_run, &workers[i]) != 0)
            abort(); /* a half-started barrier would hang */
    }
    for (i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        CHECK_EQ(workers[i].status, 200);
    }
    pthread_barrier_destroy(&start);
    CHECK_EQ(stat_long("token_requests"), 2);
    cloudauth_session_free(s);
}

/* One token call into a big enough buffer (GET_TOKEN makes two: size, then token). */
static int token_once(cloudauth_session *s, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    return CHECK_RC(cloudauth_session_token(s, buf, cap, &len), CLOUDAUTH_OK);
}

static void test_token_refresh_ahead_of_expiry(void)
{
    /* A token living 4F seconds; the 60 s default skew is capped at half its lifetime, so the
     * session refreshes it from 2F seconds on. */
    static char t1[4096], t2[4096], t3[4096], t4[4096];
    long f = time_factor();
    cloudauth_session *s;
    char knobs[64];
    snprintf(knobs, sizeof knobs, "{\"token_expires_in\": %ld}", 4 * f);
    ctl_config(knobs);
    /* inline: the caller in the refresh window refreshes on its own thread (v0's behaviour) */
    s = OPEN_SESSION("max_retries", "0", "refresh_mode", "inline", NULL);
    REQUIRE(s != NULL);
    token_once(s, t1, sizeof t1);
    token_once(s, t2, sizeof t2); /* fresh: cached */
    CHECK(t1[0] != '\0' && strcmp(t1, t2) == 0);
    CHECK_EQ(stat_long("token_requests"), 1);

    sleep_ms(2000 * f + 300); /* into the refresh window, well before the expiry */

    /* The refresh fails: the still-valid token is used, without an error. */
    ctl_config("{\"token_default\": {\"status\": 503}}");
    token_once(s, t3, sizeof t3);
    CHECK(t1[0] != '\0' && strcmp(t1, t3) == 0);
    CHECK_STR(cloudauth_last_error(), "");
    CHECK_EQ(stat_long("token_requests"), 2);

    /* The endpoint is back, but right after a failure the session leaves it alone for a
     * while (0.25-0.5 s, at most a quarter of the old token's remaining life): still the old
     * token. */
    ctl_config("{\"token_default\": null}");
    token_once(s, t4, sizeof t4);
    CHECK(t4[0] != '\0' && strcmp(t1, t4) == 0);
    CHECK_EQ(stat_long("token_requests"), 2);

    /* After that pause (~0.4F s), and still before the expiry (~1.7F s away), the next call
     * refreshes. */
    sleep_ms(1000 * f);
    token_once(s, t4, sizeof t4);
    CHECK(t4[0] != '\0' && strcmp(t1, t4) != 0);
    CHECK_EQ(stat_long("token_requests"), 3);
    cloudauth_session_free(s);
}

/* ---- token responses --------------------------------------------------------------------- */

struct token_case {
    const char *knobs;        /* JSON for /_control/config */
    cloudauth_result want;
    const char *mention;      /* must appear in the last error (NULL: just non-empty) */
};

static void run_token_cases(const struct token_case *cases, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        cloudauth_session *s;
        cloudauth_response *r = NULL;
        size_t len = 0;
        char buf[4096];
        int ok;
        ctl_reset();
        ctl_config(cases[i].knobs);
        s = OPEN_SESSION("max_retries", "0", NULL);
        if (s == NULL)
            continue;
        ok = CHECK_RC(cloudauth_session_token(s, buf, sizeof buf, &len), cases[i].want);
        if (cases[i].want == CLOUDAUTH_OK) {
            CHECK_STR(cloudauth_last_error(), "");
            /* the token works, and is cached: a request needs no second token request */
            r = GET(s, "/headers");
            if (r != NULL)
                ok &= CHECK_EQ(cloudauth_response_status(r), 200);
            cloudauth_response_free(r);
        } else {
            ok &= cases[i].mention ? CHECK_ERROR_MENTIONS(cases[i].mention)
                                   : CHECK_ERROR_MENTIONS(NULL);
            ok &= CHECK_ERROR_MENTIONS("/connect/token"); /* which step failed */
            /* a request reports the same failure */
            ok &= CHECK_RC(cloudauth_session_request(s, "GET", "/headers", NULL, 0, NULL, 0, &r),
                           cases[i].want);
        }
        ok &= CHECK_EQ(stat_long("token_requests"), cases[i].want == CLOUDAUTH_OK ? 1 : 2);
        if (!ok)
            printf("      with knobs %s\n", cases[i].knobs);
        cloudauth_session_free(s);
    }
}

static void test_token_bad_responses(void)
{
    /* token_default answers every token request the same way, so that the request made
     * after the failed token call meets the same answer. */
    static const struct token_case cases[] = {
        {"{\"token_default\": {\"body\": \"this is not json\"}}",
         CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "JSON"},
        {"{\"token_default\": {\"body\": \"[1, 2]\"}}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, NULL},
        {"{\"token_default\": {\"body\": \"{\\\"expires_in\\\": 3600, \\\"token_type\\\": "
         "\\\"Bearer\\\"}\"}}",
         CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "access_token"},
        {"{\"token_default\": {\"body\": \"{\\\"access_token\\\": \\\"\\\"}\"}}",
         CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "access_token"},
        {"{\"token_default\": {\"body\": \"{\\\"access_token\\\": 42}\"}}",
         CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "access_token"},
        {"{\"token_default\": {\"body\": \"{\\\"access_token\\\": \\\"a\\\\nb\\\"}\"}}",
         CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "access_token"},
        {"{\"token_expires_in\": -5}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "expires_in"},
        {"{\"token_expires_in\": 0}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "expires_in"},
        {"{\"token_expires_in\": \"soon\"}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "expires_in"},
        {"{\"token_expires_in\": {\"seconds\": 3600}}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE,
         "expires_in"},
        {"{\"token_expires_in\": [3600]}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "expires_in"},
        {"{\"token_type\": \"mac\"}", CLOUDAUTH_ERR_BAD_TOKEN_RESPONSE, "token_type"},
        /* an RFC 6749 error in a 200 is a refusal */
        {"{\"token_default\": {\"body\": \"{\\\"access_token\\\": \\\"x\\\", \\\"error\\\": "
         "\\\"invalid_scope\\\", \\\"error_description\\\": \\\"no such scope\\\"}\"}}",
         CLOUDAUTH_ERR_AUTH_REJECTED, "invalid_scope"},
        /* over the 1 MiB cap of token responses */
        {"{\"token_default\": {\"pad_bytes\": 1100000}}", CLOUDAUTH_ERR_TOO_LARGE, NULL},
        /* a status that is neither success, refusal nor transient: not retried */
        {"{\"token_default\": {\"status\": 404, \"body\": \"nope\"}}",
         CLOUDAUTH_ERR_TOKEN_ENDPOINT, "HTTP 404"},
        /* 400 is a refusal (RFC 6749 5.2), reported with the server's error and description */
        {"{\"token_default\": {\"status\": 400, \"body\": \"{\\\"error\\\": "
         "\\\"invalid_request\\\", \\\"error_description\\\": \\\"missing thing\\\"}\"}}",
         CLOUDAUTH_ERR_AUTH_REJECTED, "missing thing"},
    };
    run_token_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_token_valid_variants(void)
{
    static const struct token_case cases[] = {
        {"{\"token_expires_in\": \"3600\"}", CLOUDAUTH_OK, NULL},
        {"{\"token_expires_in\": 3600.5}", CLOUDAUTH_OK, NULL},
        {"{\"token_expires_in\": \"omit\"}", CLOUDAUTH_OK, NULL}, /* default_expires_in_s */
        {"{\"token_expires_in\": null}", CLOUDAUTH_OK, NULL},
        {"{\"token_type\": \"bearer\"}", CLOUDAUTH_OK, NULL},
        {"{\"token_type\": \"BEARER\"}", CLOUDAUTH_OK, NULL},
        {"{\"token_type\": \"omit\"}", CLOUDAUTH_OK, NULL},
        {"{\"token_script\": [{\"pad_bytes\": 100000}]}", CLOUDAUTH_OK, NULL}, /* under the cap */
    };
    run_token_cases(cases, sizeof cases / sizeof cases[0]);
}

static void test_token_wrong_secret(void)
{
    static const char secret[] = "wrong-secret-Zq9v";
    cloudauth_session *s = OPEN_SESSION("client_secret", secret, NULL);
    cloudauth_response *r = NULL;
    size_t len = 0;
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_ERROR_MENTIONS("invalid_client");
    CHECK_ERROR_MENTIONS("HTTP 401");
    CHECK_ERROR_MENTIONS("Client authentication failed"); /* the error_description */
    CHECK_LACKS(cloudauth_last_error(), secret);
    CHECK_EQ(stat_long("token_requests"), 1); /* a refusal is not retried */

    CHECK_RC(cloudauth_session_request(s, "GET", "/headers", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK(r == NULL);
    CHECK_LACKS(cloudauth_last_error(), secret);
    CHECK_EQ(stat_long("api_requests"), 0);
    cloudauth_session_free(s);

    /* wrong client_id, and HTTP Basic */
    s = OPEN_SESSION("client_id", "nobody", "auth_method", "client_secret_basic", NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_ERROR_MENTIONS("invalid_client");
    CHECK_LACKS(cloudauth_last_error(), "demo-secret");
    cloudauth_session_free(s);
}

/* ---- transient failures ------------------------------------------------------------------ */

/* With the stand-in set by `knobs`, one token call on a fresh session with `max_retries`
 * returns `want` after exactly `requests` token requests. */
static void check_token_attempts(const char *knobs, const char *max_retries, cloudauth_result want,
                                 long requests)
{
    cloudauth_session *s;
    size_t len = 0;
    ctl_reset();
    ctl_config(knobs);
    s = OPEN_SESSION("max_retries", max_retries, NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len),
             want == CLOUDAUTH_OK ? CLOUDAUTH_ERR_BUFFER_TOO_SMALL : want);
    if (want == CLOUDAUTH_OK)
        CHECK(len > 0); /* a token came: only the NULL buffer was refused */
    CHECK_EQ(stat_long("token_requests"), requests);
    cloudauth_session_free(s);
}

static void test_token_transient_retried(void)
{
    /* two 503s, then success: max_retries=2 is just enough */
    check_token_attempts("{\"token_script\": [{\"status\": 503}, {\"status\": 503}]}", "2",
                         CLOUDAUTH_OK, 3);

    /* 503 forever with max_retries=1: gives up after two attempts */
    check_token_attempts("{\"token_default\": {\"status\": 503, \"body\": \"{\\\"error\\\": "
                         "\\\"temporarily_unavailable\\\"}\"}}",
                         "1", CLOUDAUTH_ERR_TOKEN_ENDPOINT, 2);
    CHECK_ERROR_MENTIONS("HTTP 503");
    CHECK_ERROR_MENTIONS("temporarily_unavailable");

    /* max_retries=0: one attempt only */
    check_token_attempts("{\"token_script\": [{\"status\": 500}]}", "0",
                         CLOUDAUTH_ERR_TOKEN_ENDPOINT, 1);
    CHECK_ERROR_MENTIONS("HTTP 500");
}

static void test_token_retry_after_429(void)
{
    /* 429 with Retry-After: 1 s, then success (the wait is not timed here) */
    check_token_attempts("{\"token_script\": [{\"status\": 429, \"headers\": {\"Retry-After\": \"1\"}, "
                         "\"body\": \"{\\\"error\\\": \\\"slow_down\\\"}\"}]}",
                         "2", CLOUDAUTH_OK, 2);
}

static void test_token_connection_closed_retried(void)
{
    /* the server hangs up without answering: a connection failure, retried */
    check_token_attempts("{\"token_script\": [{\"close\": true}]}", "2", CLOUDAUTH_OK, 2);
}

static void test_token_timeout(void)
{
    long t = 300 * time_factor();
    cloudauth_session *s;
    size_t len = 0;
    char knobs[64];
    snprintf(knobs, sizeof knobs, "{\"token_delay_ms\": %ld}", 4 * t);
    ctl_config(knobs);
    s = OPEN_SESSION("timeout_ms", num(t), NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_TIMEOUT);
    CHECK_ERROR_MENTIONS("/connect/token");
    CHECK_EQ(stat_long("token_requests"), 1); /* a timeout is not retried */
    cloudauth_session_free(s);
}

/* A loopback port nobody listens on: bind an ephemeral one, note it, close it. */
static int free_port(void)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &alen) == 0)
        port = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_token_unreachable(void)
{
    char url[128];
    int port = free_port();
    cloudauth_session *s;
    cloudauth_response *r = NULL;
    size_t len = 0;
    REQUIRE(port > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/connect/token", port);

    s = OPEN_SESSION("token_url", url, "max_retries", "0", NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_NETWORK);
    CHECK_ERROR_MENTIONS(num(port));
    cloudauth_session_free(s);

    /* connection failures are transient: retried, then reported as such */
    s = OPEN_SESSION("token_url", url, "max_retries", "1", "max_retry_wait_ms", "50", NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_NETWORK);
    CHECK_ERROR_MENTIONS("2 attempts");
    cloudauth_session_free(s);

    /* the API unreachable, the token endpoint fine */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    s = OPEN_SESSION("base_url", url, NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request(s, "GET", "/headers", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_NETWORK);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS(num(port));
    CHECK_EQ(stat_long("token_requests"), 1);
    cloudauth_session_free(s);
}

/* ---- what the token request carries ------------------------------------------------------ */

static void test_token_basic_auth_odd_credentials(void)
{
    static const char id[] = "odd+id:%", secret[] = "s3cr+t:with%odd chars&=";
    cloudauth_session *s = OPEN_SESSION("client_id", id, "client_secret", secret, "auth_method",
                                        "client_secret_basic", NULL);
    char *token, *stats;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    CHECK(token != NULL);
    stats = ctl_stats();
    if (stats != NULL) {
        char *basic_id = json_string(stats, "last_token_request.basic.client_id");
        char *basic_secret = json_string(stats, "last_token_request.basic.client_secret");
        char *grant = json_string(stats, "last_token_request.form.grant_type");
        CHECK_STR(basic_id, id);
        CHECK_STR(basic_secret, secret);
        CHECK_STR(grant, "client_credentials");
        /* under Basic, the secret is not also in the form */
        CHECK(json_at(stats, "last_token_request.form.client_secret") == NULL);
        free(basic_id);
        free(basic_secret);
        free(grant);
        free(stats);
    }
    free(token);
    cloudauth_session_free(s);

    /* and the odd credentials work in the form body too */
    s = OPEN_SESSION("client_id", id, "client_secret", secret, NULL);
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    CHECK(token != NULL);
    free(token);
    cloudauth_session_free(s);
}

static void test_token_form_and_scope(void)
{
    cloudauth_session *s = OPEN_SESSION("scope", "ocr.read ocr.write", NULL);
    char *token, *stats;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    CHECK(token != NULL);
    stats = ctl_stats();
    if (stats != NULL) {
        char *scope = json_string(stats, "last_token_request.form.scope");
        char *id = json_string(stats, "last_token_request.form.client_id");
        char *grant = json_string(stats, "last_token_request.form.grant_type");
        char *ctype = json_string(stats, "last_token_request.headers.content-type");
        CHECK_STR(scope, "ocr.read ocr.write");
        CHECK_STR(id, "demo-client");
        CHECK_STR(grant, "client_credentials");
        CHECK_CONTAINS(ctype, "application/x-www-form-urlencoded");
        free(scope);
        free(id);
        free(grant);
        free(ctype);
        free(stats);
    }
    free(token);
    cloudauth_session_free(s);

    /* without the key, no scope is sent */
    ctl_reset();
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    stats = ctl_stats();
    if (stats != NULL) {
        CHECK(json_at(stats, "last_token_request.form") != NULL);
        CHECK(json_at(stats, "last_token_request.form.scope") == NULL);
        CHECK(json_is_null(stats, "last_token_request.basic")); /* client_secret_post */
        free(stats);
    }
    free(token);
    cloudauth_session_free(s);
}

const struct test_case token_tests[] = {
    {"token_buffer_protocol", test_token_buffer_protocol},
    {"token_single_flight", test_token_single_flight},
    {"token_single_flight_shares_failure", test_token_single_flight_shares_failure},
    {"token_invalidate", test_token_invalidate},
    {"token_invalidate_token", test_token_invalidate_token},
    {"token_expires_in", test_token_expires_in},
    {"token_refresh_after_401", test_token_refresh_after_401},
    {"token_403_does_not_refresh", test_token_403_does_not_refresh},
    {"token_scripted_401_then_success", test_token_scripted_401_then_success},
    {"token_401_storm_one_refresh", test_token_401_storm_one_refresh},
    {"token_refresh_ahead_of_expiry", test_token_refresh_ahead_of_expiry},
    {"token_bad_responses", test_token_bad_responses},
    {"token_valid_variants", test_token_valid_variants},
    {"token_wrong_secret", test_token_wrong_secret},
    {"token_transient_retried", test_token_transient_retried},
    {"token_retry_after_429", test_token_retry_after_429},
    {"token_connection_closed_retried", test_token_connection_closed_retried},
    {"token_timeout", test_token_timeout},
    {"token_unreachable", test_token_unreachable},
    {"token_basic_auth_odd_credentials", test_token_basic_auth_odd_credentials},
    {"token_form_and_scope", test_token_form_and_scope},
    {NULL, NULL},
};
