/*
 * Request bodies read from a source (cloudauth_session_request_stream_body): a known length
 * (Content-Length) and an unknown one (chunked), checked by the stand-in's /echo; the source
 * rewound and sent again after a 401 and a 307; without a rewind sent once, the 401 or 307
 * being the answer; a source that fails, ends early, runs long or is too slow; bad arguments.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct source {
    size_t length;   /* bytes it gives in all */
    size_t at;       /* bytes given so far */
    size_t piece;    /* at most this many per read (0: as many as asked) */
    int reads;
    int rewinds;
    int fail_at;     /* read number n (1-based) fails; 0: never */
    long sleep_ms;   /* each read sleeps this long */
};

/* Byte i of every body: a pattern that shows a byte out of place. */
static uint8_t byte_at(size_t i)
{
    return (uint8_t)('a' + (i * 7 + i / 251) % 26);
}

static size_t src_read(void *user, uint8_t *buf, size_t cap)
{
    struct source *s = user;
    size_t n = s->length - s->at, i;
    s->reads++;
    if (s->fail_at && s->reads == s->fail_at)
        return CLOUDAUTH_READ_FAILED;
    if (s->sleep_ms)
        sleep_ms(s->sleep_ms);
    if (n > cap)
        n = cap;
    if (s->piece && n > s->piece)
        n = s->piece;
    for (i = 0; i < n; i++)
        buf[i] = byte_at(s->at + i);
    s->at += n;
    return n;
}

static int src_rewind(void *user)
{
    struct source *s = user;
    s->rewinds++;
    s->at = 0;
    return 0;
}

/* Sends `src` (declared `length`, -1: unknown) to `url`; whole response in *r. */
static cloudauth_result upload(cloudauth_session *s, const char *method, const char *url,
                               struct source *src, int rewindable, int64_t length,
                               cloudauth_response **r)
{
    cloudauth_body_source body = {src_read, rewindable ? src_rewind : NULL, src, length};
    return cloudauth_session_request_stream_body(s, method, url, NULL, 0, &body, NULL, r);
}

/* The echoed body is exactly the source's `n` bytes. */
static int echoed(const cloudauth_response *r, size_t n)
{
    size_t len = 0, i;
    const uint8_t *body = cloudauth_response_body(r, &len);
    if (len != n)
        return 0;
    for (i = 0; i < n; i++)
        if (body[i] != byte_at(i))
            return 0;
    return 1;
}

/* The last API request the stand-in logged carried `needle` among its headers. */
static int last_request_mentions(const char *needle)
{
    char *stats = ctl_stats();
    const char *last = stats ? strstr(stats, "\"api_log\"") : NULL;
    const char *p = last, *found = NULL;
    int ok;
    while (p && (p = strstr(p + 1, "\"method\"")) != NULL)
        found = p;
    ok = found != NULL && strstr(found, needle) != NULL;
    free(stats);
    return ok;
}

static void test_upload_known_and_unknown_length(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct source src = {3 * 1024 * 1024 + 5, 0, 0, 0, 0, 0, 0};
    REQUIRE(s != NULL);
    CHECK_RC(upload(s, "PUT", "/echo", &src, 1, (int64_t)src.length, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    CHECK(r != NULL && echoed(r, src.length));
    CHECK(src.reads > 1); /* read in pieces */
    CHECK_EQ(src.rewinds, 0);
    CHECK(last_request_mentions("\"content-length\": \"3145733\""));
    cloudauth_response_free(r);
    r = NULL;

    /* unknown length: chunked, in small pieces */
    memset(&src, 0, sizeof src);
    src.length = 100000;
    src.piece = 1000;
    CHECK_RC(upload(s, "POST", "/echo", &src, 0, -1, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && echoed(r, 100000));
    CHECK(last_request_mentions("\"transfer-encoding\": \"chunked\""));
    cloudauth_response_free(r);
    r = NULL;

    /* empty, both ways */
    memset(&src, 0, sizeof src);
    CHECK_RC(upload(s, "POST", "/echo", &src, 0, 0, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && echoed(r, 0));
    cloudauth_response_free(r);
    r = NULL;
    memset(&src, 0, sizeof src);
    CHECK_RC(upload(s, "POST", "/echo", &src, 0, -1, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && echoed(r, 0));
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_upload_rewound_after_401_and_307(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct source src = {200000, 0, 0, 0, 0, 0, 0};
    char to[256];
    char *token;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    free(token);
    /* the token is revoked: the 401 goes, the source is rewound, the same bytes go again */
    ctl_revoke();
    CHECK_RC(upload(s, "POST", "/echo", &src, 1, 200000, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    CHECK(r != NULL && echoed(r, 200000));
    CHECK_EQ(src.rewinds, 1);
    CHECK_EQ(stat_long("unauthorized"), 1);
    CHECK_EQ(stat_long("api_requests"), 1);
    cloudauth_response_free(r);
    r = NULL;

    /* a 307 keeps method and body: rewound, and the target echoes the same bytes */
    memset(&src, 0, sizeof src);
    src.length = 150000;
    snprintf(to, sizeof to, "/redirect?code=307&to=%s", surl("/echo"));
    CHECK_RC(upload(s, "PUT", to, &src, 1, -1, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    CHECK(r != NULL && echoed(r, 150000));
    CHECK_STR(r ? cloudauth_response_header(r, "X-Echo-Method") : NULL, "PUT");
    CHECK_EQ(src.rewinds, 1);
    cloudauth_response_free(r);
    r = NULL;

    /* to another origin (localhost, not 127.0.0.1): the hop goes on reqwest's carrier, the
       token stays behind (/public/ needs none), and the same bytes arrive, chunked */
    memset(&src, 0, sizeof src);
    src.length = 120000;
    snprintf(to, sizeof to, "/redirect?code=308&to=http://localhost:%d/public/echo", standin_port());
    CHECK_RC(upload(s, "POST", to, &src, 1, -1, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    CHECK(r != NULL && echoed(r, 120000));
    CHECK_EQ(src.rewinds, 1);
    cloudauth_response_free(r);
    r = NULL;
    /* and a known length */
    memset(&src, 0, sizeof src);
    src.length = 90000;
    CHECK_RC(upload(s, "PUT", to, &src, 1, 90000, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && echoed(r, 90000));
    CHECK_STR(r ? cloudauth_response_header(r, "X-Echo-Method") : NULL, "PUT");
    cloudauth_response_free(r);
    r = NULL;

    /* a 303 makes a bodiless GET: nothing to rewind */
    memset(&src, 0, sizeof src);
    src.length = 1000;
    snprintf(to, sizeof to, "/redirect?code=303&to=%s", surl("/echo"));
    CHECK_RC(upload(s, "POST", to, &src, 1, 1000, &r), CLOUDAUTH_OK);
    CHECK_STR(r ? cloudauth_response_header(r, "X-Echo-Method") : NULL, "GET");
    CHECK(r != NULL && echoed(r, 0));
    CHECK_EQ(src.rewinds, 0);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_upload_without_rewind_is_sent_once(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct source src = {50000, 0, 0, 0, 0, 0, 0};
    char to[256];
    char *token;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    free(token);
    ctl_revoke();
    /* the 401 is the answer; the refused token was dropped all the same */
    CHECK_RC(upload(s, "POST", "/echo", &src, 0, 50000, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 401);
    CHECK_EQ(stat_long("unauthorized"), 1);
    CHECK_EQ(stat_long("api_requests"), 0);
    cloudauth_response_free(r);
    r = GET(s, "/echo");
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    CHECK_EQ(stat_long("token_requests"), 2);
    cloudauth_response_free(r);
    r = NULL;

    /* a 307 is the answer too: the body could not go to its target */
    memset(&src, 0, sizeof src);
    src.length = 5000;
    snprintf(to, sizeof to, "/redirect?code=307&to=%s", surl("/echo"));
    CHECK_RC(upload(s, "PUT", to, &src, 0, -1, &r), CLOUDAUTH_OK);
    CHECK(r != NULL && cloudauth_response_status(r) == 307);
    CHECK_EQ(stat_long("api_requests"), 2); /* the GET above and the PUT, once */
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_upload_source_failures(void)
{
    long t = 700 * time_factor();
    cloudauth_session *s = OPEN_SESSION("timeout_ms", num(t), NULL);
    cloudauth_response *r = NULL;
    struct source src = {300000, 0, 0, 0, 0, 2, 0};
    REQUIRE(s != NULL);
    /* the callback fails the request */
    CHECK_RC(upload(s, "POST", "/echo", &src, 1, 300000, &r), CLOUDAUTH_ERR_CANCELLED);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("read callback");
    CHECK_EQ(src.rewinds, 0); /* never resent */

    /* ends before its declared length */
    memset(&src, 0, sizeof src);
    src.length = 500;
    CHECK_RC(upload(s, "POST", "/echo", &src, 1, 1000, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("ended after 500 of the 1000 bytes");

    /* runs past it: refused before the last byte goes, so the server never acts on it */
    memset(&src, 0, sizeof src);
    src.length = 2000;
    CHECK_RC(upload(s, "POST", "/echo", &src, 1, 1000, &r), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("more than the 1000 bytes");
    CHECK_EQ(stat_long("api_requests"), 0);

    /* too slow: the deadline covers the source */
    memset(&src, 0, sizeof src);
    src.length = (size_t)1 << 30;
    src.piece = 1024;
    src.sleep_ms = 50;
    CHECK_RC(upload(s, "POST", "/echo", &src, 1, -1, &r), CLOUDAUTH_ERR_TIMEOUT);
    CHECK_ERROR_MENTIONS("timed out");
    CHECK(src.reads <= t / 50 + 10); /* stopped near the deadline, not at the body's end */

    /* the session still works */
    r = GET(s, "/echo");
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_upload_answered_before_its_end(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    /* 300 MiB declared: the stand-in answers 413 on the Content-Length, reading nothing */
    struct source src = {(size_t)300 << 20, 0, 0, 0, 0, 0, 0};
    cloudauth_result rc;
    REQUIRE(s != NULL);
    rc = upload(s, "POST", "/echo", &src, 1, (int64_t)src.length, &r);
    /* the answer if it arrived before the connection broke, else the network error; never a
       resend of a body the server may have seen part of */
    if (rc == CLOUDAUTH_OK)
        CHECK(r != NULL && cloudauth_response_status(r) == 413);
    else
        CHECK_RC(rc, CLOUDAUTH_ERR_NETWORK);
    CHECK(src.at < src.length);
    CHECK_EQ(src.rewinds, 0);
    cloudauth_response_free(r);
    r = NULL;
    /* the same through reqwest's carrier (another origin): its writes cannot be marked
       MSG_NOSIGNAL, so SIGPIPE is blocked around them; this process (SIGPIPE at its default
       action when run by tests/run/c.sh) must live */
    memset(&src, 0, sizeof src);
    src.length = (size_t)300 << 20;
    {
        char other[128];
        snprintf(other, sizeof other, "http://localhost:%d/public/echo", standin_port());
        rc = upload(s, "POST", other, &src, 1, (int64_t)src.length, &r);
    }
    if (rc == CLOUDAUTH_OK)
        CHECK(r != NULL && cloudauth_response_status(r) == 413);
    else
        CHECK_RC(rc, CLOUDAUTH_ERR_NETWORK);
    CHECK(src.at < src.length);
    cloudauth_response_free(r);
    r = GET(s, "/echo");
    CHECK(r != NULL && cloudauth_response_status(r) == 200);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static int stop_at_head(void *user, const cloudauth_response *head)
{
    (void)user;
    (void)head;
    return 0;
}

static int count_write(void *user, const uint8_t *data, size_t len)
{
    size_t *n = user;
    (void)data;
    *n += len;
    return 0;
}

static void test_upload_with_sink_and_bad_arguments(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    struct source src = {70000, 0, 0, 0, 0, 0, 0};
    size_t got = 0, len = 1;
    cloudauth_body_sink sink = {stop_at_head, count_write, &got};
    cloudauth_body_source body = {src_read, NULL, &src, 70000};
    cloudauth_body_source no_read = {NULL, NULL, &src, 10};
    cloudauth_body_source bad_length = {src_read, NULL, &src, -2};
    REQUIRE(s != NULL);
    /* both ways streamed */
    CHECK_RC(cloudauth_session_request_stream_body(s, "POST", "/echo", NULL, 0, &body, &sink, &r),
             CLOUDAUTH_OK);
    CHECK_EQ(got, 70000);
    if (r != NULL) {
        cloudauth_response_body(r, &len);
        CHECK_EQ(len, 0);
    }
    cloudauth_response_free(r);
    r = NULL;
    /* no body, no sink: a plain request */
    CHECK_RC(cloudauth_session_request_stream_body(s, "GET", "/echo", NULL, 0, NULL, NULL, &r),
             CLOUDAUTH_OK);
    CHECK(r != NULL && echoed(r, 0));
    cloudauth_response_free(r);
    r = NULL;
    CHECK_RC(cloudauth_session_request_stream_body(s, "POST", "/echo", NULL, 0, &no_read, NULL, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("read is NULL");
    CHECK_RC(cloudauth_session_request_stream_body(s, "POST", "/echo", NULL, 0, &bad_length, NULL,
                                                   &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("length is -2");
    CHECK_RC(cloudauth_session_request_stream_body(NULL, "POST", "/echo", NULL, 0, &body, NULL, &r),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_request_stream_body(s, "POST", "/echo", NULL, 0, &body, NULL, NULL),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(r == NULL);
    cloudauth_session_free(s);
}

const struct test_case upload_tests[] = {
    {"upload_known_and_unknown_length", test_upload_known_and_unknown_length},
    {"upload_rewound_after_401_and_307", test_upload_rewound_after_401_and_307},
    {"upload_without_rewind_is_sent_once", test_upload_without_rewind_is_sent_once},
    {"upload_source_failures", test_upload_source_failures},
    {"upload_answered_before_its_end", test_upload_answered_before_its_end},
    {"upload_with_sink_and_bad_arguments", test_upload_with_sink_and_bad_arguments},
    {NULL, NULL},
};
