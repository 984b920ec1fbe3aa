/*
 * Completion queues: cloudauth_session_request_queued, _token_queued, cloudauth_queue_wait,
 * cloudauth_config_set_event_queue. The program's own thread takes every completion; no code
 * of the program runs on a library thread.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <pthread.h>
#include <poll.h>
#include <signal.h>
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

#define MANY 200

static void test_queue_hundreds_in_flight_taken_by_the_callers_thread(void)
{
    static int seen[MANY];
    long f = time_factor();
    double t0, last = 0;
    int i, ok = 0, dup = 0;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    free(GET_TOKEN(s));
    memset(seen, 0, sizeof seen);
    t0 = now_ms();
    for (i = 0; i < MANY; i++)
        CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/400", NULL, 0, NULL, 0, q,
                                                  1000 + (uint64_t)i, NULL),
                 CLOUDAUTH_OK);
    for (i = 0; i < MANY; i++) {
        cloudauth_completion *c = NULL;
        cloudauth_result rc = cloudauth_queue_wait(q, (int32_t)(20000 * f), &c);
        CHECK_RC(rc, CLOUDAUTH_OK);
        if (rc != CLOUDAUTH_OK)
            break;
        CHECK(c->tag >= 1000 && c->tag < 1000 + MANY);
        if (c->tag >= 1000 && c->tag < 1000 + MANY && seen[c->tag - 1000]++)
            dup++;
        if (c->result == CLOUDAUTH_OK && c->response != NULL &&
            cloudauth_response_status(c->response) == 200 && c->event == NULL &&
            c->token == NULL && strcmp(c->error, "") == 0)
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
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

static void test_queue_token_cancel_and_errors(void)
{
    long f = time_factor();
    cloudauth_completion *c = NULL;
    cloudauth_op *op = NULL;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_session *s;
    char *want;
    double t0;

    ctl_config("{\"token_delay_ms\": 1500}");
    s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    /* Cancelled while the token is fetched: the completion arrives at once. */
    CHECK_RC(cloudauth_session_token_queued(s, q, 7, &op), CLOUDAUTH_OK);
    sleep_ms(100);
    t0 = now_ms();
    cloudauth_op_cancel(op);
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(1000 * f), &c), CLOUDAUTH_OK);
    t_check(now_ms() - t0 < 200 * f, __FILE__, __LINE__, "cancel took %.0f ms", now_ms() - t0);
    CHECK_EQ(c->tag, 7);
    CHECK_RC(c->result, CLOUDAUTH_ERR_CANCELLED);
    CHECK(c->token == NULL && c->token_len == 0 && c->response == NULL);
    CHECK_CONTAINS(c->error, "cancelled");
    cloudauth_completion_free(c);
    cloudauth_op_free(op);

    /* Then a token: the same one the blocking call returns. */
    CHECK_RC(cloudauth_session_token_queued(s, q, 8, NULL), CLOUDAUTH_OK);
    c = NULL;
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(5000 * f), &c), CLOUDAUTH_OK);
    want = GET_TOKEN(s);
    REQUIRE(c != NULL && want != NULL);
    CHECK_EQ(c->tag, 8);
    CHECK_RC(c->result, CLOUDAUTH_OK);
    CHECK_STR(c->token, want);
    CHECK_EQ(c->token_len, strlen(want));
    cloudauth_completion_free(c);
    free(want);

    /* An error's message arrives with it. */
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "http://example.com/x", NULL, 0, NULL, 0,
                                              q, 9, NULL),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/status/500", NULL, 0, NULL, 0, q, 10,
                                              NULL),
             CLOUDAUTH_OK);
    c = NULL;
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(5000 * f), &c), CLOUDAUTH_OK);
    CHECK_EQ(c->tag, 10);
    CHECK_RC(c->result, CLOUDAUTH_OK);
    CHECK_EQ(cloudauth_response_status(c->response), 500);
    cloudauth_response_free(c->response);
    cloudauth_completion_free(c);

    /* Misuse: NULLs are errors, never a crash; nothing started means nothing arrives. */
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, NULL, 1,
                                              NULL),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(cloudauth_last_error(), "queue is NULL");
    CHECK_RC(cloudauth_session_token_queued(NULL, q, 1, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_queue_wait(NULL, 0, &c), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_queue_wait(q, 0, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_queue_wait(q, 0, &c), CLOUDAUTH_ERR_TIMEOUT);
    CHECK_CONTAINS(cloudauth_last_error(), "no completion arrived within 0 ms");
    cloudauth_completion_free(NULL);
    cloudauth_queue_free(NULL);

    /* Freeing the session with queued operations in flight: each arrives, CANCELLED. */
    {
        int i, cancelled = 0;
        for (i = 0; i < 3; i++)
            CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/2000", NULL, 0, NULL, 0, q,
                                                      20 + (uint64_t)i, NULL),
                     CLOUDAUTH_OK);
        sleep_ms(100);
        cloudauth_session_free(s);
        for (i = 0; i < 3; i++) {
            c = NULL;
            if (cloudauth_queue_wait(q, (int32_t)(1000 * f), &c) != CLOUDAUTH_OK)
                break;
            if (c->result == CLOUDAUTH_ERR_CANCELLED && strstr(c->error, "freed") != NULL &&
                c->response == NULL)
                cancelled++;
            cloudauth_completion_free(c);
        }
        CHECK_EQ(cancelled, 3);
    }
    cloudauth_queue_free(q);
}

/* ---- a signal ends an unbounded wait ------------------------------------------------------ */

struct waiter {
    cloudauth_queue *q;
    cloudauth_result rc;
    double returned_at;
};

static void on_signal(int sig) { (void)sig; }

static void *wait_forever(void *arg)
{
    struct waiter *w = arg;
    cloudauth_completion *c = NULL;
    w->rc = cloudauth_queue_wait(w->q, -1, &c);
    w->returned_at = now_ms();
    cloudauth_completion_free(c);
    return NULL;
}

static void test_queue_wait_times_out_and_a_signal_ends_it(void)
{
    struct sigaction sa, old;
    struct waiter w;
    pthread_t t;
    double t0;
    long f = time_factor();
    cloudauth_completion *c = NULL;

    memset(&w, 0, sizeof w);
    w.q = cloudauth_queue_new();
    REQUIRE(w.q != NULL);
    t0 = now_ms();
    CHECK_RC(cloudauth_queue_wait(w.q, 100, &c), CLOUDAUTH_ERR_TIMEOUT);
    CHECK(now_ms() - t0 >= 99);
    t_check(now_ms() - t0 < 100 + 500 * f, __FILE__, __LINE__, "timed out after %.0f ms",
            now_ms() - t0);
    CHECK(c == NULL);

    /* Without SA_RESTART, as a runtime's interrupt signal (Mono's abort) is. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    w.rc = CLOUDAUTH_OK;
    REQUIRE(pthread_create(&t, NULL, wait_forever, &w) == 0);
    sleep_ms(200);
    t0 = now_ms();
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    CHECK_RC(w.rc, CLOUDAUTH_ERR_TIMEOUT);
    t_check(w.returned_at - t0 < 500 * f, __FILE__, __LINE__, "returned %.0f ms after the signal",
            w.returned_at - t0);
    sigaction(SIGUSR1, &old, NULL);
    cloudauth_queue_free(w.q);
}

static void test_queue_events_and_free_with_completions_untaken(void)
{
    long f = time_factor();
    int fetched = 0, others = 0, i;
    cloudauth_completion *c = NULL;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL;
    REQUIRE(q != NULL && cfg != NULL);
    CHECK_RC(cloudauth_config_set_event_queue(NULL, q, 1), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_config_set_event_queue(cfg, q, 42), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    REQUIRE(s != NULL);
    free(GET_TOKEN(s));
    /* The fetch's event is in the queue, taken by this thread. */
    CHECK_RC(cloudauth_queue_wait(q, (int32_t)(2000 * f), &c), CLOUDAUTH_OK);
    REQUIRE(c != NULL);
    CHECK_EQ(c->tag, 42);
    REQUIRE(c->event != NULL);
    CHECK_EQ(c->event->kind, CLOUDAUTH_EVENT_TOKEN_FETCHED);
    CHECK_STR(c->event->reason, "first_use");
    CHECK_RC(c->result, CLOUDAUTH_OK);
    CHECK(c->response == NULL && c->token == NULL);
    cloudauth_completion_free(c);

    /* Completions and events nobody takes are freed with the queue (valgrind checks). */
    for (i = 0; i < 10; i++)
        CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q,
                                                  (uint64_t)i, NULL),
                 CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_token_queued(s, q, 11, NULL), CLOUDAUTH_OK);
    sleep_ms(300 * f);
    cloudauth_session_invalidate(s);
    free(GET_TOKEN(s));
    for (i = 0; i < 2; i++) { /* take two; leave the rest */
        c = NULL;
        if (cloudauth_queue_wait(q, (int32_t)(2000 * f), &c) == CLOUDAUTH_OK) {
            if (c->event != NULL)
                fetched++;
            else
                others++;
            cloudauth_response_free(c->response);
            cloudauth_completion_free(c);
        }
    }
    CHECK_EQ(fetched + others, 2);
    /* Operations still in flight when the queue goes keep its memory until they finish. */
    CHECK_RC(cloudauth_session_request_queued(s, "GET", "/delay/300", NULL, 0, NULL, 0, q, 99,
                                              NULL),
             CLOUDAUTH_OK);
    cloudauth_queue_free(q);
    sleep_ms(600 * f);
    cloudauth_session_free(s);
}

/* An event loop waits on the descriptor, then takes completions without waiting. */
static void test_queue_fd_for_an_event_loop(void)
{
    long f = time_factor();
    int i, taken = 0;
    struct pollfd pfd;
    cloudauth_completion *c = NULL;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    CHECK_EQ(cloudauth_queue_fd(NULL), -1);
    pfd.fd = cloudauth_queue_fd(q);
    pfd.events = POLLIN;
    REQUIRE(pfd.fd >= 0);
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    for (i = 0; i < 3; i++)
        CHECK_RC(cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, q,
                                                  (uint64_t)i, NULL),
                 CLOUDAUTH_OK);
    while (taken < 3 && poll(&pfd, 1, (int)(5000 * f)) == 1) {
        while (cloudauth_queue_wait(q, 0, &c) == CLOUDAUTH_OK) {
            CHECK_RC(c->result, CLOUDAUTH_OK);
            cloudauth_response_free(c->response);
            cloudauth_completion_free(c);
            taken++;
        }
    }
    CHECK_EQ(taken, 3);
    /* Drained: the loop would sleep now. */
    CHECK_EQ(poll(&pfd, 1, 0), 0);
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

struct cb_rec {
    int calls;
    int on_caller;
};

static pthread_t caller;

static void on_event_cb(void *ud, const cloudauth_event *e)
{
    struct cb_rec *r = ud;
    (void)e;
    r->calls++;
    if (pthread_equal(pthread_self(), caller))
        r->on_caller++;
}

/* With a callback and a queue: a blocking call's events go to the callback, on the caller's
 * thread; those of library threads to the queue. */
static void test_queue_and_callback_split_events_by_thread(void)
{
    long f = time_factor();
    int events = 0, ops = 0, i;
    struct cb_rec rec = {0, 0};
    cloudauth_completion *c = NULL;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_config *cfg = OPEN_CONFIG(NULL);
    cloudauth_session *s = NULL;
    REQUIRE(q != NULL && cfg != NULL);
    caller = pthread_self();
    CHECK_RC(cloudauth_config_set_event_callback(cfg, on_event_cb, &rec), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_config_set_event_queue(cfg, q, 3), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    REQUIRE(s != NULL);
    free(GET_TOKEN(s));
    CHECK_EQ(rec.calls, 1);
    CHECK_EQ(rec.on_caller, 1);
    CHECK_RC(cloudauth_queue_wait(q, 0, &c), CLOUDAUTH_ERR_TIMEOUT);

    cloudauth_session_invalidate(s);
    CHECK_RC(cloudauth_session_token_queued(s, q, 4, NULL), CLOUDAUTH_OK);
    for (i = 0; i < 2; i++) {
        c = NULL;
        if (cloudauth_queue_wait(q, (int32_t)(5000 * f), &c) != CLOUDAUTH_OK)
            break;
        if (c->event != NULL && c->tag == 3 && c->event->kind == CLOUDAUTH_EVENT_TOKEN_FETCHED)
            events++;
        else if (c->event == NULL && c->tag == 4 && c->result == CLOUDAUTH_OK)
            ops++;
        cloudauth_completion_free(c);
    }
    CHECK_EQ(events, 1);
    CHECK_EQ(ops, 1);
    CHECK_EQ(rec.calls, 1); /* the library thread's event did not reach the callback */
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

/* A child of fork() shares the parent's eventfd: the parent's queue is refused there, a new
 * one works. */
static void test_queue_after_fork_the_child_makes_its_own(void)
{
    long f = time_factor();
    int status = 0;
    double waited = 0;
    pid_t pid;
    cloudauth_queue *q = cloudauth_queue_new();
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(q != NULL && s != NULL);
    free(GET_TOKEN(s));
    pid = fork();
    if (pid == 0) {
        cloudauth_completion *c = NULL;
        cloudauth_queue *mine;
        int ok = cloudauth_queue_wait(q, 0, &c) == CLOUDAUTH_ERR_INVALID_ARGUMENT &&
                 strstr(cloudauth_last_error(), "before fork()") != NULL &&
                 cloudauth_session_token_queued(s, q, 1, NULL) == CLOUDAUTH_ERR_INVALID_ARGUMENT;
        mine = cloudauth_queue_new();
        ok = ok && mine != NULL &&
             cloudauth_session_request_queued(s, "GET", "/headers", NULL, 0, NULL, 0, mine, 5,
                                              NULL) == CLOUDAUTH_OK &&
             cloudauth_queue_wait(mine, (int32_t)(5000 * f), &c) == CLOUDAUTH_OK && c->tag == 5 &&
             c->result == CLOUDAUTH_OK && cloudauth_response_status(c->response) == 200;
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
    /* The parent's queue still works. */
    CHECK_RC(cloudauth_session_token_queued(s, q, 2, NULL), CLOUDAUTH_OK);
    {
        cloudauth_completion *c = NULL;
        CHECK_RC(cloudauth_queue_wait(q, (int32_t)(5000 * f), &c), CLOUDAUTH_OK);
        if (c != NULL)
            CHECK_EQ(c->tag, 2);
        cloudauth_completion_free(c);
    }
    cloudauth_session_free(s);
    cloudauth_queue_free(q);
}

const struct test_case queue_tests[] = {
    {"queue_hundreds_in_flight_taken_by_the_callers_thread",
     test_queue_hundreds_in_flight_taken_by_the_callers_thread},
    {"queue_token_cancel_and_errors", test_queue_token_cancel_and_errors},
    {"queue_wait_times_out_and_a_signal_ends_it", test_queue_wait_times_out_and_a_signal_ends_it},
    {"queue_events_and_free_with_completions_untaken",
     test_queue_events_and_free_with_completions_untaken},
    {"queue_fd_for_an_event_loop", test_queue_fd_for_an_event_loop},
    {"queue_and_callback_split_events_by_thread", test_queue_and_callback_split_events_by_thread},
    {"queue_after_fork_the_child_makes_its_own", test_queue_after_fork_the_child_makes_its_own},
    {NULL, NULL},
};
