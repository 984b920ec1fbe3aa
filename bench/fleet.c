/*
 * One short-lived process of the fleet benchmark (bench/fleet.sh): make a session, get one
 * token, exit. Configured by the environment:
 *
 *   FLEET_TOKEN_URL  the token endpoint          FLEET_CACHE  memory | file | redis
 *   FLEET_DIR        token_cache_dir (file)      FLEET_REDIS  redis_url (redis)
 */
#include <stdio.h>
#include <stdlib.h>

#include "cloudauth.h"

static int set(cloudauth_config *cfg, const char *key, const char *value) {
    if (!value) return 0;
    if (cloudauth_config_set(cfg, key, value) != CLOUDAUTH_OK) {
        fprintf(stderr, "fleet: %s: %s\n", key, cloudauth_last_error());
        return -1;
    }
    return 0;
}

int main(void) {
    const char *url = getenv("FLEET_TOKEN_URL");
    if (!url) {
        fprintf(stderr, "fleet: FLEET_TOKEN_URL is not set\n");
        return 2;
    }
    cloudauth_config *cfg = cloudauth_config_new();
    if (set(cfg, "client_id", "demo-client") || set(cfg, "client_secret", "demo-secret") ||
        set(cfg, "token_url", url) || set(cfg, "token_cache", getenv("FLEET_CACHE")) ||
        set(cfg, "token_cache_dir", getenv("FLEET_DIR")) || set(cfg, "redis_url", getenv("FLEET_REDIS")))
        return 1;
    cloudauth_session *s = NULL;
    if (cloudauth_session_new(cfg, &s) != CLOUDAUTH_OK) {
        fprintf(stderr, "fleet: session: %s\n", cloudauth_last_error());
        return 1;
    }
    cloudauth_config_free(cfg);
    char token[8192];
    size_t len = 0;
    int rc = cloudauth_session_token(s, token, sizeof token, &len);
    if (rc != CLOUDAUTH_OK) fprintf(stderr, "fleet: token: %s\n", cloudauth_last_error());
    cloudauth_session_free(s);
    return rc == CLOUDAUTH_OK ? 0 : 1;
}
