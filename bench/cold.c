/*
 * Cold start: dlopen the library, make a session, get the first token over loopback.
 * Run once per fresh process by bench/run.sh; prints "R cold.<step>_ms <value>" lines.
 *
 *   cold /path/to/libcloudauth.so     (BENCH_BASE and BENCH_TOKEN as for bench.c)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cloudauth_config cloudauth_config;
typedef struct cloudauth_session cloudauth_session;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "cold: FAILED: dlsym %s: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    const char *base = getenv("BENCH_BASE"), *want = getenv("BENCH_TOKEN");
    if (argc != 2 || !base || !want) {
        fprintf(stderr, "usage: BENCH_BASE=... BENCH_TOKEN=... %s libcloudauth.so\n", argv[0]);
        return 2;
    }
    char token_url[256];
    snprintf(token_url, sizeof token_url, "%s/connect/token", base);

    double t0 = now_ms();
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "cold: FAILED: dlopen: %s\n", dlerror());
        return 1;
    }
    cloudauth_config *(*config_new)(void) = (cloudauth_config * (*)(void)) sym(h, "cloudauth_config_new");
    int (*config_set)(cloudauth_config *, const char *, const char *) =
        (int (*)(cloudauth_config *, const char *, const char *))sym(h, "cloudauth_config_set");
    void (*config_free)(cloudauth_config *) = (void (*)(cloudauth_config *))sym(h, "cloudauth_config_free");
    int (*session_new)(const cloudauth_config *, cloudauth_session **) =
        (int (*)(const cloudauth_config *, cloudauth_session **))sym(h, "cloudauth_session_new");
    int (*session_token)(cloudauth_session *, char *, size_t, size_t *) =
        (int (*)(cloudauth_session *, char *, size_t, size_t *))sym(h, "cloudauth_session_token");
    void (*session_free)(cloudauth_session *) = (void (*)(cloudauth_session *))sym(h, "cloudauth_session_free");
    const char *(*last_error)(void) = (const char *(*)(void))sym(h, "cloudauth_last_error");
    double t1 = now_ms();

    cloudauth_config *cfg = config_new();
    int rc = config_set(cfg, "client_id", "bench-client") | config_set(cfg, "client_secret", "bench-secret") |
             config_set(cfg, "token_url", token_url) | config_set(cfg, "proxy", "none");
    cloudauth_session *s = NULL;
    rc |= session_new(cfg, &s);
    config_free(cfg);
    if (rc) {
        fprintf(stderr, "cold: FAILED: session setup: %s\n", last_error());
        return 1;
    }
    double t2 = now_ms();

    char buf[4096];
    size_t n = 0;
    rc = session_token(s, buf, sizeof buf, &n);
    double t3 = now_ms();
    if (rc) {
        fprintf(stderr, "cold: FAILED: first token: %s\n", last_error());
        return 1;
    }
    if (n != strlen(want) || memcmp(buf, want, n) != 0) {
        fprintf(stderr, "cold: FAILED: got another token than nginx's\n");
        return 1;
    }
    session_free(s);
    printf("R cold.dlopen_ms %.4f\nR cold.session_new_ms %.4f\nR cold.first_token_ms %.4f\nR cold.total_ms %.4f\n",
           t1 - t0, t2 - t1, t3 - t2, t3 - t0);
    return 0;
}
