/*
 * Streamed responses (cloudauth_session_request_stream): the head before the body, the body in
 * pieces, the final answer only after a 401 resend or a 307, the cap, the deadline with a slow
 * reader, callbacks that stop the request, bad arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct seen {
    int heads;         /* head callbacks */
    int head_status;   /* the status the head callback saw */
    char length[32];   /* its Content-Length */
    int writes;        /* write callbacks */
    int write_before_head;
    size_t bytes;      /* body bytes received */
    size_t largest;    /* the largest piece */
    int not_a;         /* a byte other than 'a' (the stand-in's /big body) */
    int stop_head;     /* head returns this */
    int stop_at_write; /* write number n (1-based) returns 7; 0: never */
    long sleep_ms;     /* each write sleeps this long (a slow reader) */
};

static int on_head(void *user, const cloudauth_response *head)
{
    struct seen *s = user;
    const char *len = cloudauth_response_header(head, "Content-Length");
    size_t body_len = 1;
    s->heads++;
    s->head_status = cloudauth_response_status(head);
    snprintf(s->length, sizeof s->length, "%s", len ? len : "");
    cloudauth_response_body(head, &body_len);
    if (body_len != 0)
        s->not_a = 1;
    return s->stop_head;
}

static int on_write(void *user, const uint8_t *data, size_t len)
{
    struct seen *s = user;
    size_t i;
    s->writes++;
    if (s->heads == 0)
        s->write_before_head = 1;
    for (i = 0; i < len; i++)
        if (data[i] != 'a')
            s->not_a = 1;
    s->bytes += len;
    if (len > s->largest)
        s->largest = len;
    if (s->sleep_ms)
        sleep_ms(s->sleep_ms);
    return s->writes == s->stop_at_write ? 7 : 0;
}

static cloudauth_result stream(cloudauth_session *s, const char *url, struct seen *seen,
                               cloudauth_response **r)
{
    cloudauth_body_sink sink = {on_head, on_write, seen};
    return cloudauth_session_request_stream(s, "GET", url, NULL, 0, NULL, 0, &sink, r);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_stream_download(void)
{
    const size_t n = 3 * 1024 * 1024 + 17;
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    size_t len = 1;
    long connections;
    REQUIRE(s != NULL);
    CHECK_RC(stream(s, surl("/big?bytes=3145745"), &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.heads, 1);
    CHECK_EQ(seen.head_status, 200);
    CHECK_STR(seen.length, "3145745");
    CHECK(!seen.write_before_head);
    CHECK_EQ(seen.bytes, n);
    CHECK(!seen.not_a);
    CHECK(seen.writes > 1); /* in pieces, not one buffer */
    CHECK(seen.largest <= 1024 * 1024);
    if (r != NULL) { /* the response: status and headers, no body */
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_STR(cloudauth_response_header(r, "Content-Length"), "3145745");
        cloudauth_response_body(r, &len);
        CHECK_EQ(len, 0);
    }
    cloudauth_response_free(r);
    /* the connection is reused by the next request */
    connections = stat_long("connections");
    r = GET(s, "/echo");
    CHECK(r != NULL);
    cloudauth_response_free(r);
    CHECK_EQ(stat_long("connections"), connections + 1); /* + the stats call's own */
    cloudauth_session_free(s);
}

static void test_stream_after_401_and_307(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    char *token;
    char to[256];
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    free(token);
    /* the token is revoked: the 401 is not the caller's answer; the resend's 200 is */
    ctl_revoke();
    CHECK_RC(stream(s, "/big?bytes=100000", &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.heads, 1);
    CHECK_EQ(seen.head_status, 200);
    CHECK_EQ(seen.bytes, 100000);
    CHECK_EQ(stat_long("unauthorized"), 1);
    cloudauth_response_free(r);
    r = NULL;

    /* a 307 is followed; only the target's answer streams */
    memset(&seen, 0, sizeof seen);
    snprintf(to, sizeof to, "/redirect?code=307&to=%s", surl("/big?bytes=200000"));
    CHECK_RC(stream(s, to, &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.heads, 1);
    CHECK_EQ(seen.head_status, 200);
    CHECK_EQ(seen.bytes, 200000);
    cloudauth_response_free(r);
    r = NULL;

    /* any status streams like a 200: the caller's 404 */
    memset(&seen, 0, sizeof seen);
    CHECK_RC(stream(s, "/nowhere", &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.head_status, 404);
    CHECK(seen.bytes > 0);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_stream_cap(void)
{
    cloudauth_session *s = OPEN_SESSION("max_response_bytes", "1000000", NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    REQUIRE(s != NULL);
    CHECK_RC(stream(s, "/big?bytes=1000001", &seen, &r), CLOUDAUTH_ERR_TOO_LARGE);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("1000000");
    CHECK_EQ(seen.bytes, 0); /* refused on its declared length, before any byte */
    memset(&seen, 0, sizeof seen);
    CHECK_RC(stream(s, "/big?bytes=1000000", &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.bytes, 1000000);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_stream_slow_reader_and_deadline(void)
{
    long t = 600 * time_factor();
    cloudauth_session *s = OPEN_SESSION("timeout_ms", num(t), NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    double start, took;
    char *token;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    free(token);
    /* a slow reader within the deadline gets every byte (the server waits for it) */
    seen.sleep_ms = 2;
    CHECK_RC(stream(s, "/big?bytes=2097152", &seen, &r), CLOUDAUTH_OK);
    CHECK_EQ(seen.bytes, 2097152);
    cloudauth_response_free(r);
    r = NULL;

    /* too slow: the deadline covers the body and the callbacks, and ends the request */
    memset(&seen, 0, sizeof seen);
    seen.sleep_ms = 100;
    start = now_ms();
    CHECK_RC(stream(s, "/big?bytes=67108864", &seen, &r), CLOUDAUTH_ERR_TIMEOUT);
    took = now_ms() - start;
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("timed out");
    CHECK(seen.bytes > 0 && seen.bytes < 67108864);
    CHECK(took < t + 1000.0 * time_factor());
    /* the session still works */
    r = GET(s, "/echo");
    CHECK(r != NULL);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_stream_callbacks_stop(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    REQUIRE(s != NULL);
    seen.stop_at_write = 2;
    CHECK_RC(stream(s, "/big?bytes=4194304", &seen, &r), CLOUDAUTH_ERR_CANCELLED);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("write callback");
    CHECK_EQ(seen.writes, 2);
    memset(&seen, 0, sizeof seen);
    seen.stop_head = 1;
    CHECK_RC(stream(s, "/big?bytes=4194304", &seen, &r), CLOUDAUTH_ERR_CANCELLED);
    CHECK_ERROR_MENTIONS("head callback");
    CHECK_EQ(seen.writes, 0);
    /* the session still works, on a new connection */
    r = GET(s, "/echo");
    CHECK(r != NULL);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_stream_bad_arguments(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct seen seen = {0};
    cloudauth_body_sink no_write = {on_head, NULL, &seen};
    cloudauth_body_sink no_head = {NULL, on_write, &seen};
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request_stream(s, "GET", "/echo", NULL, 0, NULL, 0, NULL, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("sink");
    CHECK_RC(cloudauth_session_request_stream(s, "GET", "/echo", NULL, 0, NULL, 0, &no_write, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("write");
    CHECK_RC(cloudauth_session_request_stream(NULL, "GET", "/echo", NULL, 0, NULL, 0, &no_head, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    CHECK_EQ(seen.writes, 0);
    /* without a head callback, and with a request body (echoed back in pieces) */
    CHECK_RC(cloudauth_session_request_stream(s, "POST", "/echo", NULL, 0, (const uint8_t *)"aaaa", 4,
                                              &no_head, &r),
             CLOUDAUTH_OK);
    CHECK_EQ(seen.bytes, 4);
    CHECK_EQ(seen.heads, 0);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

const struct test_case stream_tests[] = {
    {"stream_download", test_stream_download},
    {"stream_after_401_and_307", test_stream_after_401_and_307},
    {"stream_cap", test_stream_cap},
    {"stream_slow_reader_and_deadline", test_stream_slow_reader_and_deadline},
    {"stream_callbacks_stop", test_stream_callbacks_stop},
    {"stream_bad_arguments", test_stream_bad_arguments},
    {NULL, NULL},
};
