/*
 * Cold start: dlopen the library, make a session, get the first token over loopback.
 * Run once per fresh process by bench/run.sh; prints "R cold.<step>_ms <value>" lines.
 *
 *   cold /path/to/libcloudauth.so       (BENCH_BASE and BENCH_TOKEN as for bench.c)
 *   cold /path/to/libcloudauth.so tls   then the process's first https request (the trust
 *                                       store's first use, a full handshake) and a second
 *                                       session's first one (a handshake only); BENCH_HTTPS,
 *                                       BENCH_CA: nginx's https port and its CA
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
typedef struct cloudauth_response cloudauth_response;

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
    int tls = argc == 3 && strcmp(argv[2], "tls") == 0;
    if ((argc != 2 && !tls) || !base || !want) {
        fprintf(stderr, "usage: BENCH_BASE=... BENCH_TOKEN=... %s libcloudauth.so [tls]\n", argv[0]);
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
    if (tls) {
        /* Two sessions with the same settings, each making its first https connection: the
           first pays for the trust store (where the library loads it then) and a handshake. */
        const char *https = getenv("BENCH_HTTPS"), *ca = getenv("BENCH_CA");
        if (!https || !ca) {
            fprintf(stderr, "cold: FAILED: tls needs BENCH_HTTPS and BENCH_CA\n");
            return 2;
        }
        int (*request)(cloudauth_session *, const char *, const char *, const char *const *, size_t,
                       const uint8_t *, size_t, cloudauth_response **) =
            (int (*)(cloudauth_session *, const char *, const char *, const char *const *, size_t,
                     const uint8_t *, size_t, cloudauth_response **))sym(h, "cloudauth_session_request");
        uint16_t (*status)(const cloudauth_response *) =
            (uint16_t(*)(const cloudauth_response *))sym(h, "cloudauth_response_status");
        void (*response_free)(cloudauth_response *) = (void (*)(cloudauth_response *))sym(h, "cloudauth_response_free");
        char url[256];
        snprintf(url, sizeof url, "%s/api/ping", https);
        double ms[2][2];
        for (int k = 0; k < 2; k++) {
            cfg = config_new();
            rc = config_set(cfg, "client_id", "bench-client") | config_set(cfg, "client_secret", "bench-secret") |
                 config_set(cfg, "token_url", token_url) | config_set(cfg, "proxy", "none") |
                 config_set(cfg, "base_url", https) | config_set(cfg, "ca_file", ca);
            double a = now_ms();
            rc |= session_new(cfg, &s);
            double b = now_ms();
            config_free(cfg);
            if (rc || session_token(s, buf, sizeof buf, &n)) {
                fprintf(stderr, "cold: FAILED: tls session setup: %s\n", last_error());
                return 1;
            }
            cloudauth_response *r = NULL;
            double c = now_ms();
            rc = request(s, "GET", url, NULL, 0, NULL, 0, &r);
            double d = now_ms();
            if (rc || status(r) != 200) {
                fprintf(stderr, "cold: FAILED: https request: %s\n", rc ? last_error() : "status not 200");
                return 1;
            }
            response_free(r);
            session_free(s);
            ms[k][0] = b - a;
            ms[k][1] = d - c;
        }
        printf("R cold.tls.first.session_new_ms %.4f\nR cold.tls.first.request_ms %.4f\n"
               "R cold.tls.second.session_new_ms %.4f\nR cold.tls.second.request_ms %.4f\n",
               ms[0][0], ms[0][1], ms[1][0], ms[1][1]);
        return 0;
    }
    printf("R cold.dlopen_ms %.4f\nR cold.session_new_ms %.4f\nR cold.first_token_ms %.4f\nR cold.total_ms %.4f\n",
           t1 - t0, t2 - t1, t3 - t2, t3 - t0);
    return 0;
}
