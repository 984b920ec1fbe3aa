/*
 * The soak (tests/soak/run.sh, `make soak`): one session under everything at once for
 * SOAK_SECONDS. Blocking threads and async operations send GETs, POSTs and same-origin
 * redirects through tests/netfault/proxy.py --soak (resets, stalls and slow answers on one
 * request in ten) to the stand-in, which rotates tokens every few seconds, revokes some
 * (401s) and closes idle connections (stale ones). Every request carries a unique id n.
 *
 *   soak BASE_URL SECONDS OUT_FILE
 *
 * Checks here: every request started ends exactly once (a return or one completion), nothing
 * is lost or completed twice; RSS and open descriptors are flat. OUT_FILE gets one line per
 * request ("<n> <kind> <class>") for run.sh, which checks against what the server answered
 * that no request was acted on twice and every success was acted on once.
 */
#define _DEFAULT_SOURCE
#include <cloudauth.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCKING_THREADS 6
#define ASYNC_IN_FLIGHT 16
#define MAX_REQUESTS (4u << 20)
#define SAMPLE_EVERY_S 5

enum kind { GET, POST, REDIRECT, ASYNC_GET, ASYNC_POST, KINDS };
static const char *kind_name[KINDS] = {"get", "post", "redirect", "async_get", "async_post"};

static cloudauth_session *session;
static const char *base;
static atomic_uint next_id;
static atomic_uchar *outcomes;         /* how often request n ended: must be exactly 1 */
static unsigned char *kinds, *klasses; /* per request */
static atomic_int stop;
static atomic_uint in_flight;
static atomic_ulong by_class[4];
static unsigned long pause_us = 20000;

static const char *klass_name[4] = {"ok", "timeout", "network", "other"};

static int klass_of(cloudauth_result rc, int status)
{
    if (rc == CLOUDAUTH_OK)
        return status == 200 ? 0 : 3;
    if (rc == CLOUDAUTH_ERR_TIMEOUT)
        return 1;
    if (rc == CLOUDAUTH_ERR_NETWORK)
        return 2;
    return 3;
}

static void ended(unsigned n, int klass)
{
    klasses[n] = (unsigned char)klass;
    atomic_fetch_add(&outcomes[n], 1);
    atomic_fetch_add(&by_class[klass], 1);
}

/* The request for id n: path and body. One in ten carries fault=1 (the proxy may hit it). */
static enum kind plan(unsigned n, int async, char *path, size_t size, char *body, size_t *body_len)
{
    enum kind k = async ? (n % 3 == 0 ? ASYNC_POST : ASYNC_GET) : (enum kind)(n % 3);
    const char *fault = n % 10 == 7 ? "&fault=1" : "";
    *body_len = 0;
    switch (k) {
    case POST:
    case ASYNC_POST:
        snprintf(path, size, "/echo?n=%u%s", n, fault);
        *body_len = (size_t)snprintf(body, 256, "soak request %u", n);
        break;
    case REDIRECT:
        snprintf(path, size, "/redirect?to=%%2Fheaders%%3Fn%%3D%u%%26to%%3D1&code=302&n=%u%s", n, n,
                 fault);
        break;
    default:
        snprintf(path, size, "/headers?n=%u%s", n, fault);
    }
    return k;
}

static int body_ok(cloudauth_response *r, const char *body, size_t body_len)
{
    size_t len = 0;
    const uint8_t *b = cloudauth_response_body(r, &len);
    return body_len == 0 || (len == body_len && memcmp(b, body, len) == 0);
}

static void *blocking_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        unsigned n = atomic_fetch_add(&next_id, 1);
        char path[256], body[256];
        size_t body_len;
        cloudauth_response *r = NULL;
        cloudauth_result rc;
        enum kind k;
        int klass;
        if (n >= MAX_REQUESTS)
            break;
        k = plan(n, 0, path, sizeof path, body, &body_len);
        kinds[n] = (unsigned char)k;
        rc = cloudauth_session_request(session, k == POST ? "POST" : "GET", path, NULL, 0,
                                       (const uint8_t *)body, body_len, &r);
        klass = klass_of(rc, rc == CLOUDAUTH_OK ? cloudauth_response_status(r) : 0);
        if (klass == 0 && !body_ok(r, body, body_len))
            klass = 3;
        if (klass == 3)
            fprintf(stderr, "soak: %s %s: %s, HTTP %d: %s\n", k == POST ? "POST" : "GET", path,
                    cloudauth_result_name(rc), rc == CLOUDAUTH_OK ? cloudauth_response_status(r) : 0,
                    cloudauth_last_error());
        cloudauth_response_free(r);
        ended(n, klass);
        usleep(pause_us);
    }
    return NULL;
}

struct async_req {
    unsigned n;
    size_t body_len;
    char body[256];
};

static void on_done(void *user_data, cloudauth_result rc, cloudauth_response *r, const char *error)
{
    struct async_req *q = user_data;
    int klass = klass_of(rc, r ? cloudauth_response_status(r) : 0);
    if (klass == 0 && !body_ok(r, q->body, q->body_len))
        klass = 3;
    if (klass == 3)
        fprintf(stderr, "soak: async %u: %s, HTTP %d: %s\n", q->n, cloudauth_result_name(rc),
                r ? cloudauth_response_status(r) : 0, error);
    cloudauth_response_free(r);
    ended(q->n, klass);
    free(q);
    atomic_fetch_sub(&in_flight, 1);
}

static void *async_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        while (atomic_load(&in_flight) < ASYNC_IN_FLIGHT && !atomic_load(&stop)) {
            unsigned n = atomic_fetch_add(&next_id, 1);
            struct async_req *q;
            char path[256];
            enum kind k;
            if (n >= MAX_REQUESTS)
                return NULL;
            q = calloc(1, sizeof *q);
            q->n = n;
            k = plan(n, 1, path, sizeof path, q->body, &q->body_len);
            kinds[n] = (unsigned char)k;
            atomic_fetch_add(&in_flight, 1);
            if (cloudauth_session_request_async(session, k == ASYNC_POST ? "POST" : "GET", path,
                                                NULL, 0, (const uint8_t *)q->body, q->body_len,
                                                on_done, q, NULL) != CLOUDAUTH_OK) {
                ended(n, 3);
                free(q);
                atomic_fetch_sub(&in_flight, 1);
            }
            usleep(pause_us / 4);
        }
        usleep(pause_us);
    }
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory itself */
}

int main(int argc, char **argv)
{
    pthread_t threads[BLOCKING_THREADS + 1];
    cloudauth_config *cfg;
    char token_url[512];
    long seconds, samples, i, t;
    long *rss, *fds;
    unsigned total, lost = 0, twice = 0, n;
    int failed = 0;
    FILE *out;
    cloudauth_stats st;

    if (argc != 4) {
        fprintf(stderr, "usage: %s BASE_URL SECONDS OUT_FILE\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    base = argv[1];
    seconds = atol(argv[2]);
    if (getenv("SOAK_PAUSE_US"))
        pause_us = strtoul(getenv("SOAK_PAUSE_US"), NULL, 10);
    outcomes = calloc(MAX_REQUESTS, 1);
    kinds = calloc(MAX_REQUESTS, 1);
    klasses = calloc(MAX_REQUESTS, 1);
    /* Touched now, so that they do not count as growth later. */
    memset((void *)outcomes, 0, MAX_REQUESTS);
    memset(kinds, 0, MAX_REQUESTS);
    memset(klasses, 0, MAX_REQUESTS);

    cfg = cloudauth_config_new();
    snprintf(token_url, sizeof token_url, "%s/connect/token", base);
    if (cloudauth_config_set(cfg, "client_id", "demo-client") ||
        cloudauth_config_set(cfg, "client_secret", "demo-secret") ||
        cloudauth_config_set(cfg, "token_url", token_url) ||
        cloudauth_config_set(cfg, "base_url", base) ||
        cloudauth_config_set(cfg, "refresh_skew_s", "5") ||
        cloudauth_config_set(cfg, "timeout_ms", "1500") ||
        cloudauth_config_set(cfg, "connect_timeout_ms", "1000") ||
        cloudauth_session_new(cfg, &session)) {
        fprintf(stderr, "soak: setup: %s\n", cloudauth_last_error());
        return 2;
    }
    cloudauth_config_free(cfg);

    for (i = 0; i < BLOCKING_THREADS; i++)
        pthread_create(&threads[i], NULL, blocking_thread, NULL);
    pthread_create(&threads[BLOCKING_THREADS], NULL, async_thread, NULL);

    samples = seconds / SAMPLE_EVERY_S + 1;
    rss = calloc((size_t)samples + 1, sizeof *rss);
    fds = calloc((size_t)samples + 1, sizeof *fds);
    printf("soak: %ld s, %d blocking threads + up to %d async operations\n", seconds,
           BLOCKING_THREADS, ASYNC_IN_FLIGHT);
    for (t = 0, i = 0; t < seconds; t++) {
        sleep(1);
        if ((t + 1) % SAMPLE_EVERY_S == 0 && i < samples) {
            rss[i] = rss_kb();
            fds[i] = open_fds();
            if ((t + 1) % 60 == 0 || seconds < 60)
                printf("soak: %3ld s: %u requests, rss %ld kB, %ld fds\n", t + 1,
                       atomic_load(&next_id), rss[i], fds[i]);
            i++;
        }
    }
    samples = i;
    atomic_store(&stop, 1);
    for (i = 0; i <= BLOCKING_THREADS; i++)
        pthread_join(threads[i], NULL);
    for (t = 0; atomic_load(&in_flight) > 0 && t < 1000; t++)
        usleep(10000); /* bounded: 10 s */

    total = atomic_load(&next_id);
    if (total > MAX_REQUESTS)
        total = MAX_REQUESTS;
    out = fopen(argv[3], "w");
    for (n = 0; n < total; n++) {
        unsigned c = atomic_load(&outcomes[n]);
        if (c == 0)
            continue;
        if (c > 1)
            twice++;
        fprintf(out, "%u %s %s\n", n, kind_name[kinds[n]], klass_name[klasses[n]]);
    }
    fclose(out);
    memset(&st, 0, sizeof st);
    cloudauth_session_stats(session, &st, sizeof st);
    out = fopen(argv[3], "a");
    fprintf(out, "# resends %llu %llu\n", (unsigned long long)st.connection_resends,
            (unsigned long long)st.unauthorized_resends);
    fclose(out);
    /* Every id below `total` was sent (a thread takes an id only to send it): one that never
     * ended is lost. */
    for (n = 0; n < total; n++)
        if (atomic_load(&outcomes[n]) == 0)
            lost++;

    printf("soak: %u requests: %lu ok, %lu timeout, %lu network, %lu other\n", total,
           atomic_load(&by_class[0]), atomic_load(&by_class[1]), atomic_load(&by_class[2]),
           atomic_load(&by_class[3]));
    printf("soak: client stats: %llu token requests (%llu failed), %llu background refreshes, "
           "%llu API requests, %llu resent after 401, %llu connection resends\n",
           (unsigned long long)st.token_requests, (unsigned long long)st.token_failures,
           (unsigned long long)st.background_refreshes, (unsigned long long)st.api_requests,
           (unsigned long long)st.unauthorized_resends, (unsigned long long)st.connection_resends);
    printf("soak: requests that never ended: %u, ended twice: %u\n", lost, twice);
    if (lost || twice)
        failed = 1;
    if (atomic_load(&by_class[3]) > 0) {
        printf("soak: FAIL: %lu requests ended in an unexpected way (wrong status or body, other "
               "error)\n", atomic_load(&by_class[3]));
        failed = 1;
    }
    if (samples >= 8) {
        /* Flat: the last quarter's peak against the second quarter's (after warm-up). */
        long q = samples / 4, rss_mid = 0, rss_end = 0, fd_mid = 0, fd_end = 0;
        for (i = q; i < 2 * q; i++) {
            rss_mid = rss[i] > rss_mid ? rss[i] : rss_mid;
            fd_mid = fds[i] > fd_mid ? fds[i] : fd_mid;
        }
        for (i = samples - q; i < samples; i++) {
            rss_end = rss[i] > rss_end ? rss[i] : rss_end;
            fd_end = fds[i] > fd_end ? fds[i] : fd_end;
        }
        printf("soak: rss first sample %ld kB, 2nd-quarter peak %ld kB, last-quarter peak %ld kB "
               "(%+.1f%%); fds first %ld, 2nd-quarter peak %ld, last-quarter peak %ld\n",
               rss[0], rss_mid, rss_end, 100.0 * (rss_end - rss_mid) / (double)rss_mid, fds[0],
               fd_mid, fd_end);
        if (rss_end > rss_mid + rss_mid / 10 + 2048) {
            printf("soak: FAIL: RSS grew by more than 10%% + 2 MB\n");
            failed = 1;
        }
        if (fd_end > fd_mid + 8) {
            printf("soak: FAIL: open descriptors grew by more than 8\n");
            failed = 1;
        }
    } else {
        printf("soak: run shorter than %d s: RSS and descriptors not judged\n", 8 * SAMPLE_EVERY_S);
    }
    cloudauth_session_free(session);
    return failed;
}
