/*
 * cloudauth_config_from_env: keys from <prefix><KEY>, only known keys, errors naming the
 * variable, never the secret. Each test unsets what it set.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_env(const char *name, const char *value)
{
    CHECK(setenv(name, value, 1) == 0);
}

/* The stand-in's odd credentials and URLs under `prefix`. */
static void set_standin_env(const char *prefix)
{
    char name[128];
    snprintf(name, sizeof name, "%sCLIENT_ID", prefix);
    set_env(name, "odd+id:%");
    snprintf(name, sizeof name, "%sCLIENT_SECRET", prefix);
    set_env(name, "s3cr+t:with%odd chars&=");
    snprintf(name, sizeof name, "%sTOKEN_URL", prefix);
    set_env(name, surl("/connect/token"));
    snprintf(name, sizeof name, "%sBASE_URL", prefix);
    set_env(name, surl(""));
}

static void unset_standin_env(const char *prefix)
{
    static const char *const keys[] = {"CLIENT_ID", "CLIENT_SECRET", "TOKEN_URL", "BASE_URL"};
    char name[128];
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        snprintf(name, sizeof name, "%s%s", prefix, keys[i]);
        unsetenv(name);
    }
}

/* A session from cfg gets a token; the stand-in saw `client_id`. */
static void check_token_as(cloudauth_config *cfg, const char *client_id)
{
    cloudauth_session *s = NULL;
    char *token, *stats, *id;
    REQUIRE_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    token = GET_TOKEN(s);
    CHECK(token != NULL);
    stats = ctl_stats();
    id = stats != NULL ? json_string(stats, "last_token_request.form.client_id") : NULL;
    CHECK_STR(id, client_id);
    free(id);
    free(stats);
    free(token);
    cloudauth_session_free(s);
}

static void test_env_default_prefix(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    REQUIRE(cfg != NULL);
    set_standin_env("CLOUDAUTH_");
    set_env("CLOUDAUTH_LIBRARY", "not a key: ignored");
    set_env("CLOUDAUTH_NO_SUCH_KEY", "ignored too");
    CHECK_RC(cloudauth_config_from_env(cfg, NULL), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");
    check_token_as(cfg, "odd+id:%");
    unset_standin_env("CLOUDAUTH_");
    unsetenv("CLOUDAUTH_LIBRARY");
    unsetenv("CLOUDAUTH_NO_SUCH_KEY");
    cloudauth_config_free(cfg);
}

static void test_env_custom_prefix(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    REQUIRE(cfg != NULL);
    set_standin_env("MYAPP_AUTH_");
    /* a CLOUDAUTH_ variable is not read under another prefix */
    set_env("CLOUDAUTH_CLIENT_ID", "wrong-client");
    CHECK_RC(cloudauth_config_from_env(cfg, "MYAPP_AUTH_"), CLOUDAUTH_OK);
    check_token_as(cfg, "odd+id:%");
    unset_standin_env("MYAPP_AUTH_");
    unsetenv("CLOUDAUTH_CLIENT_ID");
    cloudauth_config_free(cfg);
}

static void test_env_overrides_and_keeps(void)
{
    /* keys set before the call stay unless a variable overrides them */
    cloudauth_config *cfg = OPEN_CONFIG("scope", "kept.scope", NULL);
    cloudauth_session *s = NULL;
    char *token, *stats, *scope;
    REQUIRE(cfg != NULL);
    set_env("ENVTEST_CLIENT_ID", "odd+id:%");
    set_env("ENVTEST_CLIENT_SECRET", "s3cr+t:with%odd chars&=");
    CHECK_RC(cloudauth_config_from_env(cfg, "ENVTEST_"), CLOUDAUTH_OK);
    REQUIRE_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    token = GET_TOKEN(s);
    stats = ctl_stats();
    scope = stats != NULL ? json_string(stats, "last_token_request.form.scope") : NULL;
    CHECK_STR(scope, "kept.scope");
    free(scope);
    free(stats);
    free(token);
    cloudauth_session_free(s);
    unsetenv("ENVTEST_CLIENT_ID");
    unsetenv("ENVTEST_CLIENT_SECRET");
    cloudauth_config_free(cfg);
}

static void test_env_malformed_names_the_variable(void)
{
    static const char secret[] = "env-secret-value-never-shown";
    cloudauth_config *cfg = cloudauth_config_new();
    cloudauth_session *s = NULL;
    REQUIRE(cfg != NULL);
    set_env("ENVBAD_CLIENT_ID", "id-from-env");
    set_env("ENVBAD_CLIENT_SECRET", secret);
    set_env("ENVBAD_TIMEOUT_MS", "soon");
    CHECK_RC(cloudauth_config_from_env(cfg, "ENVBAD_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("ENVBAD_TIMEOUT_MS");
    CHECK_ERROR_MENTIONS("soon");
    CHECK_LACKS(cloudauth_last_error(), secret);
    /* nothing was applied: the config still has no client_id */
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("client_id");
    CHECK(s == NULL);

    unsetenv("ENVBAD_TIMEOUT_MS");
    set_env("ENVBAD_CLIENT_SECRET", "");
    CHECK_RC(cloudauth_config_from_env(cfg, "ENVBAD_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("ENVBAD_CLIENT_SECRET");

    set_env("ENVBAD_CLIENT_SECRET", "\xff\xfe");
    CHECK_RC(cloudauth_config_from_env(cfg, "ENVBAD_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("ENVBAD_CLIENT_SECRET is not valid UTF-8");

    unsetenv("ENVBAD_CLIENT_ID");
    unsetenv("ENVBAD_CLIENT_SECRET");
    cloudauth_config_free(cfg);
}

static void test_env_arguments(void)
{
    cloudauth_config *cfg = cloudauth_config_new();
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_config_from_env(NULL, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("cfg");
    CHECK_RC(cloudauth_config_from_env(cfg, "BAD\xff_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("prefix");
    CHECK_RC(cloudauth_config_from_env(cfg, "A=B_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("prefix");
    /* no variable with this prefix: success, nothing changes */
    CHECK_RC(cloudauth_config_from_env(cfg, "CLOUDAUTH_TEST_NOTHING_SET_"), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
}

const struct test_case env_tests[] = {
    {"env_default_prefix", test_env_default_prefix},
    {"env_custom_prefix", test_env_custom_prefix},
    {"env_overrides_and_keeps", test_env_overrides_and_keeps},
    {"env_malformed_names_the_variable", test_env_malformed_names_the_variable},
    {"env_arguments", test_env_arguments},
    {NULL, NULL},
};
