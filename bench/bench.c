/*
 * cloudauth benchmarks (C side). Run by bench/run.sh against a local nginx; see bench/README.md.
 *
 *   bench check | token | seq | sequnpinned | floor | bodies | bigdown | threads | herd | rss | newthread | async | refresh
 *   bench loop-token|loop-floor THREADS N | loop-get [THREADS] N | loop-curl [THREADS] N  (profile.sh)
 *   bench loop-raw [1] N  (callgrind.sh: the raw-socket floor's GETs)
 *   bench loop-driven|loop-multi INFLIGHT N  (callgrind.sh: async GETs, caller-driven queue / curl multi)
 *
 * Settings come from the environment (run.sh sets them):
 *   BENCH_BASE       http://127.0.0.1:<port>
 *   BENCH_TOKEN      the token nginx hands out and checks
 *   BENCH_TOKEN_LOG  nginx's access log of /connect/token only (herd counts its lines)
 *   BENCH_QUICK=1    fewer rounds and iterations (a smoke run)
 *   BENCH_STANDIN    http://127.0.0.1:<port> of tests/standin/server.py with a slow token
 *                    endpoint and short tokens (refresh only; run.sh sets its knobs)
 *   BENCH_TOKEN_LIFETIME_S  the stand-in's token_expires_in (refresh only)
 *
 * Every result is one line "R <key> <value>" on stdout, for bench/report.py; progress goes to
 * stderr. Every HTTP exchange is checked (status 200 and the exact body): any other outcome
 * aborts the run with a message, so a bench never silently measures 401s.
 */
#define _GNU_SOURCE
#include <cloudauth.h>
#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PING_JSON "{\"ok\":true}"
#define PING_BODY PING_JSON "\n"
#define MAX_THREADS 64

static const char *base;     /* http://127.0.0.1:PORT */
static const char *token;    /* the expected token */
static size_t token_len;
static char ping_url[256];
static char token_url[256];
static char auth_header[4096];
static int quick;

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) of the calling thread. */
static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (every thread), in microseconds. */
static double cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double tmp[64];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* Prints the rounds (for the record) and returns their median. */
static double report(const char *key, const double *v, int n) {
    printf("R %s.rounds", key);
    for (int i = 0; i < n; i++) printf("%s%.6g", i ? "," : " ", v[i]);
    printf("\n");
    double m = median(v, n);
    printf("R %s %.6g\n", key, m);
    fflush(stdout);
    return m;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) die("environment variable %s is not set (run bench/run.sh)", name);
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* cloudauth                                                                                 */

static void ca_check(cloudauth_result rc, const char *what) {
    if (rc != CLOUDAUTH_OK)
        die("%s: %s: %s", what, cloudauth_result_name(rc), cloudauth_last_error());
}

static cloudauth_session *ca_session(void) {
    cloudauth_config *cfg = cloudauth_config_new();
    ca_check(cloudauth_config_set(cfg, "client_id", "bench-client"), "config_set client_id");
    ca_check(cloudauth_config_set(cfg, "client_secret", "bench-secret"), "config_set client_secret");
    ca_check(cloudauth_config_set(cfg, "token_url", token_url), "config_set token_url");
    ca_check(cloudauth_config_set(cfg, "base_url", base), "config_set base_url");
    ca_check(cloudauth_config_set(cfg, "proxy", "none"), "config_set proxy");
    cloudauth_session *s = NULL;
    ca_check(cloudauth_session_new(cfg, &s), "session_new");
    cloudauth_config_free(cfg);
    return s;
}

/* A session like ca_session's with extra keys: NULL-terminated key, value pairs. */
static cloudauth_session *ca_session_with(const char *const *kv) {
    cloudauth_config *cfg = cloudauth_config_new();
    ca_check(cloudauth_config_set(cfg, "client_id", "bench-client"), "config_set client_id");
    ca_check(cloudauth_config_set(cfg, "client_secret", "bench-secret"), "config_set client_secret");
    ca_check(cloudauth_config_set(cfg, "token_url", token_url), "config_set token_url");
    ca_check(cloudauth_config_set(cfg, "base_url", base), "config_set base_url");
    ca_check(cloudauth_config_set(cfg, "proxy", "none"), "config_set proxy");
    ca_check(cloudauth_config_set(cfg, "refresh_mode", "inline"), "config_set refresh_mode");
    for (; kv && kv[0]; kv += 2) ca_check(cloudauth_config_set(cfg, kv[0], kv[1]), kv[0]);
    cloudauth_session *s = NULL;
    ca_check(cloudauth_session_new(cfg, &s), "session_new");
    cloudauth_config_free(cfg);
    return s;
}

/* One authorized GET of /api/ping, checked. */
static void ca_get(cloudauth_session *s) {
    cloudauth_response *r = NULL;
    ca_check(cloudauth_session_request(s, "GET", ping_url, NULL, 0, NULL, 0, &r), "session_request");
    uint16_t status = cloudauth_response_status(r);
    size_t len = 0;
    const uint8_t *body = cloudauth_response_body(r, &len);
    if (status != 200 || len != strlen(PING_BODY) || memcmp(body, PING_BODY, len) != 0)
        die("cloudauth GET %s: status %u, %zu body bytes (want 200 and the %zu bytes of " PING_JSON ")",
            ping_url, status, len, strlen(PING_BODY));
    cloudauth_response_free(r);
}

/* One cached-token read, checked cheaply (length and last byte). */
static inline void ca_token(cloudauth_session *s, char *buf, size_t cap) {
    size_t n = 0;
    cloudauth_result rc = cloudauth_session_token(s, buf, cap, &n);
    if (__builtin_expect(rc != CLOUDAUTH_OK || n != token_len || buf[n - 1] != token[n - 1], 0)) {
        ca_check(rc, "session_token");
        die("session_token returned a token of length %zu (want %zu)", n, token_len);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* libcurl: one reused easy handle per thread, the same Bearer header, body into memory.     */

typedef struct {
    CURL *h;
    struct curl_slist *headers;
    char body[4096];
    size_t len;
    int overflow;
} curl_client;

static size_t curl_write(char *data, size_t size, size_t n, void *user) {
    curl_client *c = user;
    size_t bytes = size * n;
    if (c->len + bytes > sizeof c->body) {
        c->overflow = 1;
        return bytes;
    }
    memcpy(c->body + c->len, data, bytes);
    c->len += bytes;
    return bytes;
}


/* ---------------------------------------------------------------------------------------- */
/* The physical floor of a kept-alive GET: a prepared request written with one send(), the   */
/* answer read with blocking recv() and parsed no further than the status, the end of the    */
/* head and Content-Length. The same request line and headers as cloudauth sends.            */

typedef struct {
    int fd;
    size_t req_len;
    char req[2048];
    char buf[16384];
} raw_client;

static void raw_open(raw_client *c) {
    const char *hostport = base + strlen("http://");
    int port = atoi(strchr(hostport, ':') + 1);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) die("raw connect: %s", strerror(errno));
    int n = snprintf(c->req, sizeof c->req,
                     "GET /api/ping HTTP/1.1\r\nauthorization: Bearer %s\r\naccept: */*\r\n"
                     "user-agent: cloudauth/0.1.0\r\nhost: %s\r\n\r\n", token, hostport);
    if (n <= 0 || (size_t)n >= sizeof c->req) die("raw request too long");
    c->req_len = (size_t)n;
}

static void raw_get(raw_client *c) {
    for (size_t sent = 0; sent < c->req_len;) {
        ssize_t k = send(c->fd, c->req + sent, c->req_len - sent, 0);
        if (k <= 0) die("raw send: %s", strerror(errno));
        sent += (size_t)k;
    }
    size_t have = 0, need = 0;
    for (;;) {
        ssize_t k = recv(c->fd, c->buf + have, sizeof c->buf - have, 0);
        if (k <= 0) die("raw recv: %s", k ? strerror(errno) : "closed");
        have += (size_t)k;
        if (!need) {
            char *end = memmem(c->buf, have, "\r\n\r\n", 4);
            if (!end) continue;
            char *cl = memmem(c->buf, (size_t)(end - c->buf), "Content-Length: ", 16);
            if (memcmp(c->buf, "HTTP/1.1 200", 12) != 0 || !cl) die("raw GET: not a 200 with Content-Length");
            need = (size_t)(end + 4 - c->buf) + (size_t)atoi(cl + 16);
        }
        if (have >= need) break;
    }
    if (have != need || memcmp(c->buf + need - strlen(PING_BODY), PING_BODY, strlen(PING_BODY)) != 0)
        die("raw GET: unexpected body");
}

static void raw_close(raw_client *c) { close(c->fd); }

static void curl_open(curl_client *c, const char *auth) {
    memset(c, 0, sizeof *c);
    c->h = curl_easy_init();
    if (!c->h) die("curl_easy_init");
    c->headers = curl_slist_append(NULL, auth);
    curl_easy_setopt(c->h, CURLOPT_URL, ping_url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, curl_write);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
    /* cloudauth sends a User-Agent (cloudauth/<version>); so does curl, for requests of the
       same shape and size. */
    static char agent[64];
    if (!agent[0]) snprintf(agent, sizeof agent, "libcurl/%s", curl_version_info(CURLVERSION_NOW)->version);
    curl_easy_setopt(c->h, CURLOPT_USERAGENT, agent);
}

static long curl_get_status(curl_client *c) {
    c->len = 0;
    c->overflow = 0;
    CURLcode rc = curl_easy_perform(c->h);
    if (rc != CURLE_OK) die("curl GET %s: %s", ping_url, curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static void curl_get(curl_client *c) {
    long status = curl_get_status(c);
    if (status != 200 || c->overflow || c->len != strlen(PING_BODY) ||
        memcmp(c->body, PING_BODY, c->len) != 0)
        die("curl GET %s: status %ld, %zu body bytes (want 200 and the %zu bytes of " PING_JSON ")",
            ping_url, status, c->len, strlen(PING_BODY));
}

static void curl_close(curl_client *c) {
    curl_easy_cleanup(c->h);
    curl_slist_free_all(c->headers);
}

/* ---------------------------------------------------------------------------------------- */
/* The floor: what a hand-written C token cache does per call.                               */

typedef struct {
    pthread_mutex_t lock;
    struct timespec refresh_at;
    char value[4096];
    size_t len;
} floor_cache;

static floor_cache the_floor = {.lock = PTHREAD_MUTEX_INITIALIZER};

__attribute__((noinline)) static int floor_token(floor_cache *c, char *buf, size_t cap,
                                                 size_t *out_len) {
    pthread_mutex_lock(&c->lock);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int fresh = now.tv_sec < c->refresh_at.tv_sec ||
                (now.tv_sec == c->refresh_at.tv_sec && now.tv_nsec < c->refresh_at.tv_nsec);
    int rc = 1;
    if (fresh && cap > c->len) {
        memcpy(buf, c->value, c->len);
        buf[c->len] = 0;
        *out_len = c->len;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* The same work on a thread's own copy, without the lock: no shared cache line at all. Its
   2-thread scaling is what this machine gives a perfectly parallel loop at that moment. */
__attribute__((noinline)) static int private_token(const floor_cache *c, char *buf, size_t cap,
                                                   size_t *out_len) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int fresh = now.tv_sec < c->refresh_at.tv_sec ||
                (now.tv_sec == c->refresh_at.tv_sec && now.tv_nsec < c->refresh_at.tv_nsec);
    if (!fresh || cap <= c->len) return 1;
    memcpy(buf, c->value, c->len);
    buf[c->len] = 0;
    *out_len = c->len;
    return 0;
}

static inline void private_call(const floor_cache *c, char *buf, size_t cap) {
    size_t n = 0;
    if (__builtin_expect(private_token(c, buf, cap, &n) != 0 || n != token_len ||
                             buf[n - 1] != token[n - 1],
                         0))
        die("private token");
}

static inline void floor_call(char *buf, size_t cap) {
    size_t n = 0;
    if (__builtin_expect(floor_token(&the_floor, buf, cap, &n) != 0 || n != token_len ||
                             buf[n - 1] != token[n - 1],
                         0))
        die("floor token");
}

/* ---------------------------------------------------------------------------------------- */
/* A generic timed run: T threads, each does setup, waits, does its share, waits.            */

enum job { JOB_FLOOR_TOKEN, JOB_PRIVATE_TOKEN, JOB_CA_TOKEN, JOB_CA_GET, JOB_CURL_GET };

typedef struct {
    enum job job;
    int iterations;
    int warmup;
    cloudauth_session *session;
    pthread_barrier_t *start, *end;
    uint64_t cpu_ns; /* out: this thread's CPU time in the timed loop */
} worker_arg;

/* The CPU time of the last timed_run's threads in their timed loops, summed. */
static double last_run_cpu_ns;

static void *worker(void *p) {
    worker_arg *a = p;
    char buf[4096];
    curl_client c;
    if (a->job == JOB_CURL_GET) curl_open(&c, auth_header);
    floor_cache *mine = NULL;
    if (a->job == JOB_PRIVATE_TOKEN) {
        mine = aligned_alloc(64, sizeof *mine);
        if (!mine) die("out of memory");
        memcpy(mine, &the_floor, sizeof *mine);
    }
    /* Warm-up outside the timed window: opens this thread's connection (each cloudauth thread
       has its own runtime and keep-alive connection, each curl handle its own). */
    for (int i = 0; i < a->warmup; i++) {
        if (a->job == JOB_CA_GET) ca_get(a->session);
        else if (a->job == JOB_CURL_GET) curl_get(&c);
        else if (a->job == JOB_CA_TOKEN) ca_token(a->session, buf, sizeof buf);
        else if (a->job == JOB_PRIVATE_TOKEN) private_call(mine, buf, sizeof buf);
        else floor_call(buf, sizeof buf);
    }
    pthread_barrier_wait(a->start);
    uint64_t cpu0 = thread_cpu_ns();
    switch (a->job) {
    case JOB_FLOOR_TOKEN:
        for (int i = 0; i < a->iterations; i++) floor_call(buf, sizeof buf);
        break;
    case JOB_PRIVATE_TOKEN:
        for (int i = 0; i < a->iterations; i++) private_call(mine, buf, sizeof buf);
        break;
    case JOB_CA_TOKEN:
        for (int i = 0; i < a->iterations; i++) ca_token(a->session, buf, sizeof buf);
        break;
    case JOB_CA_GET:
        for (int i = 0; i < a->iterations; i++) ca_get(a->session);
        break;
    case JOB_CURL_GET:
        for (int i = 0; i < a->iterations; i++) curl_get(&c);
        break;
    }
    a->cpu_ns = thread_cpu_ns() - cpu0;
    pthread_barrier_wait(a->end);
    if (a->job == JOB_CURL_GET) curl_close(&c);
    free(mine);
    return NULL;
}

/* Returns the wall time in ns of `threads` threads doing `per_thread` operations each. */
static double timed_run(enum job job, int threads, int per_thread, int warmup,
                        cloudauth_session *s) {
    pthread_t tid[MAX_THREADS];
    worker_arg args[MAX_THREADS];
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&end, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        args[i] = (worker_arg){job, per_thread, warmup, s, &start, &end, 0};
        int rc = pthread_create(&tid[i], NULL, worker, &args[i]);
        if (rc) die("pthread_create: %s", strerror(rc));
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&end);
    uint64_t t1 = now_ns();
    last_run_cpu_ns = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        last_run_cpu_ns += (double)args[i].cpu_ns;
    }
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&end);
    return (double)(t1 - t0);
}

/* ---------------------------------------------------------------------------------------- */
/* Modes                                                                                     */

/* Sanity: nginx answers 200 to the right token, 401 to a wrong one, and cloudauth gets 200. */
static void mode_check(void) {
    curl_client c;
    curl_open(&c, "Authorization: Bearer not-the-token");
    long st = curl_get_status(&c);
    if (st != 401) die("nginx answered %ld to a wrong token (want 401): check bench/run.sh", st);
    curl_close(&c);
    curl_open(&c, auth_header);
    curl_get(&c);
    curl_close(&c);
    cloudauth_session *s = ca_session();
    ca_get(s);
    char buf[4096];
    size_t n = 0;
    ca_check(cloudauth_session_token(s, buf, sizeof buf, &n), "session_token");
    if (n != token_len || memcmp(buf, token, n) != 0) die("cloudauth got another token than nginx's");
    cloudauth_session_free(s);
    printf("R check.ok 1\n");
    fprintf(stderr, "check: nginx 401 on a wrong token, 200 on the right one; cloudauth gets 200\n");
}

/* 1. Cached token: ns/call vs the floor, one thread; throughput with two threads. */
static void mode_token(void) {
    int rounds = quick ? 3 : 11, n = quick ? 200000 : 2000000;
    cloudauth_session *s = ca_session();
    char buf[4096];
    ca_token(s, buf, sizeof buf); /* fetch once: every later call is a cache hit */
    memcpy(the_floor.value, token, token_len);
    the_floor.len = token_len;
    clock_gettime(CLOCK_MONOTONIC, &the_floor.refresh_at);
    the_floor.refresh_at.tv_sec += 3600;

    /* One thread: ns per call, floor and cloudauth interleaved, the order alternating. Two
       threads: calls per second of both together, for the floor (one shared mutex), cloudauth
       (one shared session) and the private loop (nothing shared), each against its own
       one-thread rate measured right before it. */
    double f1[32], c1[32], f2[32], c2[32], p2[32];
    for (int r = 0; r < rounds; r++) {
        if (r % 2 == 0) {
            f1[r] = timed_run(JOB_FLOOR_TOKEN, 1, n, 1000, s) / n;
            c1[r] = timed_run(JOB_CA_TOKEN, 1, n, 1000, s) / n;
        } else {
            c1[r] = timed_run(JOB_CA_TOKEN, 1, n, 1000, s) / n;
            f1[r] = timed_run(JOB_FLOOR_TOKEN, 1, n, 1000, s) / n;
        }
        f2[r] = 2.0 * n / timed_run(JOB_FLOOR_TOKEN, 2, n, 1000, s) * f1[r];
        c2[r] = 2.0 * n / timed_run(JOB_CA_TOKEN, 2, n, 1000, s) * c1[r];
        double p1 = timed_run(JOB_PRIVATE_TOKEN, 1, n, 1000, s) / n;
        p2[r] = 2.0 * n / timed_run(JOB_PRIVATE_TOKEN, 2, n, 1000, s) * p1;
        fprintf(stderr, "token round %d: floor %.1f ns, cloudauth %.1f ns; 2-thread scaling: floor %.2fx, cloudauth %.2fx, nothing shared %.2fx\n",
                r + 1, f1[r], c1[r], f2[r], c2[r], p2[r]);
    }
    printf("R token.len %zu\n", token_len);
    double mf1 = report("token.floor.ns", f1, rounds);
    double mc1 = report("token.cloudauth.ns", c1, rounds);
    printf("R token.ratio %.4g\n", mc1 / mf1);
    report("token.floor.2t_scaling", f2, rounds);
    report("token.cloudauth.2t_scaling", c2, rounds);
    report("token.private.2t_scaling", p2, rounds);
    /* cloudauth's scaling as a share of what the machine gave the same round's private loop. */
    double eff[32];
    for (int r = 0; r < rounds; r++) eff[r] = c2[r] / p2[r];
    report("token.cloudauth.2t_efficiency", eff, rounds);
    cloudauth_session_free(s);
}

/* 2. Sequential GETs over one kept-alive connection: cloudauth vs libcurl. */
/* `prefix` names the keys: "seq" (run.sh pins it to CPU 0) or "sequnpinned". */
static void mode_seq(const char *prefix) {
    int rounds = quick ? 3 : 7, n = quick ? 1000 : 5000;
    cloudauth_session *s = ca_session();
    curl_client c;
    curl_open(&c, auth_header);
    for (int i = 0; i < 200; i++) { ca_get(s); curl_get(&c); }
    double ca[32], cu[32], ca_cpu[32], cu_cpu[32];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int ca_turn = (r + k) % 2 == 0;
            uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
            if (ca_turn) for (int i = 0; i < n; i++) ca_get(s);
            else for (int i = 0; i < n; i++) curl_get(&c);
            double per_s = n / ((now_ns() - t0) / 1e9);
            double cpu_us = (thread_cpu_ns() - c0) / 1e3 / n;
            if (ca_turn) ca[r] = per_s, ca_cpu[r] = cpu_us;
            else cu[r] = per_s, cu_cpu[r] = cpu_us;
        }
        fprintf(stderr, "seq round %d: cloudauth %.0f req/s (%.1f us CPU/req), libcurl %.0f req/s (%.1f us CPU/req)\n",
                r + 1, ca[r], ca_cpu[r], cu[r], cu_cpu[r]);
    }
    char key[64];
    snprintf(key, sizeof key, "%s.cloudauth.per_s", prefix);
    double mca = report(key, ca, rounds);
    snprintf(key, sizeof key, "%s.curl.per_s", prefix);
    double mcu = report(key, cu, rounds);
    printf("R %s.ratio %.4g\n", prefix, mca / mcu);
    snprintf(key, sizeof key, "%s.cloudauth.cpu_us", prefix);
    report(key, ca_cpu, rounds);
    snprintf(key, sizeof key, "%s.curl.cpu_us", prefix);
    report(key, cu_cpu, rounds);
    printf("R %s.n %d\n", prefix, n);
    curl_close(&c);
    cloudauth_session_free(s);
}


/* 2b. Sequential GETs against the physical floor (raw_client above): the same nginx, one
   kept-alive connection each, pinned with nginx by run.sh; the calling thread's CPU per request. */
static void mode_floor(void) {
    int rounds = quick ? 3 : 7, n = quick ? 1000 : 5000;
    cloudauth_session *s = ca_session();
    raw_client c;
    raw_open(&c);
    for (int i = 0; i < 200; i++) { ca_get(s); raw_get(&c); }
    double ca[32], fl[32], ca_cpu[32], fl_cpu[32];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int ca_turn = (r + k) % 2 == 0;
            uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
            if (ca_turn) for (int i = 0; i < n; i++) ca_get(s);
            else for (int i = 0; i < n; i++) raw_get(&c);
            double per_s = n / ((now_ns() - t0) / 1e9);
            double cpu_us = (thread_cpu_ns() - c0) / 1e3 / n;
            if (ca_turn) ca[r] = per_s, ca_cpu[r] = cpu_us;
            else fl[r] = per_s, fl_cpu[r] = cpu_us;
        }
        fprintf(stderr, "floor round %d: cloudauth %.0f req/s (%.2f us CPU/req), raw floor %.0f req/s (%.2f us CPU/req)\n",
                r + 1, ca[r], ca_cpu[r], fl[r], fl_cpu[r]);
    }
    report("floor.cloudauth.per_s", ca, rounds);
    report("floor.raw.per_s", fl, rounds);
    report("floor.cloudauth.cpu_us", ca_cpu, rounds);
    report("floor.raw.cpu_us", fl_cpu, rounds);
    double ratio[32];
    for (int r = 0; r < rounds; r++) ratio[r] = ca_cpu[r] / fl_cpu[r];
    report("floor.cpu_ratio", ratio, rounds);
    raw_close(&c);
    cloudauth_session_free(s);
}


/* 2c. 16 MiB up and 16 MiB down over loopback nginx, one kept-alive connection each:
   cloudauth_session_request (the body from one buffer; the answer's body held in the response)
   vs libcurl as its best users stream: a read callback from memory and a write callback into
   a preallocated buffer, its largest buffers, no `Expect: 100-continue` round trip. Throughput
   and the process's CPU per MiB. Not pinned: nginx and the client each need a CPU. */
typedef struct {
    const uint8_t *src;
    size_t len, off;
    uint8_t *dst;
    size_t cap, got;
} blob_io;

static size_t blob_read(char *buf, size_t size, size_t n, void *user) {
    blob_io *b = user;
    size_t k = size * n < b->len - b->off ? size * n : b->len - b->off;
    memcpy(buf, b->src + b->off, k);
    b->off += k;
    return k;
}

static size_t blob_write(char *data, size_t size, size_t n, void *user) {
    blob_io *b = user;
    size_t k = size * n;
    if (b->got + k > b->cap) return 0; /* more than expected: fail the transfer */
    memcpy(b->dst + b->got, data, k);
    b->got += k;
    return k;
}

/* cloudauth_session_request_stream's write callback: the same copy as blob_write. */
static int ca_blob_write(void *user, const uint8_t *data, size_t len) {
    return blob_write((char *)data, 1, len, user) == len ? 0 : 1;
}

/* cloudauth_session_request_stream_body's read callback: the same copy as blob_read. */
static size_t ca_blob_read(void *user, uint8_t *buf, size_t cap) {
    return blob_read((char *)buf, 1, cap, user);
}

static int ca_blob_rewind(void *user) {
    ((blob_io *)user)->off = 0;
    return 0;
}

static size_t curl_discard(char *data, size_t size, size_t n, void *user) {
    (void)data, (void)user;
    return size * n;
}

static void mode_bodies(void) {
    int rounds = quick ? 3 : 7, reps = quick ? 2 : 4;
    size_t mib = (size_t)atoi(env("BENCH_BLOB_MIB")), len = mib << 20;
    char upload_url[300], blob_url[300];
    snprintf(upload_url, sizeof upload_url, "%s/api/upload", base);
    snprintf(blob_url, sizeof blob_url, "%s/api/blob", base);
    uint8_t *data = malloc(len), *down = malloc(len);
    if (!data || !down) die("out of memory");
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 2654435761u >> 24);
    cloudauth_session *s = ca_session();
    const char *ct[] = {"Content-Type: application/octet-stream"};
    struct curl_slist *up_h = curl_slist_append(NULL, auth_header);
    up_h = curl_slist_append(up_h, "Content-Type: application/octet-stream");
    up_h = curl_slist_append(up_h, "Expect:");
    struct curl_slist *down_h = curl_slist_append(NULL, auth_header);
    CURL *up = curl_easy_init(), *dn = curl_easy_init();
    blob_io io = {data, len, 0, down, len, 0};
    curl_easy_setopt(up, CURLOPT_URL, upload_url);
    curl_easy_setopt(up, CURLOPT_HTTPHEADER, up_h);
    curl_easy_setopt(up, CURLOPT_POST, 1L);
    curl_easy_setopt(up, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(up, CURLOPT_READFUNCTION, blob_read);
    curl_easy_setopt(up, CURLOPT_READDATA, &io);
    curl_easy_setopt(up, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    curl_easy_setopt(up, CURLOPT_WRITEFUNCTION, curl_discard);
    curl_easy_setopt(dn, CURLOPT_URL, blob_url);
    curl_easy_setopt(dn, CURLOPT_HTTPHEADER, down_h);
    curl_easy_setopt(dn, CURLOPT_WRITEFUNCTION, blob_write);
    curl_easy_setopt(dn, CURLOPT_WRITEDATA, &io);
    curl_easy_setopt(dn, CURLOPT_BUFFERSIZE, 512L << 10);
    for (CURL **h = (CURL *[]){up, dn, NULL}; *h; h++) {
        curl_easy_setopt(*h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(*h, CURLOPT_PROXY, "");
    }
    /* cloudauth up, curl up, cloudauth down (whole body in the response), curl down,
       cloudauth down streamed to a write callback (the same copy as libcurl's), cloudauth up
       from a read callback (the same copy as libcurl's) */
    double mibs[6][32], cpu[6][32];
    static const char *names[6] = {"up.cloudauth", "up.curl", "down.cloudauth", "down.curl", "down.stream",
                                   "up.stream"};
    cloudauth_body_sink sink = {NULL, ca_blob_write, &io};
    cloudauth_body_source source = {ca_blob_read, ca_blob_rewind, &io, (int64_t)len};
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up and the checks */
        for (int j = 0; j < 6; j++) {
            /* Who goes first alternates; in the warm-up libcurl does, so cloudauth's download
               can be checked against its bytes. */
            int w = j < 4 && (r < 0 || r % 2) ? j ^ 1 : j;
            uint64_t t0 = now_ns();
            double c0 = cpu_us();
            for (int i = 0; i < reps; i++) {
                long status = 0;
                if (w == 5) {
                    cloudauth_response *resp = NULL;
                    io.off = 0;
                    ca_check(cloudauth_session_request_stream_body(s, "POST", upload_url, ct, 1, &source, NULL, &resp),
                             "session_request_stream_body (bodies)");
                    status = cloudauth_response_status(resp);
                    if (io.off != len) die("cloudauth streamed upload: %zu bytes read", io.off);
                    cloudauth_response_free(resp);
                } else if (w == 4) {
                    cloudauth_response *resp = NULL;
                    if (r < 0) { /* keep libcurl's bytes to check against (the upload's from now) */
                        memcpy(data, down, len);
                        memset(down, 0, len);
                    }
                    io.got = 0;
                    ca_check(cloudauth_session_request_stream(s, "GET", blob_url, NULL, 0, NULL, 0, &sink, &resp),
                             "session_request_stream (bodies)");
                    status = cloudauth_response_status(resp);
                    if (io.got != len || (r < 0 && memcmp(data, down, len) != 0))
                        die("cloudauth streamed download: %zu bytes, or other bytes than libcurl's", io.got);
                    cloudauth_response_free(resp);
                } else if (w == 0 || w == 2) {
                    cloudauth_response *resp = NULL;
                    ca_check(cloudauth_session_request(s, w == 0 ? "POST" : "GET", w == 0 ? upload_url : blob_url,
                                                       w == 0 ? ct : NULL, w == 0 ? 1 : 0, w == 0 ? data : NULL,
                                                       w == 0 ? len : 0, &resp), "session_request (bodies)");
                    status = cloudauth_response_status(resp);
                    size_t got = 0;
                    const uint8_t *body = cloudauth_response_body(resp, &got);
                    if (w == 2 && (got != len || (r < 0 && memcmp(body, down, len) != 0)))
                        die("cloudauth download: %zu bytes, or other bytes than libcurl's", got);
                    cloudauth_response_free(resp);
                } else {
                    io.off = 0, io.got = 0;
                    CURL *h = w == 1 ? up : dn;
                    CURLcode rc = curl_easy_perform(h);
                    if (rc != CURLE_OK) die("libcurl %s: %s", names[w], curl_easy_strerror(rc));
                    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
                    if (w == 3 && io.got != len) die("libcurl download: %zu bytes", io.got);
                }
                if (status != 200) die("%s: status %ld", names[w], status);
            }
            if (r >= 0) {
                double secs = (now_ns() - t0) / 1e9;
                mibs[w][r] = (double)mib * reps / secs;
                cpu[w][r] = (cpu_us() - c0) / ((double)mib * reps);
            }
        }
        if (r >= 0)
            fprintf(stderr, "bodies round %d: up %.0f (streamed %.0f) vs %.0f MiB/s (%.0f (%.0f) vs %.0f us CPU/MiB), "
                            "down %.0f (streamed %.0f) vs %.0f MiB/s (%.0f (%.0f) vs %.0f us CPU/MiB) (cloudauth vs libcurl)\n",
                    r + 1, mibs[0][r], mibs[5][r], mibs[1][r], cpu[0][r], cpu[5][r], cpu[1][r], mibs[2][r], mibs[4][r],
                    mibs[3][r], cpu[2][r], cpu[4][r], cpu[3][r]);
    }
    char key[64];
    for (int w = 0; w < 6; w++) {
        snprintf(key, sizeof key, "bodies.%s.mib_s", names[w]);
        report(key, mibs[w], rounds);
        snprintf(key, sizeof key, "bodies.%s.cpu_us_per_mib", names[w]);
        report(key, cpu[w], rounds);
    }
    printf("R bodies.mib %zu\n", mib);
    curl_easy_cleanup(up);
    curl_easy_cleanup(dn);
    curl_slist_free_all(up_h);
    curl_slist_free_all(down_h);
    cloudauth_session_free(s);
    free(data);
    free(down);
}


/* The process's peak RSS (VmHWM), KiB. */
static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (!f) die("cannot read /proc/self/status");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static int count_write(void *user, const uint8_t *data, size_t len) {
    size_t *n = user;
    *n += len;
    return data[len - 1] == 0 ? 0 : 1; /* the sparse file is all zeros */
}

/* 6. A 1 GiB download streamed to a write callback (nginx's sparse /api/big): the growth of
   the process's peak RSS across it, after a first streamed request warmed everything up. */
static void mode_bigdown(void) {
    const char *kv[] = {"max_response_bytes", "1073741824", "timeout_ms", "600000", NULL};
    cloudauth_session *s = ca_session_with(kv);
    char url[300];
    snprintf(url, sizeof url, "%s/api/big", base);
    size_t n = 0;
    cloudauth_body_sink sink = {NULL, count_write, &n};
    cloudauth_response *r = NULL;
    ca_get(s);
    cloudauth_body_sink warm = {NULL, ca_blob_write, &(blob_io){NULL, 0, 0, (uint8_t[64]){0}, 64, 0}};
    ca_check(cloudauth_session_request_stream(s, "GET", ping_url, NULL, 0, NULL, 0, &warm, &r), "warm-up");
    cloudauth_response_free(r);
    long before = peak_rss_kib();
    uint64_t t0 = now_ns();
    double c0 = cpu_us();
    n = 0;
    ca_check(cloudauth_session_request_stream(s, "GET", url, NULL, 0, NULL, 0, &sink, &r), "1 GiB streamed");
    double secs = (now_ns() - t0) / 1e9, cpu = cpu_us() - c0;
    if (cloudauth_response_status(r) != 200 || n != (size_t)1 << 30)
        die("1 GiB streamed: status %u, %zu bytes", cloudauth_response_status(r), n);
    cloudauth_response_free(r);
    long after = peak_rss_kib();
    fprintf(stderr, "bigdown: 1 GiB in %.2f s (%.0f MiB/s, %.0f us CPU/MiB); peak RSS %ld -> %ld KiB\n", secs,
            1024 / secs, cpu / 1024, before, after);
    printf("R bigdown.peak_before_kib %ld\nR bigdown.peak_after_kib %ld\nR bigdown.mib_s %.4g\nR bigdown.cpu_us_per_mib %.4g\n",
           before, after, 1024 / secs, cpu / 1024);
    cloudauth_session_free(s);
}

/* 3. Concurrent requests: 1, 2, 4, 8 threads; one shared session vs one curl handle each. */
static void mode_threads(void) {
    static const int counts[] = {1, 2, 4, 8};
    int rounds = quick ? 2 : 5, total = quick ? 1600 : 4000;
    cloudauth_session *s = ca_session();
    ca_get(s);
    double ca[4][32], cu[4][32], ca_cpu[4][32], cu_cpu[4][32];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 4; k++) {
            int t = counts[k], per = total / t;
            for (int j = 0; j < 2; j++) {
                int ca_turn = (r + j) % 2 == 0;
                double ns = timed_run(ca_turn ? JOB_CA_GET : JOB_CURL_GET, t, per, 20, s);
                double per_s = (double)per * t / (ns / 1e9);
                /* The client threads' CPU per request: what a busy machine moves least. */
                double cpu_us = last_run_cpu_ns / 1e3 / ((double)per * t);
                if (ca_turn) ca[k][r] = per_s, ca_cpu[k][r] = cpu_us;
                else cu[k][r] = per_s, cu_cpu[k][r] = cpu_us;
            }
            fprintf(stderr, "threads round %d, %d thread(s): cloudauth %.0f req/s (%.1f us CPU/req), libcurl %.0f req/s (%.1f us CPU/req)\n",
                    r + 1, t, ca[k][r], ca_cpu[k][r], cu[k][r], cu_cpu[k][r]);
        }
    }
    for (int k = 0; k < 4; k++) {
        char key[64];
        snprintf(key, sizeof key, "threads.%d.cloudauth.per_s", counts[k]);
        double a = report(key, ca[k], rounds);
        snprintf(key, sizeof key, "threads.%d.curl.per_s", counts[k]);
        double b = report(key, cu[k], rounds);
        printf("R threads.%d.ratio %.4g\n", counts[k], a / b);
        snprintf(key, sizeof key, "threads.%d.cloudauth.cpu_us", counts[k]);
        report(key, ca_cpu[k], rounds);
        snprintf(key, sizeof key, "threads.%d.curl.cpu_us", counts[k]);
        report(key, cu_cpu[k], rounds);
    }
    cloudauth_session_free(s);
}

/* 5. Thundering herd: 64 threads ask for a token the session does not have. */
static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open %s: %s", path, strerror(errno));
    long n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

typedef struct {
    cloudauth_session *s;
    pthread_barrier_t *start;
    double wait_us;
} herd_arg;

static void *herd_worker(void *p) {
    herd_arg *a = p;
    char buf[4096];
    size_t n = 0;
    pthread_barrier_wait(a->start);
    uint64_t t0 = now_ns();
    cloudauth_result rc = cloudauth_session_token(a->s, buf, sizeof buf, &n);
    a->wait_us = (now_ns() - t0) / 1e3;
    ca_check(rc, "session_token (herd)");
    if (n != token_len || memcmp(buf, token, n) != 0) die("herd: wrong token");
    return NULL;
}

static void mode_herd(void) {
    const char *log = env("BENCH_TOKEN_LOG");
    enum { T = 64 };
    int rounds = quick ? 3 : 9;
    cloudauth_session *s = ca_session();
    char buf[4096];
    ca_token(s, buf, sizeof buf);
    static double waits[32 * T];
    double fetches[32];
    int nw = 0, bad = 0;
    for (int r = 0; r < rounds; r++) {
        ca_check(cloudauth_session_invalidate(s), "session_invalidate");
        usleep(20000);
        long before = count_lines(log);
        pthread_t tid[T];
        herd_arg args[T];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, T);
        for (int i = 0; i < T; i++) {
            args[i] = (herd_arg){s, &start, 0};
            int rc = pthread_create(&tid[i], NULL, herd_worker, &args[i]);
            if (rc) die("pthread_create: %s", strerror(rc));
        }
        for (int i = 0; i < T; i++) pthread_join(tid[i], NULL);
        pthread_barrier_destroy(&start);
        usleep(50000); /* let nginx finish writing its log line */
        long got = count_lines(log) - before;
        fetches[r] = (double)got;
        bad += got != 1;
        for (int i = 0; i < T; i++) waits[nw++] = args[i].wait_us;
        fprintf(stderr, "herd round %d: %d threads, %ld token request(s)\n", r + 1, T, got);
    }
    qsort(waits, (size_t)nw, sizeof(double), cmp_double);
    printf("R herd.threads %d\n", T);
    report("herd.token_requests", fetches, rounds);
    double maxf = 0;
    for (int r = 0; r < rounds; r++) maxf = fetches[r] > maxf ? fetches[r] : maxf;
    printf("R herd.token_requests_max %g\n", maxf);
    printf("R herd.wait_p50_us %.4g\n", waits[nw / 2]);
    printf("R herd.wait_p99_us %.4g\n", waits[(int)(nw * 0.99)]);
    printf("R herd.wait_max_us %.4g\n", waits[nw - 1]);
    cloudauth_session_free(s);
    if (bad) die("herd: %d round(s) caused more or fewer than 1 token request", bad);
}

/* 6. RSS of a process holding one session, after 10,000 and 50,000 requests. */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) die("/proc/self/status: %s", strerror(errno));
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void mode_rss(void) {
    int first = quick ? 2000 : 10000, second = quick ? 10000 : 50000;
    cloudauth_session *s = ca_session();
    printf("R rss.start_kib %ld\n", rss_kib());
    int i = 0;
    for (; i < first; i++) ca_get(s);
    long a = rss_kib();
    for (; i < second; i++) ca_get(s);
    long b = rss_kib();
    printf("R rss.first_n %d\nR rss.second_n %d\n", first, second);
    printf("R rss.first_kib %ld\nR rss.second_kib %ld\nR rss.growth_kib %ld\n", a, b, b - a);
    fprintf(stderr, "rss: %ld KiB after %d requests, %ld KiB after %d\n", a, first, b, second);
    cloudauth_session_free(s);
}

/* 6. The first request from a thread that has not used the session yet: it builds that
   thread's runtime and client and opens its connection. Threads one after another. */
typedef struct {
    cloudauth_session *s;
    double first_ms, second_ms;
} first_arg;

static void *first_worker(void *p) {
    first_arg *a = p;
    uint64_t t0 = now_ns();
    ca_get(a->s);
    uint64_t t1 = now_ns();
    ca_get(a->s);
    a->first_ms = (t1 - t0) / 1e6;
    a->second_ms = (now_ns() - t1) / 1e6;
    return NULL;
}

static void mode_newthread(void) {
    int n = quick ? 3 : 11;
    cloudauth_session *s = ca_session();
    ca_get(s);
    double first[32], second[32];
    for (int i = 0; i < n; i++) {
        first_arg a = {s, 0, 0};
        pthread_t t;
        int rc = pthread_create(&t, NULL, first_worker, &a);
        if (rc) die("pthread_create: %s", strerror(rc));
        pthread_join(t, NULL);
        first[i] = a.first_ms;
        second[i] = a.second_ms;
    }
    double f = report("newthread.first_ms", first, n);
    double g = report("newthread.second_ms", second, n);
    fprintf(stderr, "new thread: first request %.2f ms, second %.3f ms\n", f, g);
    cloudauth_session_free(s);
}

/* 7. Async: 64 requests in flight from one thread. cloudauth_session_request_async (the
   callbacks run on library threads and hand completions back to this thread, which starts the
   next requests) vs libcurl's multi interface, 64 easy handles driven by this thread. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int done;      /* completions not yet taken by the submitting thread */
    int waiting;   /* the submitting thread sleeps on cv */
} async_box;

static void async_done(void *user, cloudauth_result rc, cloudauth_response *r, const char *err) {
    async_box *box = user;
    if (rc != CLOUDAUTH_OK) die("session_request_async: %s: %s", cloudauth_result_name(rc), err);
    size_t len = 0;
    const uint8_t *body = cloudauth_response_body(r, &len);
    uint16_t status = cloudauth_response_status(r);
    if (status != 200 || len != strlen(PING_BODY) || memcmp(body, PING_BODY, len) != 0)
        die("cloudauth async GET %s: status %u, %zu body bytes", ping_url, status, len);
    cloudauth_response_free(r);
    pthread_mutex_lock(&box->lock);
    box->done++;
    if (box->waiting) pthread_cond_signal(&box->cv);
    pthread_mutex_unlock(&box->lock);
}

static void ca_async_start(cloudauth_session *s, async_box *box) {
    ca_check(cloudauth_session_request_async(s, "GET", ping_url, NULL, 0, NULL, 0, async_done, box, NULL),
             "session_request_async");
}

/* req/s of `total` requests, `inflight` at a time. */
static double ca_async_run(cloudauth_session *s, async_box *box, int total, int inflight) {
    int started = 0, finished = 0;
    uint64_t t0 = now_ns();
    for (; started < inflight && started < total; started++) ca_async_start(s, box);
    while (finished < total) {
        pthread_mutex_lock(&box->lock);
        while (box->done == 0) {
            box->waiting = 1;
            pthread_cond_wait(&box->cv, &box->lock);
            box->waiting = 0;
        }
        int got = box->done;
        box->done = 0;
        pthread_mutex_unlock(&box->lock);
        finished += got;
        for (int k = 0; k < got && started < total; k++, started++) ca_async_start(s, box);
    }
    return total / ((now_ns() - t0) / 1e9);
}

static double curl_multi_run(CURLM *m, curl_client *cs, int total, int inflight) {
    int started = 0, finished = 0, running = 0;
    uint64_t t0 = now_ns();
    for (; started < inflight && started < total; started++) {
        cs[started].len = 0;
        cs[started].overflow = 0;
        curl_multi_add_handle(m, cs[started].h);
    }
    while (finished < total) {
        CURLMcode mc = curl_multi_perform(m, &running);
        if (mc != CURLM_OK) die("curl_multi_perform: %s", curl_multi_strerror(mc));
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            curl_client *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            if (msg->data.result != CURLE_OK) die("curl multi GET: %s", curl_easy_strerror(msg->data.result));
            long status = 0;
            curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
            if (status != 200 || c->overflow || c->len != strlen(PING_BODY) || memcmp(c->body, PING_BODY, c->len) != 0)
                die("curl multi GET %s: status %ld, %zu body bytes", ping_url, status, c->len);
            finished++;
            curl_multi_remove_handle(m, c->h);
            if (started < total) {
                c->len = 0;
                c->overflow = 0;
                curl_multi_add_handle(m, c->h);
                started++;
            }
        }
        if (finished < total) {
            mc = curl_multi_poll(m, NULL, 0, 1000, NULL);
            if (mc != CURLM_OK) die("curl_multi_poll: %s", curl_multi_strerror(mc));
        }
    }
    return total / ((now_ns() - t0) / 1e9);
}

/* The same with a caller-driven queue: the operations run inside cloudauth_queue_wait on this
   thread (as curl_multi_perform runs libcurl's), so no request crosses a thread. */
static void ca_driven_start(cloudauth_session *s, cloudauth_queue *q) {
    ca_check(cloudauth_session_request_queued(s, "GET", ping_url, NULL, 0, NULL, 0, q, 1, NULL),
             "session_request_queued");
}

static double ca_driven_run(cloudauth_session *s, cloudauth_queue *q, int total, int inflight) {
    int started = 0, finished = 0;
    uint64_t t0 = now_ns();
    for (; started < inflight && started < total; started++) ca_driven_start(s, q);
    while (finished < total) {
        cloudauth_completion *c = NULL;
        ca_check(cloudauth_queue_wait(q, 10000, &c), "queue_wait");
        if (c->result != CLOUDAUTH_OK) die("queued GET: %s: %s", cloudauth_result_name(c->result), c->error);
        size_t len = 0;
        const uint8_t *body = cloudauth_response_body(c->response, &len);
        uint16_t status = cloudauth_response_status(c->response);
        if (status != 200 || len != strlen(PING_BODY) || memcmp(body, PING_BODY, len) != 0)
            die("cloudauth queued GET %s: status %u, %zu body bytes", ping_url, status, len);
        cloudauth_response_free(c->response);
        cloudauth_completion_free(c);
        finished++;
        if (started < total) {
            ca_driven_start(s, q);
            started++;
        }
    }
    return total / ((now_ns() - t0) / 1e9);
}

/* CPU time of the whole process (every thread), µs. */
static double process_cpu_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* One level of requests in flight: library-thread callbacks, the caller-driven queue and libcurl
   multi, rounds interleaved (the order rotates), each with its process CPU per request. */
static void async_level(cloudauth_session *s, cloudauth_queue *q, async_box *box, int inflight,
                        int total, int rounds, int with_callbacks) {
    CURLM *m = curl_multi_init();
    if (!m) die("curl_multi_init");
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)inflight);
    curl_client *cs = calloc((size_t)inflight, sizeof *cs);
    if (!cs) die("out of memory");
    for (int i = 0; i < inflight; i++) {
        curl_open(&cs[i], auth_header);
        curl_easy_setopt(cs[i].h, CURLOPT_PRIVATE, &cs[i]);
    }
    /* Warm-up, untimed: each opens its connections. */
    if (with_callbacks) ca_async_run(s, box, 4 * inflight, inflight);
    ca_driven_run(s, q, 4 * inflight, inflight);
    curl_multi_run(m, cs, 4 * inflight, inflight);
    double ca[32], dr[32], cu[32], ca_cpu[32], dr_cpu[32], cu_cpu[32];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 3; k++) {
            int which = (r + k) % 3;
            double c0 = process_cpu_us();
            if (which == 0 && with_callbacks) {
                ca[r] = ca_async_run(s, box, total, inflight);
                ca_cpu[r] = (process_cpu_us() - c0) / total;
            } else if (which == 1) {
                dr[r] = ca_driven_run(s, q, total, inflight);
                dr_cpu[r] = (process_cpu_us() - c0) / total;
            } else if (which == 2) {
                cu[r] = curl_multi_run(m, cs, total, inflight);
                cu_cpu[r] = (process_cpu_us() - c0) / total;
            }
        }
        fprintf(stderr, "async round %d: %d in flight: caller-driven %.0f req/s, libcurl multi %.0f req/s",
                r + 1, inflight, dr[r], cu[r]);
        if (with_callbacks) fprintf(stderr, ", callbacks %.0f req/s", ca[r]);
        fprintf(stderr, "\n");
    }
    char key[96];
    if (with_callbacks) {
        /* The v1 figure: callbacks on library threads (the keys of earlier results). */
        report("async.cloudauth.per_s", ca, rounds);
        report("async.cloudauth.cpu_us", ca_cpu, rounds);
    }
    snprintf(key, sizeof key, "async.%d.driven.per_s", inflight);
    report(key, dr, rounds);
    snprintf(key, sizeof key, "async.%d.driven.cpu_us", inflight);
    report(key, dr_cpu, rounds);
    snprintf(key, sizeof key, "async.%d.curl.per_s", inflight);
    double b = report(key, cu, rounds);
    snprintf(key, sizeof key, "async.%d.curl.cpu_us", inflight);
    report(key, cu_cpu, rounds);
    if (with_callbacks) {
        printf("R async.curl.per_s %.6g\n", b);
        printf("R async.inflight %d\nR async.n %d\n", inflight, total);
    }
    for (int i = 0; i < inflight; i++) curl_close(&cs[i]);
    free(cs);
    curl_multi_cleanup(m);
}

/* loop-driven / loop-multi INFLIGHT N: N GETs, INFLIGHT at a time, after a warm-up (for
   bench/callgrind.sh and perf). */
static void mode_loop_async(const char *what, int inflight, int n) {
    cloudauth_session *s = ca_session();
    ca_get(s);
    if (!strcmp(what, "loop-driven")) {
        cloudauth_queue *q = cloudauth_queue_new_caller_driven();
        if (!q) die("queue_new_caller_driven: %s", cloudauth_last_error());
        ca_driven_run(s, q, 4 * inflight, inflight);
        ca_driven_run(s, q, n, inflight);
        cloudauth_queue_free(q);
    } else {
        CURLM *m = curl_multi_init();
        if (!m) die("curl_multi_init");
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)inflight);
        curl_client *cs = calloc((size_t)inflight, sizeof *cs);
        if (!cs) die("out of memory");
        for (int i = 0; i < inflight; i++) {
            curl_open(&cs[i], auth_header);
            curl_easy_setopt(cs[i].h, CURLOPT_PRIVATE, &cs[i]);
        }
        curl_multi_run(m, cs, 4 * inflight, inflight);
        curl_multi_run(m, cs, n, inflight);
        for (int i = 0; i < inflight; i++) curl_close(&cs[i]);
        free(cs);
        curl_multi_cleanup(m);
    }
    cloudauth_session_free(s);
}

static void mode_async(void) {
    int rounds = quick ? 2 : 7, total = quick ? 4000 : 20000;
    cloudauth_session *s = ca_session();
    ca_get(s);
    async_box box = {.lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    cloudauth_queue *q = cloudauth_queue_new_caller_driven();
    if (!q) die("queue_new_caller_driven: %s", cloudauth_last_error());
    const int levels[] = {8, 64, 256};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        async_level(s, q, &box, levels[i], total, rounds, levels[i] == 64);
    cloudauth_queue_free(q);
    cloudauth_session_free(s);
}

/* 8. cloudauth_session_token across refreshes: a stand-in token endpoint that answers in
   500 ms with short-lived tokens; one thread calls every CADENCE_NS for several lifetimes and
   times each call, in refresh_mode background and inline, each tick also timing the C floor
   (on a cached token that never expires) as the machine's noise baseline. */
#define CADENCE_NS 20000u

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    uint32_t *v;
    size_t n, cap;
} samples;

static void push(samples *s, uint64_t ns) {
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1 << 20;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (!s->v) die("out of memory");
    }
    s->v[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* p50, p99, max (ns) of a sample set; sorts it. */
static void percentiles(const char *key, samples *s) {
    qsort(s->v, s->n, sizeof *s->v, cmp_u32);
    printf("R %s.p50_ns %u\nR %s.p99_ns %u\nR %s.p999_ns %u\nR %s.max_ns %u\nR %s.calls %zu\n", key,
           s->v[s->n / 2], key, s->v[(size_t)(s->n * 0.99)], key, s->v[(size_t)(s->n * 0.999)], key,
           s->v[s->n - 1], key, s->n);
}

static cloudauth_session *standin_session(const char *mode) {
    const char *standin = env("BENCH_STANDIN");
    char url[256];
    snprintf(url, sizeof url, "%s/connect/token", standin);
    cloudauth_config *cfg = cloudauth_config_new();
    ca_check(cloudauth_config_set(cfg, "client_id", "demo-client"), "config_set client_id");
    ca_check(cloudauth_config_set(cfg, "client_secret", "demo-secret"), "config_set client_secret");
    ca_check(cloudauth_config_set(cfg, "token_url", url), "config_set token_url");
    ca_check(cloudauth_config_set(cfg, "proxy", "none"), "config_set proxy");
    ca_check(cloudauth_config_set(cfg, "refresh_mode", mode), "config_set refresh_mode");
    cloudauth_session *s = NULL;
    ca_check(cloudauth_session_new(cfg, &s), "session_new");
    cloudauth_config_free(cfg);
    return s;
}

/* Context switches of the calling thread so far: voluntary (it slept, e.g. on a lock or the
   network) and involuntary (the scheduler preempted it for another runnable thread). */
static void switches(long *vol, long *invol) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    *vol = ru.ru_nvcsw;
    *invol = ru.ru_nivcsw;
}

/* The calls of one series: all of them, and those during which the thread was not switched
   out (on a shared 2-CPU machine a preemption puts milliseconds into whichever call it hits). */
typedef struct {
    samples all, quiet;
    long slept, preempted;
} series;

/* Times one call, recording it in `out`; returns its result. */
#define TIMED(out, call)                                                       \
    ({                                                                         \
        long v0_, i0_, v1_, i1_;                                               \
        switches(&v0_, &i0_);                                                  \
        uint64_t t0_ = now_ns();                                               \
        __typeof__(call) r_ = (call);                                          \
        uint64_t t1_ = now_ns();                                               \
        switches(&v1_, &i1_);                                                  \
        push(&(out)->all, t1_ - t0_);                                          \
        if (v1_ != v0_) (out)->slept++;                                        \
        else if (i1_ != i0_) (out)->preempted++;                               \
        else push(&(out)->quiet, t1_ - t0_);                                   \
        r_;                                                                    \
    })

/* One mode for `seconds`; returns the token changes seen. */
static int refresh_run(const char *mode, double seconds, series *ca, series *fl, uint64_t *refreshes) {
    cloudauth_session *s = standin_session(mode);
    char buf[4096], prev[4096];
    size_t n = 0, prev_n = 0;
    ca_check(cloudauth_session_token(s, buf, sizeof buf, &n), "session_token (first)"); /* untimed */
    memcpy(the_floor.value, buf, n);
    the_floor.len = n;
    clock_gettime(CLOCK_MONOTONIC, &the_floor.refresh_at);
    the_floor.refresh_at.tv_sec += 3600;
    memcpy(prev, buf, n);
    prev_n = n;
    int changes = 0;
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9), next = now_ns();
    while (next < end) {
        while (now_ns() < next) { /* spin to the next tick */
        }
        next += CADENCE_NS;
        size_t fn = 0;
        if (TIMED(fl, floor_token(&the_floor, buf, sizeof buf, &fn)) != 0) die("floor token");
        ca_check(TIMED(ca, cloudauth_session_token(s, buf, sizeof buf, &n)), "session_token");
        if (n != prev_n || memcmp(buf, prev, n) != 0) {
            changes++;
            memcpy(prev, buf, n);
            prev_n = n;
        }
        uint64_t after = now_ns();
        if (after > next) next = after; /* a slow call does not cause a burst of catch-up calls */
    }
    cloudauth_stats st;
    ca_check(cloudauth_session_stats(s, &st, sizeof st), "session_stats");
    *refreshes = st.background_refreshes;
    cloudauth_session_free(s);
    return changes;
}

static void report_series(const char *key, series *s) {
    char k[128];
    snprintf(k, sizeof k, "%s.all", key);
    percentiles(k, &s->all);
    snprintf(k, sizeof k, "%s.quiet", key);
    percentiles(k, &s->quiet);
    printf("R %s.slept %ld\nR %s.preempted %ld\n", key, s->slept, key, s->preempted);
    free(s->all.v);
    free(s->quiet.v);
}

static void mode_refresh(void) {
    double lifetime = atof(env("BENCH_TOKEN_LIFETIME_S"));
    int rounds = quick ? 1 : 2, lifetimes = quick ? 2 : 3;
    double seconds = lifetime * lifetimes;
    series bg = {0}, in = {0}, flb = {0}, fli = {0};
    double bg_changes[8], in_changes[8], bg_refreshes[8];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int background = (r + k) % 2 == 0;
            uint64_t refreshes = 0;
            series *ca = background ? &bg : &in;
            long slept = ca->slept;
            int changes = refresh_run(background ? "background" : "inline", seconds, ca,
                                      background ? &flb : &fli, &refreshes);
            (background ? bg_changes : in_changes)[r] = changes;
            if (background) bg_refreshes[r] = (double)refreshes;
            fprintf(stderr, "refresh round %d, %s: %.0f s, %d new tokens seen, %ld calls slept\n", r + 1,
                    background ? "background" : "inline", seconds, changes, ca->slept - slept);
        }
    }
    printf("R refresh.lifetime_s %g\nR refresh.seconds %g\nR refresh.cadence_us %g\nR refresh.rounds %d\n",
           lifetime, seconds, CADENCE_NS / 1e3, rounds);
    report("refresh.background.new_tokens", bg_changes, rounds);
    report("refresh.inline.new_tokens", in_changes, rounds);
    report("refresh.background.background_refreshes", bg_refreshes, rounds);
    report_series("refresh.background", &bg);
    report_series("refresh.inline", &in);
    report_series("refresh.floor_bg", &flb);
    report_series("refresh.floor_inline", &fli);
    for (int r = 0; r < rounds; r++)
        if (bg_changes[r] < lifetimes - 1 || in_changes[r] < lifetimes - 1)
            die("refresh: the token did not rotate in every lifetime (round %d: %g / %g new tokens)", r + 1,
                bg_changes[r], in_changes[r]);
}

/* Profiling loops: just the hot path, N times, after a warm-up. */
static void mode_loop(const char *what, int threads, int n) {
    const char *dpop_kv[] = {"dpop", "true", NULL};
    int dpop = !strcmp(what, "loop-dpop"); /* a GET with a DPoP proof (callgrind.sh) */
    cloudauth_session *s = dpop ? ca_session_with(dpop_kv) : ca_session();
    char buf[4096];
    ca_token(s, buf, sizeof buf);
    if (!strcmp(what, "loop-floor")) { /* the floor of section 1, for bench/callgrind.sh */
        memcpy(the_floor.value, token, token_len);
        the_floor.len = token_len;
        clock_gettime(CLOCK_MONOTONIC, &the_floor.refresh_at);
        the_floor.refresh_at.tv_sec += 3600;
    }
    enum job job = !strcmp(what, "loop-token")   ? JOB_CA_TOKEN
                   : !strcmp(what, "loop-floor") ? JOB_FLOOR_TOKEN
                   : !strcmp(what, "loop-get") || dpop ? JOB_CA_GET
                                               : JOB_CURL_GET;
    double cpu0 = cpu_us();
    double ns = timed_run(job, threads, n, 200, s);
    double cpu = cpu_us() - cpu0;
    fprintf(stderr, "%s: %d thread(s) x %d: %.1f ns per call per thread, %.0f calls/s in all, "
                    "%.2f us of this process's CPU per call\n",
            what, threads, n, ns / n, (double)n * threads / (ns / 1e9), cpu / ((double)n * threads));
    cloudauth_session_free(s);
}

/* 9. Identity providers: a token fetch with private_key_jwt (ES256, RS256) against
   client_secret_post (the assertion's cost, once per token lifetime), and a DPoP request
   against a Bearer request over one kept-alive connection (the proof's cost, every request).
   nginx ignores the assertion and the proof: only the client's work differs. */
static void mode_idp(void) {
    int rounds = quick ? 3 : 7, fetches = quick ? 100 : 400, n = quick ? 1000 : 4000;
    const char *es = env("BENCH_ES256_KEY"), *rs = env("BENCH_RS256_KEY");
    const char *post_kv[] = {NULL};
    const char *es_kv[] = {"auth_method", "private_key_jwt", "client_key_file", es, NULL};
    const char *rs_kv[] = {"auth_method", "private_key_jwt", "client_key_file", rs, NULL};
    const char *dpop_kv[] = {"dpop", "true", NULL};
    cloudauth_session *fetch[3] = {ca_session_with(post_kv), ca_session_with(es_kv), ca_session_with(rs_kv)};
    cloudauth_session *bearer = ca_session_with(post_kv), *dpop = ca_session_with(dpop_kv);
    const char *fetch_name[3] = {"post", "pkjwt_es256", "pkjwt_rs256"};
    double f[3][32], b[32], d[32], bc[32], dc[32];
    char buf[4096];
    for (int k = 0; k < 3; k++) ca_token(fetch[k], buf, sizeof buf);
    for (int i = 0; i < 200; i++) { ca_get(bearer); ca_get(dpop); }
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < 3; j++) {
            int k = (r + j) % 3;
            uint64_t t0 = now_ns();
            for (int i = 0; i < fetches; i++) {
                ca_check(cloudauth_session_invalidate(fetch[k]), "invalidate");
                ca_token(fetch[k], buf, sizeof buf);
            }
            f[k][r] = (now_ns() - t0) / 1e3 / fetches;
        }
        for (int j = 0; j < 2; j++) {
            int dpop_turn = (r + j) % 2 == 0;
            uint64_t t0 = now_ns();
            double c0 = cpu_us();
            for (int i = 0; i < n; i++) ca_get(dpop_turn ? dpop : bearer);
            (dpop_turn ? d : b)[r] = (now_ns() - t0) / 1e3 / n;
            (dpop_turn ? dc : bc)[r] = (cpu_us() - c0) / n;
        }
        fprintf(stderr, "idp round %d: fetch post %.1f us, private_key_jwt ES256 %.1f us, RS256 %.1f us; "
                "GET Bearer %.1f us, DPoP %.1f us (+%.1f; client CPU %.1f vs %.1f us)\n",
                r + 1, f[0][r], f[1][r], f[2][r], b[r], d[r], d[r] - b[r], dc[r], bc[r]);
    }
    char key[64];
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof key, "idp.fetch.%s.us", fetch_name[k]);
        report(key, f[k], rounds);
    }
    double mb = report("idp.get.bearer.us", b, rounds), md = report("idp.get.dpop.us", d, rounds);
    double diff[32];
    for (int r = 0; r < rounds; r++) diff[r] = d[r] - b[r];
    report("idp.get.dpop_extra.us", diff, rounds);
    /* The client's own CPU per request (this process): what the proof costs the caller, free of
       nginx's share and of the scheduler's noise on a shared machine. */
    report("idp.get.bearer.cpu_us", bc, rounds);
    report("idp.get.dpop.cpu_us", dc, rounds);
    for (int r = 0; r < rounds; r++) diff[r] = dc[r] - bc[r];
    report("idp.get.dpop_extra.cpu_us", diff, rounds);
    printf("R idp.get.dpop_extra_of_medians.us %.4g\n", md - mb);
    for (int k = 0; k < 3; k++) cloudauth_session_free(fetch[k]);
    cloudauth_session_free(bearer);
    cloudauth_session_free(dpop);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s check|token|seq|threads|herd|rss|newthread|async|refresh|idp | loop-token THREADS N | loop-get [THREADS] N | loop-curl [THREADS] N\n", argv[0]);
        return 2;
    }
    base = env("BENCH_BASE");
    token = env("BENCH_TOKEN");
    token_len = strlen(token);
    if (token_len + 32 > sizeof auth_header) die("token too long");
    quick = getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "1") == 0;
    snprintf(ping_url, sizeof ping_url, "%s/api/ping", base);
    snprintf(token_url, sizeof token_url, "%s/connect/token", base);
    snprintf(auth_header, sizeof auth_header, "Authorization: Bearer %s", token);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) die("curl_global_init");

    const char *m = argv[1];
    if (!strcmp(m, "check")) mode_check();
    else if (!strcmp(m, "token")) mode_token();
    else if (!strcmp(m, "seq") || !strcmp(m, "sequnpinned")) mode_seq(m);
    else if (!strcmp(m, "floor")) mode_floor();
    else if (!strcmp(m, "bodies")) mode_bodies();
    else if (!strcmp(m, "bigdown")) mode_bigdown();
    else if (!strcmp(m, "loop-raw") && (argc == 3 || argc == 4)) { /* [1] N: one thread */
        raw_client c;
        raw_open(&c);
        for (int i = 0, n = atoi(argv[argc - 1]); i < 200 + n; i++) raw_get(&c);
        raw_close(&c);
    }
    else if (!strcmp(m, "threads")) mode_threads();
    else if (!strcmp(m, "herd")) mode_herd();
    else if (!strcmp(m, "rss")) mode_rss();
    else if (!strcmp(m, "newthread")) mode_newthread();
    else if (!strcmp(m, "async")) mode_async();
    else if (!strcmp(m, "refresh")) mode_refresh();
    else if (!strcmp(m, "idp")) mode_idp();
    else if ((!strcmp(m, "loop-token") || !strcmp(m, "loop-floor")) && argc == 4) mode_loop(m, atoi(argv[2]), atoi(argv[3]));
    else if ((!strcmp(m, "loop-get") || !strcmp(m, "loop-curl") || !strcmp(m, "loop-dpop")) && (argc == 3 || argc == 4))
        mode_loop(m, argc == 4 ? atoi(argv[2]) : 1, atoi(argv[argc - 1]));
    else if ((!strcmp(m, "loop-driven") || !strcmp(m, "loop-multi")) && argc == 4)
        mode_loop_async(m, atoi(argv[2]), atoi(argv[3]));
    else die("unknown mode %s", m);
    curl_global_cleanup();
    return 0;
}
