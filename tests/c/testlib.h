/*
 * A tiny test framework for the cloudauth C tests, plus helpers to drive the local stand-in
 * server (tests/standin/server.py) without going through the library.
 *
 * - CHECK* macros record a failure with file:line and carry on; REQUIRE* also return from the
 *   test function (use them when the rest of the test would be meaningless).
 * - Each test starts from a reset stand-in (the runner calls ctl_reset() before it).
 * - The stand-in's address comes from STANDIN_PORT / STANDIN_URL (set by with_server.sh).
 * - CLOUDAUTH_TEST_TIME_FACTOR (default 1) multiplies the timeouts and delays of the timing
 *   tests, so that a slow run (valgrind) keeps the same assertions.
 */
#ifndef CLOUDAUTH_TESTLIB_H
#define CLOUDAUTH_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "cloudauth.h"

/* ---- the framework ---------------------------------------------------------------------- */

struct test_case {
    const char *name;
    void (*fn)(void);
};

/* Arrays of tests, one per topic file, each ended by {NULL, NULL}. */
extern const struct test_case api_tests[];
extern const struct test_case token_tests[];
extern const struct test_case request_tests[];
extern const struct test_case async_tests[];
extern const struct test_case queue_tests[];
extern const struct test_case driven_tests[];
extern const struct test_case lifecycle_tests[];
extern const struct test_case shared_tests[];
extern const struct test_case env_tests[];
extern const struct test_case fork_tests[];
extern const struct test_case stream_tests[];
extern const struct test_case upload_tests[];

/* Records one check; returns cond so that REQUIRE can bail out. Thread-safe. */
int t_check(int cond, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#define CHECK(cond) t_check(!!(cond), __FILE__, __LINE__, "CHECK(%s)", #cond)
#define REQUIRE(cond) do { if (!CHECK(cond)) return; } while (0)

/* Compares result codes and shows both names and the last error on failure. */
int t_check_rc(cloudauth_result got, cloudauth_result want, const char *expr, const char *file,
               int line);
#define CHECK_RC(expr, want) t_check_rc((expr), (want), #expr, __FILE__, __LINE__)
#define REQUIRE_RC(expr, want) do { if (!CHECK_RC(expr, want)) return; } while (0)

int t_check_long(long long got, long long want, const char *expr, const char *file, int line);
#define CHECK_EQ(expr, want) t_check_long((long long)(expr), (long long)(want), #expr, __FILE__, __LINE__)

int t_check_str(const char *got, const char *want, const char *expr, const char *file, int line);
#define CHECK_STR(expr, want) t_check_str((expr), (want), #expr, __FILE__, __LINE__)

/* haystack contains needle (or, for CHECK_LACKS, does not). NULL haystack fails both. */
int t_check_contains(const char *haystack, const char *needle, int want, const char *expr,
                     const char *file, int line);
#define CHECK_CONTAINS(h, n) t_check_contains((h), (n), 1, #h, __FILE__, __LINE__)
#define CHECK_LACKS(h, n) t_check_contains((h), (n), 0, #h, __FILE__, __LINE__)

/* The last error of this thread must be non-empty and contain `needle` (if not NULL). */
#define CHECK_ERROR_MENTIONS(needle) \
    t_check_contains(cloudauth_last_error(), (needle), 1, "cloudauth_last_error()", __FILE__, __LINE__)

/* ---- the environment -------------------------------------------------------------------- */

/* STANDIN_URL + path, in one of a few rotating static buffers (main thread only). */
const char *surl(const char *path);
int standin_port(void);
/* CLOUDAUTH_TEST_TIME_FACTOR, at least 1. */
long time_factor(void);
/* Sleeps ms milliseconds. */
void sleep_ms(long ms);
/* Decimal text of n, in one of a few rotating static buffers (main thread only). */
const char *num(long long n);

/* A config with the stand-in's credentials and URLs, then the extra key/value pairs
 * (NULL-terminated; they may override the defaults). A failing set is a check failure. */
cloudauth_config *open_config_at(const char *file, int line, const char *key, ...);
#define OPEN_CONFIG(...) open_config_at(__FILE__, __LINE__, __VA_ARGS__)
/* The same, then a session; NULL (and a check failure) if anything fails. */
cloudauth_session *open_session_at(const char *file, int line, const char *key, ...);
#define OPEN_SESSION(...) open_session_at(__FILE__, __LINE__, __VA_ARGS__)

/* Fetches the session's token into a malloc'd string (NULL and a check failure on error). */
char *get_token_at(cloudauth_session *s, const char *file, int line);
#define GET_TOKEN(s) get_token_at((s), __FILE__, __LINE__)

/* session_request without headers or body, checked to be CLOUDAUTH_OK; NULL on failure. */
cloudauth_response *get_at(cloudauth_session *s, const char *url, const char *file, int line);
#define GET(s, url) get_at((s), (url), __FILE__, __LINE__)

/* The response body as a malloc'd NUL-terminated string. */
char *body_text(const cloudauth_response *r);

/* ---- raw HTTP to the stand-in, for the /_control endpoints ------------------------------------------ */

struct raw_response {
    int status;       /* 0 if the exchange failed */
    char *body;       /* malloc'd, NUL-terminated; free it */
    size_t body_len;
};

/* One request over a fresh connection (Connection: close). body may be NULL. */
int raw_http(const char *method, const char *path, const char *body, struct raw_response *out);

void ctl_reset(void);
/* Merges knobs, e.g. ctl_config("{\"token_delay_ms\": 200}"). */
#define ctl_config(json) ctl_config_at((json), __FILE__, __LINE__)
void ctl_config_at(const char *json, const char *file, int line);
void ctl_revoke(void);
/* GET /_control/stats as a malloc'd JSON string (NULL on failure). */
char *ctl_stats(void);
/* One integer from the stats, e.g. stat_long("token_requests"); -1 on failure. */
long stat_long(const char *path);

/* ---- a small JSON reader (enough for the stand-in's answers) ---------------------------- */

/* The value at a dotted path ("last_token_request.form.scope", "results.0.data"), as a pointer
 * into json; NULL when absent or malformed. */
const char *json_at(const char *json, const char *path);
/* 1 and *out when the value is a number, else 0. */
int json_long(const char *json, const char *path, long *out);
/* The string value, unescaped, malloc'd; NULL if absent or not a string. */
char *json_string(const char *json, const char *path);
/* 1 if the value is present and JSON null. */
int json_is_null(const char *json, const char *path);

/* Lower-case ASCII copy into a malloc'd string. */
char *lower_dup(const char *s);

#endif
