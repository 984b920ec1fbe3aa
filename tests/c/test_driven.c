/*
 * Caller-driven queues (cloudauth_queue_new_caller_driven): the operations run on the thread
 * that waits, inside cloudauth_queue_wait, and nowhere else; every rule of the library-thread
 * queue (token fetch, 401 resend, cancel, free with operations in flight, fork) still holds.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Takes one completion (waiting up to ms), checks it is a 200 with tag `tag`, frees it. */
static int take_ok(cloudauth_queue *q, long ms, uint64_t tag)
{
    cloudauth_completion *c = NULL;
    int ok;
    if (!CHECK_RC(cloudauth_queue_wait(q, (int32_t)ms, &c), CLOUDAUTH_OK))
        return 0;
    ok = c->tag == tag && c->result == CLOUDAUTH_OK && c->response != NULL &&
         cloudauth_response_status(c->response) == 200 && strcmp(c->error, "") == 0;
    t_check(ok, __FILE__, __LINE__, "completion tag %llu result %s error '%s'",
            (unsigned long long)c->tag, cloudauth_result_name(c->result), c->error);
    cloudauth_response_free(c->response);
    cloudauth_completion_free(c);
    return ok;
}

#define MANY 200

/* Many in flight at once, and nothing moves until the program waits. */
static void test_driven_hundreds_in_flight_progress_only_inside_the_wait(void)
{
    static int seen[MANY];
    long f = time_factor();
    double t0, last = 0;
    int i, ok = 0, dup = 0;
    long before;
    cloudauth_completion *c = NULL;
    cloudauth_queue *q = cloudauth_queue_new_caller_driven();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    free(GET_TOKEN(s));

    /* Started, not sent: no thread of the library runs it. */
    before = stat_long("api_requests");
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 5, NULL),
             CLOUDAUTH_OK);
    sleep_ms(300);
    CHECK_EQ(stat_long("api_requests"), before);
    CHECK(take_ok(q, 5000 * f, 5));
    CHECK_EQ(stat_long("api_requests"), before + 1);

    /* A zero timeout does the ready I/O and returns: polled, the request still completes. */
    CHECK_RC(cloudauth_queue_wait(q, 0, &c), CLOUDAUTH_ERR_TIMEOUT);
    CHECK_ERROR_MENTIONS("no completion arrived within 0 ms");
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/100", NULL, 0, NULL, 0, q, 6, NULL),
             CLOUDAUTH_OK);
    t0 = now_ms();
    c = NULL;
    while (now_ms() - t0 < 5000 * f && cloudauth_queue_wait(q, 0, &c) == CLOUDAUTH_ERR_TIMEOUT)
        sleep_ms(5);
    REQUIRE(c != NULL);
    CHECK_EQ(c->tag, 6);
    CHECK_EQ(cloudauth_response_status(c->response), 200);
    cloudauth_response_free(c->response);
    cloudauth_completion_free(c);

    memset(seen, 0, sizeof seen);
    t0 = now_ms();
    for (i = 0; i < MANY; i++)
        CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/400", NULL, 0, NULL, 0, q,
                                                  1000 + (uint64_t)i, NULL),
                 CLOUDAUTH_OK);
    for (i = 0; i < MANY; i++) {
        cloudauth_result rc;
        c = NULL;
        rc = cloudauth_queue_wait(q, (int32_t)(20000 * f), &c);
        CHECK_RC(rc, CLOUDAUTH_OK);
        if (rc != CLOUDAUTH_OK)
            break;
        if (c->tag >= 1000 && c->tag < 1000 + MANY && seen[c->tag - 1000]++)
            dup++;
        if (c->tag >= 1000 && c->tag < 1000 + MANY && c->result == CLOUDAUTH_OK &&
            c->response != NULL && cloudauth_response_status(c->response) == 200)
            ok++;
        cloudauth_response_free(c->response);
        cloudauth_completion_free(c);
        last = now_ms();
    }
    CHECK_EQ(ok, MANY);
    CHECK_EQ(dup, 0);
    /* One after another would take 80 s; together, about one delay. */
    t_check(last - t0 < 400 + 4000 * f, __FILE__, __LINE__, "all taken %.0f ms after the start",
            last - t0);
    CHECK_EQ(stat_long("token_requests"), 1);

    /* No descriptor to hand out; misuse is an error, not a crash. */
    CHECK_EQ(cloudauth_queue_fd(q), -1);
    CHECK_ERROR_MENTIONS("caller-driven");
    CHECK_RC(cloudauth_queue_wait(q, 0, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_token_queued(NULL, q, 1, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "http://example.com/x", NULL, 0, NULL, 0,
                                              q, 9, NULL),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_RC(cloudauth_queue_wait(q, 0, &c), CLOUDAUTH_ERR_TIMEOUT);
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

/* ---- the token, the 401 resend, and on which thread the work ran ------------------------- */

struct seen_thread {
    pthread_mutex_t lock;
    int unauthorized;
    int on_waiter;
    pthread_t waiter;
};

static void on_event(void *ud, const cloudauth_event *e)
{
    struct seen_thread *st = ud;
    if (e->kind != CLOUDAUTH_EVENT_UNAUTHORIZED)
        return;
    pthread_mutex_lock(&st->lock);
    st->unauthorized++;
    if (pthread_equal(pthread_self(), st->waiter))
        st->on_waiter++;
    pthread_mutex_unlock(&st->lock);
}

static void test_driven_token_fetch_401_resend_on_the_waiting_thread(void)
{
    long f = time_factor();
    cloudauth_completion *c = NULL;
    struct seen_thread st = {PTHREAD_MUTEX_INITIALIZER, 0, 0, pthread_self()};
    cloudauth_queue *q = cloudauth_queue_new_caller_driven();
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL;
    char *want;
    REQUIRE(q != NULL && cfg != NULL);
    CHECK_RC(cloudauth_config_set_event_callback(cfg, on_event, &st), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    REQUIRE(s != NULL);

    /* No token yet: the operation waits for the fetch (on a library thread), then sends. */
    ctl_config("{\"token_delay_ms\": 300}");
    CHECK_RC(cloudauth_session_token_queued(s, q, 1, NULL), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 2, NULL),
             CLOUDAUTH_OK);
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(5000 * f), &c), CLOUDAUTH_OK);
    REQUIRE(c != NULL);
    want = GET_TOKEN(s);
    REQUIRE(want != NULL);
    CHECK_EQ(c->tag, 1);
    CHECK_RC(c->result, CLOUDAUTH_OK);
    CHECK_STR(c->token, want);
    CHECK_EQ(c->token_len, strlen(want));
    cloudauth_completion_free(c);
    free(want);
    CHECK(take_ok(q, 5000 * f, 2));
    CHECK_EQ(stat_long("token_requests"), 1);

    /* The server forgets the token: a 401, a new token, one resend, all inside the wait on
     * this thread (the UNAUTHORIZED event is reported on the thread that did the work). */
    ctl_config("{\"token_delay_ms\": 0}");
    ctl_revoke();
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 3, NULL),
             CLOUDAUTH_OK);
    CHECK(take_ok(q, 5000 * f, 3));
    CHECK_EQ(stat_long("token_requests"), 2);
    CHECK_EQ(st.unauthorized, 1);
    CHECK_EQ(st.on_waiter, 1);
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

/* ---- cancel, session free and queue free with operations in flight ----------------------- */

static void test_driven_cancel_and_free_with_operations_in_flight(void)
{
    long f = time_factor();
    int i, cancelled = 0;
    double t0;
    cloudauth_completion *c = NULL;
    cloudauth_op *op = NULL;
    cloudauth_queue *q = cloudauth_queue_new_caller_driven();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    free(GET_TOKEN(s));

    /* Cancelled while the server takes its time: CANCELLED at once, done exactly once. */
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/3000", NULL, 0, NULL, 0, q, 7, &op),
             CLOUDAUTH_OK);
    CHECK_RC(cloudauth_queue_wait(q, 100, &c), CLOUDAUTH_ERR_TIMEOUT); /* now it is sent */
    t0 = now_ms();
    cloudauth_op_cancel(op);
    c = NULL;
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(1000 * f), &c), CLOUDAUTH_OK);
    t_check(now_ms() - t0 < 500 * f, __FILE__, __LINE__, "cancel took %.0f ms", now_ms() - t0);
    REQUIRE(c != NULL);
    CHECK_EQ(c->tag, 7);
    CHECK_RC(c->result, CLOUDAUTH_ERR_CANCELLED);
    CHECK(c->response == NULL);
    CHECK_CONTAINS(c->error, "cancelled");
    cloudauth_completion_free(c);
    cloudauth_op_cancel(op);
    cloudauth_op_free(op);
    CHECK_RC(cloudauth_queue_wait(q, 200, &c), CLOUDAUTH_ERR_TIMEOUT);

    /* The session freed with operations in flight: each arrives, CANCELLED. */
    for (i = 0; i < 3; i++)
        CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/2000", NULL, 0, NULL, 0, q,
                                                  20 + (uint64_t)i, NULL),
                 CLOUDAUTH_OK);
    CHECK_RC(cloudauth_queue_wait(q, 100, &c), CLOUDAUTH_ERR_TIMEOUT);
    cloudauth_session_free(s);
    for (i = 0; i < 3; i++) {
        c = NULL;
        if (cloudauth_queue_wait(q, (int32_t)(1000 * f), &c) != CLOUDAUTH_OK)
            break;
        if (c->tag >= 20 && c->tag < 23 && c->result == CLOUDAUTH_ERR_CANCELLED &&
            strstr(c->error, "freed") != NULL && c->response == NULL)
            cancelled++;
        cloudauth_completion_free(c);
    }
    CHECK_EQ(cancelled, 3);

    /* The queue freed with operations in flight and a completion untaken: they are dropped
     * (valgrind checks that nothing leaks), and the session still works. */
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 30, NULL),
             CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/2000", NULL, 0, NULL, 0, q, 31, NULL),
             CLOUDAUTH_OK);
    CHECK(take_ok(q, 5000 * f, 30));
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 32, NULL),
             CLOUDAUTH_OK);
    CHECK_RC(cloudauth_queue_wait(q, 200, &c), CLOUDAUTH_OK); /* 32 done; 31 in flight */
    if (c != NULL) {
        CHECK_EQ(c->tag, 32);
        cloudauth_response_free(c->response);
        cloudauth_completion_free(c);
    }
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 33, NULL),
             CLOUDAUTH_OK);
    cloudauth_queue_free(q);
    {
        cloudauth_response *r = GET(s, "/headers");
        CHECK(r != NULL && cloudauth_response_status(r) == 200);
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);
}

/* ---- fork ---------------------------------------------------------------------------------- */

static void test_driven_after_fork_the_child_makes_its_own(void)
{
    long f = time_factor();
    int status = 0;
    double waited = 0;
    pid_t pid;
    cloudauth_queue *q = cloudauth_queue_new_caller_driven();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    free(GET_TOKEN(s));
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 1, NULL),
             CLOUDAUTH_OK);
    CHECK(take_ok(q, 5000 * f, 1)); /* the queue's pool holds a connection now */
    pid = fork();
    if (pid == 0) {
        cloudauth_completion *c = NULL;
        cloudauth_queue *mine;
        int ok = cloudauth_queue_wait(q, 0, &c) == CLOUDAUTH_ERR_INVALID_ARGUMENT &&
                 strstr(cloudauth_last_error(), "before fork()") != NULL &&
                 cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 2,
                                                  NULL) == CLOUDAUTH_ERR_INVALID_ARGUMENT;
        mine = cloudauth_queue_new_caller_driven();
        ok = ok && mine != NULL &&
             cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, mine, 5,
                                              NULL) == CLOUDAUTH_OK &&
             cloudauth_queue_wait(mine, (int32_t)(5000 * f), &c) == CLOUDAUTH_OK && c->tag == 5 &&
             c->result == CLOUDAUTH_OK && cloudauth_response_status(c->response) == 200;
        /* Freeing the parent's queue here must not touch the parent's runtime or sockets. */
        cloudauth_queue_free(q);
        /* The verdict by exec (see test_lifecycle.c): no exit-time leak report in the child. */
        execl(ok ? "/bin/true" : "/bin/false", ok ? "true" : "false", (char *)NULL);
        _exit(ok ? 0 : 3);
    }
    REQUIRE(pid > 0);
    while (waitpid(pid, &status, WNOHANG) == 0 && waited < 10000 * f) {
        sleep_ms(20);
        waited += 20;
    }
    t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__, __LINE__,
            "child: exited %d status %d", WIFEXITED(status),
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    /* The parent's queue and its pooled connection still work. */
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q, 3, NULL),
             CLOUDAUTH_OK);
    CHECK(take_ok(q, 5000 * f, 3));
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

const struct test_case driven_tests[] = {
    {"driven_hundreds_in_flight_progress_only_inside_the_wait",
     test_driven_hundreds_in_flight_progress_only_inside_the_wait},
    {"driven_token_fetch_401_resend_on_the_waiting_thread",
     test_driven_token_fetch_401_resend_on_the_waiting_thread},
    {"driven_cancel_and_free_with_operations_in_flight",
     test_driven_cancel_and_free_with_operations_in_flight},
    {"driven_after_fork_the_child_makes_its_own", test_driven_after_fork_the_child_makes_its_own},
    {NULL, NULL},
};
