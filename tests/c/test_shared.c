/*
 * The shared token caches through the C ABI (issue 10): two sessions share one token through
 * token_cache=file (stats count the hit), a broken cache is one CACHE_UNAVAILABLE event while
 * every call goes on, and the new keys are validated without echoing a Redis password.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct outages {
    pthread_mutex_t mu;
    int cache_unavailable;
    int leaked;
};

static void on_event(void *user_data, const cloudauth_event *e)
{
    struct outages *o = user_data;
    pthread_mutex_lock(&o->mu);
    if (e->kind == CLOUDAUTH_EVENT_CACHE_UNAVAILABLE)
        o->cache_unavailable++;
    if (strstr(e->message, "demo-secret"))
        o->leaked = 1;
    pthread_mutex_unlock(&o->mu);
}

static void remove_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void test_shared_file_cache_is_one_token_request(void)
{
    char dir[] = "/tmp/cloudauth-ctest-XXXXXX";
    cloudauth_stats st;
    cloudauth_session *a, *b;
    char *ta, *tb;
    REQUIRE(mkdtemp(dir) != NULL);
    a = OPEN_SESSION("token_cache", "file", "token_cache_dir", dir, NULL);
    b = OPEN_SESSION("token_cache", "file", "token_cache_dir", dir, NULL);
    REQUIRE(a != NULL && b != NULL);
    ta = GET_TOKEN(a);
    tb = GET_TOKEN(b);
    REQUIRE(ta != NULL && tb != NULL);
    CHECK_STR(tb, ta);
    CHECK_EQ(stat_long("token_requests"), 1);
    CHECK_RC(cloudauth_session_stats(b, &st, sizeof st), CLOUDAUTH_OK);
    CHECK_EQ(st.shared_cache_hits, 1);
    CHECK_EQ(st.shared_cache_errors, 0);
    CHECK_EQ(st.token_requests, 0);
    CHECK_RC(cloudauth_session_stats(a, &st, sizeof st), CLOUDAUTH_OK);
    CHECK_EQ(st.shared_cache_hits, 0);
    CHECK_EQ(st.token_requests, 1);
    free(ta);
    free(tb);
    cloudauth_session_free(a);
    cloudauth_session_free(b);
    remove_tree(dir);
}

static void test_shared_cache_down_is_one_event_and_no_failure(void)
{
    char dir[] = "/tmp/cloudauth-ctest-XXXXXX", blocked[600];
    struct outages o;
    cloudauth_stats st;
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    FILE *f;
    int i;
    REQUIRE(mkdtemp(dir) != NULL);
    /* A regular file where the cache directory should be. */
    snprintf(blocked, sizeof blocked, "%s/cache", dir);
    f = fopen(blocked, "w");
    REQUIRE(f != NULL);
    fclose(f);
    memset(&o, 0, sizeof o);
    pthread_mutex_init(&o.mu, NULL);
    cfg = OPEN_CONFIG("token_cache", "file", "token_cache_dir", blocked, "refresh_mode", "inline", NULL);
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_config_set_event_callback(cfg, on_event, &o), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    REQUIRE(s != NULL);
    for (i = 0; i < 3; i++) {
        free(GET_TOKEN(s));
        cloudauth_session_invalidate(s);
    }
    CHECK_EQ(stat_long("token_requests"), 3);
    CHECK_RC(cloudauth_session_stats(s, &st, sizeof st), CLOUDAUTH_OK);
    CHECK(st.shared_cache_errors >= 3);
    CHECK_EQ(st.shared_cache_hits, 0);
    CHECK_EQ(o.cache_unavailable, 1);
    CHECK_EQ(o.leaked, 0);
    cloudauth_session_free(s);
    pthread_mutex_destroy(&o.mu);
    remove_tree(dir);
}

static void test_shared_keys_are_validated(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    cloudauth_session *s = NULL;
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_config_set(cfg, "token_cache", "disk"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("token_cache");
    CHECK_RC(cloudauth_config_set(cfg, "token_cache_timeout_ms", "0"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("token_cache_timeout_ms");
    CHECK_RC(cloudauth_config_set(cfg, "token_cache_dir", ""), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_config_set(cfg, "redis_url", "http://:hunter2@cache:6379"),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("redis_url");
    CHECK_LACKS(cloudauth_last_error(), "hunter2");
    CHECK_RC(cloudauth_config_set(cfg, "redis_url", "redis://:hunter2@cache:6379/x"),
             CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_LACKS(cloudauth_last_error(), "hunter2");
    CHECK_RC(cloudauth_config_set(cfg, "redis_url", "rediss://:hunter2@cache:6380/1"), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    /* redis without redis_url cannot work: refused when the session is made. */
    cfg = OPEN_CONFIG("token_cache", "redis", NULL);
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("redis_url");
    CHECK(s == NULL);
    cloudauth_config_free(cfg);
}

const struct test_case shared_tests[] = {
    {"shared_file_cache_is_one_token_request", test_shared_file_cache_is_one_token_request},
    {"shared_cache_down_is_one_event_and_no_failure", test_shared_cache_down_is_one_event_and_no_failure},
    {"shared_keys_are_validated", test_shared_keys_are_validated},
    {NULL, NULL},
};
