/*
 * fork() after use, as a pre-fork server (gunicorn, uwsgi, php-fpm) does it: the parent has
 * used blocking and async calls (per-thread runtime and clients, the library runtime and its
 * clients), then forks; each child uses the library and leaves with _exit, running no
 * destructor. Natively every child must exit 0. Under valgrind (tests/run/c.sh --valgrind:
 * --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99) a child that lost
 * memory exits 99 instead: what it inherited and abandoned must stay reachable (src/fork.rs).
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- an async request, waited for with a bound ------------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    cloudauth_result rc;
    uint16_t status;
};

static void on_done(void *user_data, cloudauth_result rc, cloudauth_response *r, const char *error)
{
    struct waiter *w = user_data;
    (void)error;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    w->rc = rc;
    w->status = r ? cloudauth_response_status(r) : 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    cloudauth_response_free(r);
}

/* A waiter whose completion did not come in time: kept (reachable) in case it still runs. */
static struct waiter *late_waiter;

/* 1 when an async GET of `url` answered 200 within 10 s (times the time factor). */
static int async_get_ok(cloudauth_session *s, const char *url)
{
    struct waiter *w = calloc(1, sizeof *w);
    struct timespec until;
    int ok;
    if (w == NULL)
        return 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (cloudauth_session_request_async(s, "GET", url, NULL, 0, NULL, 0, on_done, w, NULL) !=
        CLOUDAUTH_OK) {
        free(w);
        return 0;
    }
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10 * time_factor();
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0)
            break;
    ok = w->done && w->rc == CLOUDAUTH_OK && w->status == 200;
    pthread_mutex_unlock(&w->mu);
    if (!w->done) {
        fprintf(stderr, "  pid %ld: async GET %s did not complete\n", (long)getpid(), url);
        late_waiter = w;
        return 0;
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return ok;
}

static int blocking_get_ok(cloudauth_session *s, const char *url)
{
    cloudauth_response *r = NULL;
    int ok = cloudauth_session_request(s, "GET", url, NULL, 0, NULL, 0, &r) == CLOUDAUTH_OK &&
             cloudauth_response_status(r) == 200;
    if (!ok)
        fprintf(stderr, "  pid %ld: GET %s: %s\n", (long)getpid(), url, cloudauth_last_error());
    cloudauth_response_free(r);
    return ok;
}

/* What each child does: blocking and async requests on the inherited session, and a new
 * session of its own. */
static int child_work(cloudauth_session *inherited, const char *url)
{
    char token[4096];
    size_t len = 0;
    int ok = 1, i;
    cloudauth_session *own;
    for (i = 0; i < 3; i++)
        ok &= blocking_get_ok(inherited, url);
    ok &= async_get_ok(inherited, url);
    ok &= cloudauth_session_token(inherited, token, sizeof token, &len) == CLOUDAUTH_OK;
    own = OPEN_SESSION(NULL);
    ok &= own != NULL && blocking_get_ok(own, url) && async_get_ok(own, url);
    cloudauth_session_free(own);
    return ok;
}

/* A second thread of the parent's that used the library: its runtime and clients live in its
 * thread-locals, which exist in no child. */
static void *parent_thread(void *arg)
{
    cloudauth_session *s = arg;
    return blocking_get_ok(s, surl("/headers")) ? s : NULL;
}

/* Before a fork: lets the library threads finish the completions they were running. (A thread
 * caught mid-completion holds its outcome in its registers, which valgrind forgets in a child,
 * as it forgets every thread but the forking one: see tests/valgrind/threads-after-fork.supp.) */
static void settle(void)
{
    sleep_ms(100 * time_factor());
}

/* Forks `children` children that each run child_work and leave with _exit; checks each one's
 * exit status. */
static void fork_children(cloudauth_session *s, int children)
{
    pid_t pids[8];
    char url[512];
    int i;
    snprintf(url, sizeof url, "%s", surl("/headers"));
    settle();
    fflush(NULL);
    for (i = 0; i < children; i++) {
        pids[i] = fork();
        REQUIRE(pids[i] >= 0);
        if (pids[i] == 0) {
            alarm((unsigned)(30 * time_factor()));
            _exit(child_work(s, url) ? 0 : 1);
        }
    }
    /* The parent carries on meanwhile. */
    CHECK(blocking_get_ok(s, url));
    CHECK(async_get_ok(s, url));
    for (i = 0; i < children; i++) {
        int status = 0;
        while (waitpid(pids[i], &status, 0) < 0) {
        }
        t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__, __LINE__,
                "child %d (pid %ld): %s %d%s", i, (long)pids[i],
                WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                WIFEXITED(status) && WEXITSTATUS(status) == 99
                    ? " (valgrind: errors or definitely lost blocks in the child)"
                    : "");
    }
}

static void test_fork_after_blocking_use(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    REQUIRE(blocking_get_ok(s, surl("/headers")));
    fork_children(s, 1);
    cloudauth_session_free(s);
}

static void test_fork_after_async_and_threaded_use(void)
{
    pthread_t t;
    void *res = NULL;
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    REQUIRE(async_get_ok(s, surl("/headers")));
    REQUIRE(pthread_create(&t, NULL, parent_thread, s) == 0);
    pthread_join(t, &res);
    CHECK(res == s);
    REQUIRE(blocking_get_ok(s, surl("/headers")));
    fork_children(s, 3);
    /* And once more from the same parent: a second generation of children. */
    fork_children(s, 2);
    cloudauth_session_free(s);
}

/* A child that forks in turn: the grandchild abandons two generations. */
static void test_fork_in_a_child_of_fork(void)
{
    pid_t pid;
    int status = 0;
    char url[512];
    cloudauth_session *s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    REQUIRE(blocking_get_ok(s, surl("/headers")));
    REQUIRE(async_get_ok(s, surl("/headers")));
    snprintf(url, sizeof url, "%s", surl("/headers"));
    settle();
    fflush(NULL);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        pid_t grandchild;
        int ok, gstatus = 0;
        alarm((unsigned)(60 * time_factor()));
        ok = child_work(s, url);
        settle();
        fflush(NULL);
        grandchild = fork();
        if (grandchild == 0)
            _exit(child_work(s, url) ? 0 : 1);
        ok &= grandchild > 0 && waitpid(grandchild, &gstatus, 0) == grandchild &&
              WIFEXITED(gstatus) && WEXITSTATUS(gstatus) == 0;
        if (grandchild > 0 && !(WIFEXITED(gstatus) && WEXITSTATUS(gstatus) == 0))
            fprintf(stderr, "  grandchild: status %d\n", gstatus);
        _exit(ok ? 0 : 1);
    }
    while (waitpid(pid, &status, 0) < 0) {
    }
    t_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, __FILE__, __LINE__,
            "child (and its grandchild): %s %d (99: valgrind found errors or lost blocks)",
            WIFEXITED(status) ? "exit" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    cloudauth_session_free(s);
}

const struct test_case fork_tests[] = {
    {"prefork_after_blocking_use", test_fork_after_blocking_use},
    {"prefork_after_async_and_threaded_use", test_fork_after_async_and_threaded_use},
    {"prefork_in_a_child_of_fork", test_fork_in_a_child_of_fork},
    {NULL, NULL},
};
