/*
 * Asynchronous operations (issue 9): cloudauth_session_request_async, _token_async,
 * cloudauth_op_cancel/_free, cloudauth_session_token_cached, against the stand-in.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a completion record, waited for with a bound ---------------------------------------- */

struct done_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;               /* how often the completion ran (must end at exactly 1) */
    cloudauth_result rc;
    uint16_t status;
    char error[600];
    char token[4096];
    pthread_t thread;        /* the thread it ran on */
    double at_ms;            /* when it ran, from now_ms() */
    cloudauth_session *reenter; /* if set, the completion calls back into this session */
    cloudauth_result reenter_rc[3];
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void rec_init(struct done_rec *d)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
}

static void rec_destroy(struct done_rec *d)
{
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

static void rec_finish(struct done_rec *d, cloudauth_result rc, const char *error)
{
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->rc = rc;
    d->thread = pthread_self();
    d->at_ms = now_ms();
    snprintf(d->error, sizeof d->error, "%s", error ? error : "(null)");
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* Waits until the completion ran (at most limit_ms); 1 if it did. */
static int rec_wait(struct done_rec *d, long limit_ms)
{
    double end = now_ms() + limit_ms;
    int ran;
    pthread_mutex_lock(&d->mu);
    while (d->calls == 0 && now_ms() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    ran = d->calls > 0;
    pthread_mutex_unlock(&d->mu);
    return ran;
}

static void on_response(void *user_data, cloudauth_result rc, cloudauth_response *r,
                        const char *error)
{
    struct done_rec *d = user_data;
    if (d->reenter != NULL) {
        /* Blocking calls, and a new async operation, from inside a completion. */
        char buf[4096];
        size_t len = 0;
        cloudauth_response *r2 = NULL;
        d->reenter_rc[0] = cloudauth_session_token(d->reenter, buf, sizeof buf, &len);
        d->reenter_rc[1] = cloudauth_session_request(d->reenter, "GET", "/headers", NULL, 0,
                                                     NULL, 0, &r2);
        if (r2 != NULL && cloudauth_response_status(r2) != 200)
            d->reenter_rc[1] = CLOUDAUTH_ERR_INTERNAL;
        cloudauth_response_free(r2);
        d->reenter_rc[2] = cloudauth_session_token_cached(d->reenter, buf, sizeof buf, &len);
    }
    d->status = r != NULL ? cloudauth_response_status(r) : 0;
    if ((rc == CLOUDAUTH_OK) != (r != NULL))
        d->status = 999; /* a response exactly when OK */
    cloudauth_response_free(r);
    rec_finish(d, rc, error);
}

static void on_token(void *user_data, cloudauth_result rc, const char *token, size_t len,
                     const char *error)
{
    struct done_rec *d = user_data;
    if (token != NULL && len < sizeof d->token && strlen(token) == len)
        memcpy(d->token, token, len + 1);
    if ((rc == CLOUDAUTH_OK) != (token != NULL))
        d->status = 999;
    rec_finish(d, rc, error);
}

static void check_once(struct done_rec *d, long limit_ms, cloudauth_result want)
{
    CHECK(rec_wait(d, limit_ms));
    sleep_ms(30); /* a second call would show up here */
    pthread_mutex_lock(&d->mu);
    CHECK_EQ(d->calls, 1);
    CHECK_RC(d->rc, want);
    CHECK(!pthread_equal(d->thread, pthread_self()));
    if (want == CLOUDAUTH_OK)
        CHECK_STR(d->error, "");
    else
        CHECK(d->error[0] != '\0' && strchr(d->error, '\n') == NULL);
    pthread_mutex_unlock(&d->mu);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_async_request_runs_done_once_on_a_library_thread(void)
{
    struct done_rec d;
    cloudauth_op *op = NULL;
    const char *hdrs[] = {"X-Test: async"};
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    rec_init(&d);
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/headers", hdrs, 1, NULL, 0, on_response,
                                             &d, &op),
             CLOUDAUTH_OK);
    CHECK(op != NULL);
    check_once(&d, 5000 * time_factor(), CLOUDAUTH_OK);
    CHECK_EQ(d.status, 200);
    cloudauth_op_cancel(op); /* after it finished: a no-op, no second call */
    sleep_ms(50);
    CHECK_EQ(d.calls, 1);
    cloudauth_op_free(op);
    cloudauth_op_free(NULL);
    cloudauth_op_cancel(NULL);
    cloudauth_session_free(s);
    rec_destroy(&d);
}

static void test_async_token_and_token_cached(void)
{
    struct done_rec d;
    char buf[4096];
    size_t len = 0;
    char *blocking;
    cloudauth_session *s;
    ctl_config("{\"token_delay_ms\": 300}");
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    /* Nothing cached: never blocks, starts a fetch. */
    CHECK_RC(cloudauth_session_token_cached(s, buf, sizeof buf, &len), CLOUDAUTH_ERR_WOULD_BLOCK);
    CHECK_ERROR_MENTIONS("fetch");
    rec_init(&d);
    CHECK_RC(cloudauth_session_token_async(s, on_token, &d, NULL), CLOUDAUTH_OK);
    check_once(&d, 5000 * time_factor(), CLOUDAUTH_OK);
    blocking = GET_TOKEN(s);
    CHECK(blocking != NULL && strcmp(blocking, d.token) == 0);
    CHECK_RC(cloudauth_session_token_cached(s, buf, sizeof buf, &len), CLOUDAUTH_OK);
    CHECK_EQ(len, strlen(d.token));
    CHECK_STR(buf, d.token);
    CHECK_RC(cloudauth_session_token_cached(s, NULL, 0, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL);
    /* The cached call, the async call and the blocking call shared one fetch. */
    CHECK_EQ(stat_long("token_requests"), 1);
    free(blocking);
    cloudauth_session_free(s);
    rec_destroy(&d);
}

#define MANY 200

static void test_async_hundreds_in_flight_from_one_thread(void)
{
    static struct done_rec d[MANY];
    long f = time_factor();
    double t0, first = 1e18, last = 0;
    int i, ok = 0;
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    free(GET_TOKEN(s));
    t0 = now_ms();
    for (i = 0; i < MANY; i++) {
        rec_init(&d[i]);
        CHECK_RC(cloudauth_session_request_async(s, "GET", "/delay/400", NULL, 0, NULL, 0,
                                                 on_response, &d[i], NULL),
                 CLOUDAUTH_OK);
    }
    for (i = 0; i < MANY; i++) {
        if (rec_wait(&d[i], 20000 * f) && d[i].rc == CLOUDAUTH_OK && d[i].status == 200)
            ok++;
        if (d[i].at_ms < first)
            first = d[i].at_ms;
        if (d[i].at_ms > last)
            last = d[i].at_ms;
    }
    CHECK_EQ(ok, MANY);
    /* One after another would take MANY x 400 ms = 80 s; together, about one delay. */
    CHECK(first - t0 >= 390);
    t_check(last - t0 < 400 + 4000 * f, __FILE__, __LINE__, "all done %.0f ms after the start",
            last - t0);
    CHECK_EQ(stat_long("token_requests"), 1);
    for (i = 0; i < MANY; i++)
        rec_destroy(&d[i]);
    cloudauth_session_free(s);
}

static void test_async_cancel_at_each_stage(void)
{
    struct done_rec d;
    cloudauth_op *op = NULL;
    long f = time_factor();
    double t0;
    cloudauth_session *s;

    /* While the token is being fetched (a 1.5 s token endpoint). */
    ctl_config("{\"token_delay_ms\": 1500}");
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    rec_init(&d);
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/headers", NULL, 0, NULL, 0, on_response,
                                             &d, &op),
             CLOUDAUTH_OK);
    sleep_ms(100);
    t0 = now_ms();
    cloudauth_op_cancel(op);
    cloudauth_op_cancel(op); /* twice: still one completion */
    check_once(&d, 1000 * f, CLOUDAUTH_ERR_CANCELLED);
    t_check(d.at_ms - t0 < 200 * f, __FILE__, __LINE__, "cancel took %.0f ms", d.at_ms - t0);
    CHECK_EQ(d.status, 0);
    cloudauth_op_free(op);
    rec_destroy(&d);
    /* The fetch it started still lands: the session stays usable and fetched once. */
    free(GET_TOKEN(s));
    CHECK_EQ(stat_long("token_requests"), 1);

    /* While the API answers slowly. */
    rec_init(&d);
    op = NULL;
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/delay/3000", NULL, 0, NULL, 0,
                                             on_response, &d, &op),
             CLOUDAUTH_OK);
    sleep_ms(200);
    t0 = now_ms();
    cloudauth_op_cancel(op);
    check_once(&d, 1000 * f, CLOUDAUTH_ERR_CANCELLED);
    t_check(d.at_ms - t0 < 200 * f, __FILE__, __LINE__, "cancel took %.0f ms", d.at_ms - t0);
    cloudauth_op_free(op);
    rec_destroy(&d);

    /* Freed before it is cancelled: the handle outlives nothing, the completion still runs. */
    rec_init(&d);
    op = NULL;
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/headers", NULL, 0, NULL, 0, on_response,
                                             &d, &op),
             CLOUDAUTH_OK);
    cloudauth_op_free(op);
    check_once(&d, 5000 * f, CLOUDAUTH_OK);
    rec_destroy(&d);
    cloudauth_session_free(s);
}

static void test_async_free_session_with_operations_in_flight(void)
{
    static struct done_rec d[20];
    struct done_rec t;
    long f = time_factor();
    int i, cancelled = 0;
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    free(GET_TOKEN(s));
    for (i = 0; i < 20; i++) {
        rec_init(&d[i]);
        CHECK_RC(cloudauth_session_request_async(s, "GET", "/delay/2000", NULL, 0, NULL, 0,
                                                 on_response, &d[i], NULL),
                 CLOUDAUTH_OK);
    }
    rec_init(&t);
    ctl_config("{\"token_delay_ms\": 2000}");
    cloudauth_session_invalidate(s);
    CHECK_RC(cloudauth_session_token_async(s, on_token, &t, NULL), CLOUDAUTH_OK);
    sleep_ms(100);
    cloudauth_session_free(s);
    for (i = 0; i < 20; i++) {
        if (rec_wait(&d[i], 1000 * f) && d[i].rc == CLOUDAUTH_ERR_CANCELLED && d[i].calls == 1)
            cancelled++;
        rec_destroy(&d[i]);
    }
    CHECK_EQ(cancelled, 20);
    check_once(&t, 1000 * f, CLOUDAUTH_ERR_CANCELLED);
    CHECK_CONTAINS(t.error, "freed");
    rec_destroy(&t);
}

static void test_async_callbacks_reenter_the_library(void)
{
    struct done_rec d;
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    rec_init(&d);
    d.reenter = s;
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/headers", NULL, 0, NULL, 0, on_response,
                                             &d, NULL),
             CLOUDAUTH_OK);
    check_once(&d, 10000 * time_factor(), CLOUDAUTH_OK);
    CHECK_RC(d.reenter_rc[0], CLOUDAUTH_OK);
    CHECK_RC(d.reenter_rc[1], CLOUDAUTH_OK);
    CHECK_RC(d.reenter_rc[2], CLOUDAUTH_OK);
    rec_destroy(&d);
    cloudauth_session_free(s);
}

static void test_async_401_resend_and_errors(void)
{
    struct done_rec d;
    cloudauth_op *op = (cloudauth_op *)&d; /* must stay untouched on failure */
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    free(GET_TOKEN(s));
    ctl_revoke();
    rec_init(&d);
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/headers", NULL, 0, NULL, 0, on_response,
                                             &d, NULL),
             CLOUDAUTH_OK);
    check_once(&d, 5000 * time_factor(), CLOUDAUTH_OK);
    CHECK_EQ(d.status, 200);
    CHECK_EQ(stat_long("token_requests"), 2);
    rec_destroy(&d);

    /* Refused at once: done is never called. */
    rec_init(&d);
    CHECK_RC(cloudauth_session_request_async(NULL, "GET", "/x", NULL, 0, NULL, 0, on_response, &d,
                                             &op),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/x", NULL, 0, NULL, 0, NULL, &d, &op),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("done");
    CHECK_RC(cloudauth_session_request_async(s, "GET", "http://example.com/x", NULL, 0, NULL, 0,
                                             on_response, &d, &op),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_RC(cloudauth_session_request_async(s, "GET", "/x", NULL, 2, NULL, 0, on_response, &d,
                                             &op),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_token_async(s, NULL, &d, &op), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_token_async(NULL, on_token, &d, &op),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(op == (cloudauth_op *)&d);
    sleep_ms(100);
    CHECK_EQ(d.calls, 0);
    rec_destroy(&d);
    cloudauth_session_free(s);
}

const struct test_case async_tests[] = {
    {"async_request_runs_done_once_on_a_library_thread",
     test_async_request_runs_done_once_on_a_library_thread},
    {"async_token_and_token_cached", test_async_token_and_token_cached},
    {"async_hundreds_in_flight_from_one_thread", test_async_hundreds_in_flight_from_one_thread},
    {"async_cancel_at_each_stage", test_async_cancel_at_each_stage},
    {"async_free_session_with_operations_in_flight",
     test_async_free_session_with_operations_in_flight},
    {"async_callbacks_reenter_the_library", test_async_callbacks_reenter_the_library},
    {"async_401_resend_and_errors", test_async_401_resend_and_errors},
    {NULL, NULL},
};
