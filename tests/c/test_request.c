/*
 * Authorized requests: URL joining, binary bodies, headers in and out, statuses, connection
 * reuse, redirects, refusal of plain http to remote hosts, timeouts, size caps, threads.
 */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_request_url_joining(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    char base_slash[256];
    REQUIRE(s != NULL);

    /* a path joins base_url, with or without its leading slash; the query is kept */
    r = GET(s, "/echo?x=1&y=two");
    if (r != NULL) {
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Query"), "x=1&y=two");
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Method"), "GET");
        cloudauth_response_free(r);
    }
    r = GET(s, "echo?z=3");
    if (r != NULL) {
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Query"), "z=3");
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);

    /* base_url with a trailing slash */
    snprintf(base_slash, sizeof base_slash, "%s", surl("/"));
    s = OPEN_SESSION("base_url", base_slash, NULL);
    REQUIRE(s != NULL);
    r = GET(s, "/echo?w=4");
    if (r != NULL) {
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Query"), "w=4");
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);

    /* an absolute URL is used as it is: base_url points nowhere, and it still works */
    s = OPEN_SESSION("base_url", "http://127.0.0.1:9/nowhere", NULL);
    REQUIRE(s != NULL);
    r = GET(s, surl("/echo?abs=1"));
    if (r != NULL) {
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Query"), "abs=1");
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);
}

static void test_request_binary_body(void)
{
    const size_t n = 256 * 1024;
    const char *hdrs[] = {"Content-Type: application/octet-stream"};
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    uint8_t *body = malloc(n);
    size_t i, len = 0;
    REQUIRE(s != NULL && body != NULL);
    for (i = 0; i < n; i++) /* every byte value, NULs included, in a pattern that moves */
        body[i] = (uint8_t)(i + i / 256);

    CHECK_RC(cloudauth_session_request(s, "POST", "/echo", hdrs, 1, body, n, &r), CLOUDAUTH_OK);
    if (r != NULL) {
        const uint8_t *got = cloudauth_response_body(r, &len);
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK_EQ(len, n);
        CHECK(got != NULL && len == n && memcmp(got, body, n) == 0);
        CHECK_STR(cloudauth_response_header(r, "x-echo-method"), "POST");
        CHECK_STR(cloudauth_response_header(r, "content-type"), "application/octet-stream");
        cloudauth_response_free(r);
        r = NULL;
    }

    /* an empty body, and another method */
    CHECK_RC(cloudauth_session_request(s, "PUT", "/echo", NULL, 0, NULL, 0, &r), CLOUDAUTH_OK);
    if (r != NULL) {
        len = 99;
        cloudauth_response_body(r, &len);
        CHECK_EQ(len, 0);
        CHECK_STR(cloudauth_response_header(r, "X-Echo-Method"), "PUT");
        cloudauth_response_free(r);
    }
    free(body);
    cloudauth_session_free(s);
}

static void test_request_headers(void)
{
    const char *hdrs[] = {"X-Custom-Thing: hello world", "Accept:application/json",
                          "X-Empty:"};
    cloudauth_session *s = OPEN_SESSION("user_agent", "cloudauth-ctests/1.0", NULL);
    cloudauth_response *r = NULL;
    REQUIRE(s != NULL);

    CHECK_RC(cloudauth_session_request(s, "GET", "/headers", hdrs, 3, NULL, 0, &r), CLOUDAUTH_OK);
    if (r != NULL) {
        char *json = body_text(r), *custom, *accept, *ua, *auth;
        const char *a = cloudauth_response_header(r, "content-type");
        const char *b = cloudauth_response_header(r, "Content-Type");
        const char *c = cloudauth_response_header(r, "CONTENT-TYPE");
        CHECK_EQ(cloudauth_response_status(r), 200);
        /* case-insensitive lookup, the same pointer whichever spelling */
        CHECK(a != NULL && a == b && b == c);
        CHECK_CONTAINS(a, "application/json");
        CHECK(cloudauth_response_header(r, "X-Not-There") == NULL);
        CHECK(cloudauth_response_header(r, "") == NULL);

        custom = json_string(json, "headers.x-custom-thing");
        accept = json_string(json, "headers.accept");
        ua = json_string(json, "headers.user-agent");
        auth = json_string(json, "headers.authorization");
        CHECK_STR(custom, "hello world");
        CHECK_STR(accept, "application/json");
        CHECK_STR(ua, "cloudauth-ctests/1.0");
        CHECK(auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth) > 7);
        free(custom);
        free(accept);
        free(ua);
        free(auth);
        free(json);
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);

    /* the default User-Agent is cloudauth/<version> */
    s = OPEN_SESSION(NULL);
    REQUIRE(s != NULL);
    r = GET(s, "/headers");
    if (r != NULL) {
        char *json = body_text(r), *ua = json_string(json, "headers.user-agent"), want[64];
        snprintf(want, sizeof want, "cloudauth/%s", cloudauth_version());
        CHECK_STR(ua, want);
        free(ua);
        free(json);
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);
}

static void test_request_any_status(void)
{
    static const int statuses[] = {200, 201, 204, 400, 404, 418, 500, 502, 503};
    cloudauth_session *s = OPEN_SESSION(NULL);
    size_t i;
    REQUIRE(s != NULL);
    for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        char path[32];
        cloudauth_response *r;
        snprintf(path, sizeof path, "/status/%d", statuses[i]);
        r = GET(s, path);
        if (r == NULL)
            continue;
        CHECK_EQ(cloudauth_response_status(r), statuses[i]);
        CHECK_STR(cloudauth_last_error(), "");
        if (statuses[i] == 404 || statuses[i] == 500) {
            char *json = body_text(r);
            long st = 0;
            CHECK(json_long(json, "status", &st) && st == statuses[i]);
            free(json);
        }
        cloudauth_response_free(r);
    }
    /* one token, and API requests are never retried (5xx included) */
    CHECK_EQ(stat_long("token_requests"), 1);
    CHECK_EQ(stat_long("api_requests"), (long)(sizeof statuses / sizeof statuses[0]));
    cloudauth_session_free(s);
}

static void test_request_keep_alive(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    long before, after;
    int i;
    REQUIRE(s != NULL);
    before = stat_long("connections"); /* counts the stats call's own connection */
    for (i = 0; i < 20; i++) {
        cloudauth_response *r = GET(s, "/headers");
        if (r != NULL)
            CHECK_EQ(cloudauth_response_status(r), 200);
        cloudauth_response_free(r);
    }
    after = stat_long("connections");
    /* one connection to the token endpoint, one for the API (the stats calls' own: +1) */
    CHECK(after - before - 1 <= 2);
    if (after - before - 1 > 2)
        printf("      20 requests used %ld connections\n", after - before - 1);
    CHECK_EQ(stat_long("api_requests"), 20);
    cloudauth_session_free(s);
}

static void test_request_redirects(void)
{
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r;
    char path[256];
    REQUIRE(s != NULL);

    /* another origin (localhost is not 127.0.0.1): the token stays behind */
    snprintf(path, sizeof path, "/redirect?to=http://localhost:%d/public/headers",
             standin_port());
    r = GET(s, path);
    if (r != NULL) {
        char *json = body_text(r);
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK(json_at(json, "headers") != NULL);
        CHECK(json_at(json, "headers.authorization") == NULL);
        free(json);
        cloudauth_response_free(r);
    }

    /* same origin, with a 307 this time: followed */
    snprintf(path, sizeof path, "/redirect?to=http://127.0.0.1:%d/public/headers&code=307",
             standin_port());
    r = GET(s, path);
    if (r != NULL) {
        char *json = body_text(r);
        CHECK_EQ(cloudauth_response_status(r), 200);
        CHECK(json_at(json, "headers") != NULL);
        free(json);
        cloudauth_response_free(r);
    }

    /* a redirect to plain http on a remote host is refused (.invalid never resolves, so a
     * library that wrongly followed it fails with NETWORK instead of reaching anything) */
    r = NULL;
    CHECK_RC(cloudauth_session_request(s, "GET", "/redirect?to=http://example.invalid/x", NULL, 0,
                                       NULL, 0, &r),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK(r == NULL);
    cloudauth_session_free(s);
}

/* ---- plain http to remote hosts ---------------------------------------------------------- */

/* A listening loopback socket used as the proxy: any attempt to send anywhere shows up as a
 * connection on it, and nothing ever leaves the machine. */
static int trap_open(int *port)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *port = ntohs(addr.sin_port);
    return fd;
}

static int trap_hits(int fd)
{
    int hits = 0, c;
    while ((c = accept(fd, NULL, NULL)) >= 0) {
        hits++;
        close(c);
    }
    return hits;
}

static void test_request_insecure_urls(void)
{
    char proxy[64];
    int port = 0, trap = trap_open(&port);
    cloudauth_config *cfg;
    cloudauth_session *s = (cloudauth_session *)(uintptr_t)0x5e55;
    cloudauth_response *r = NULL;
    REQUIRE(trap >= 0);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", port);

    /* token_url over plain http to a remote host: refused when the session is made */
    cfg = OPEN_CONFIG("token_url", "http://example.com/connect/token?client_secret=leak",
                      "proxy", proxy, "timeout_ms", "2000", NULL);
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_ERR_INSECURE_URL);
    CHECK(s == (cloudauth_session *)(uintptr_t)0x5e55);
    CHECK_ERROR_MENTIONS("token_url");
    CHECK_ERROR_MENTIONS("example.com");
    CHECK_ERROR_MENTIONS("allow_insecure_http");
    CHECK_LACKS(cloudauth_last_error(), "leak"); /* no query in messages */
    CHECK_LACKS(cloudauth_last_error(), "demo-secret");

    /* allow_insecure_http=true is accepted, and then the session can be made (no request is
     * made with it: nothing may go to a remote host) */
    CHECK_RC(cloudauth_config_set(cfg, "allow_insecure_http", "true"), CLOUDAUTH_OK);
    s = NULL;
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_session_free(s);
    cloudauth_config_free(cfg);

    /* a request URL over plain http to a remote host: refused before any token is fetched */
    s = OPEN_SESSION("proxy", proxy, "timeout_ms", "2000", NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request(s, "GET", "http://example.com/v5.0/ocr/RecognizeImage",
                                       NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("example.com");
    CHECK_RC(cloudauth_session_request(s, "POST", "HTTP://EXAMPLE.COM/x", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK(r == NULL);
    cloudauth_session_free(s);

    /* the base_url: same rule for relative paths */
    s = OPEN_SESSION("base_url", "http://example.com", "proxy", proxy, "timeout_ms", "2000",
                     NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request(s, "GET", "/headers", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK(r == NULL);
    cloudauth_session_free(s);

    CHECK_EQ(trap_hits(trap), 0);
    CHECK_EQ(stat_long("token_requests"), 0);
    close(trap);

    /* plain http to loopback is fine, by name too */
    {
        char token_url[128];
        char *token;
        snprintf(token_url, sizeof token_url, "http://localhost:%d/connect/token",
                 standin_port());
        s = OPEN_SESSION("token_url", token_url, NULL);
        REQUIRE(s != NULL);
        token = GET_TOKEN(s);
        CHECK(token != NULL);
        free(token);
        cloudauth_session_free(s);
    }
}

static void test_request_timeout(void)
{
    long t = 300 * time_factor();
    cloudauth_session *s = OPEN_SESSION("timeout_ms", num(t), NULL);
    cloudauth_response *r = NULL;
    char path[64];
    char *token;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s); /* fetched in time */
    CHECK(token != NULL);
    free(token);
    snprintf(path, sizeof path, "/delay/%ld", 4 * t);
    CHECK_RC(cloudauth_session_request(s, "GET", path, NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_TIMEOUT);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("/delay/");
    /* within the limit is fine */
    snprintf(path, sizeof path, "/delay/%d", 10);
    r = GET(s, path);
    if (r != NULL)
        CHECK_EQ(cloudauth_response_status(r), 200);
    cloudauth_response_free(r);
    cloudauth_session_free(s);
}

static void test_request_size_cap(void)
{
    cloudauth_session *s = OPEN_SESSION("max_response_bytes", "1000", NULL);
    cloudauth_response *r = NULL;
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_request(s, "GET", "/big?bytes=5000", NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_TOO_LARGE);
    CHECK(r == NULL);
    CHECK_ERROR_MENTIONS("1000");
    r = GET(s, "/big?bytes=1000");
    if (r != NULL) {
        size_t len = 0;
        const uint8_t *b = cloudauth_response_body(r, &len);
        CHECK_EQ(len, 1000);
        CHECK(b != NULL && b[0] == 'a' && b[999] == 'a');
        cloudauth_response_free(r);
    }
    cloudauth_session_free(s);
}

static void test_request_secrets_not_in_messages(void)
{
    /* the URL in a message has no query (it may hold secrets) and no user info */
    cloudauth_session *s = OPEN_SESSION("base_url", "http://127.0.0.1:9", NULL);
    cloudauth_response *r = NULL;
    char *token;
    REQUIRE(s != NULL);
    token = GET_TOKEN(s);
    REQUIRE(token != NULL);
    CHECK_RC(cloudauth_session_request(s, "GET", "http://user:pw-Q7@127.0.0.1:9/x?api_key=K3y-Q7",
                                       NULL, 0, NULL, 0, &r),
             CLOUDAUTH_ERR_NETWORK);
    CHECK_ERROR_MENTIONS("127.0.0.1:9");
    CHECK_LACKS(cloudauth_last_error(), "K3y-Q7");
    CHECK_LACKS(cloudauth_last_error(), "pw-Q7");
    CHECK_LACKS(cloudauth_last_error(), token);
    CHECK_LACKS(cloudauth_last_error(), "demo-secret");
    free(token);
    cloudauth_session_free(s);
}

/* ---- one session, many threads ----------------------------------------------------------- */

#define REQ_THREADS 8
#define REQ_EACH 5

struct worker {
    cloudauth_session *s;
    int ok;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    int i;
    for (i = 0; i < REQ_EACH; i++) {
        cloudauth_response *r = NULL;
        if (cloudauth_session_request(w->s, "GET", "/headers", NULL, 0, NULL, 0, &r) ==
                CLOUDAUTH_OK &&
            cloudauth_response_status(r) == 200)
            w->ok++;
        cloudauth_response_free(r);
    }
    return NULL;
}

static void test_request_threads_share_session(void)
{
    static struct worker workers[REQ_THREADS];
    pthread_t threads[REQ_THREADS];
    cloudauth_session *s = OPEN_SESSION(NULL);
    int i, created = 0;
    REQUIRE(s != NULL);
    for (i = 0; i < REQ_THREADS; i++) {
        workers[i].s = s;
        workers[i].ok = 0;
        if (pthread_create(&threads[i], NULL, worker_run, &workers[i]) == 0)
            created++;
        else
            break;
    }
    CHECK_EQ(created, REQ_THREADS);
    for (i = 0; i < created; i++) {
        pthread_join(threads[i], NULL);
        CHECK_EQ(workers[i].ok, REQ_EACH);
    }
    CHECK_EQ(stat_long("token_requests"), 1);
    CHECK_EQ(stat_long("api_requests"), REQ_THREADS * REQ_EACH);
    cloudauth_session_free(s);
}

static void test_request_ocr_flow(void)
{
    /* The Aspose OCR shape end to end: submit, then poll until Completed. */
    static const char body[] = "{\"image\": \"aGVsbG8=\", \"settings\": {\"language\": \"English\"}}";
    const char *hdrs[] = {"Content-Type: application/json"};
    cloudauth_session *s = OPEN_SESSION(NULL);
    cloudauth_response *r = NULL;
    char *id = NULL, path[256];
    int polls;
    REQUIRE(s != NULL);
    REQUIRE_RC(cloudauth_session_request(s, "POST", "/v5.0/ocr/RecognizeImage", hdrs, 1,
                                         (const uint8_t *)body, sizeof body - 1, &r),
               CLOUDAUTH_OK);
    CHECK_EQ(cloudauth_response_status(r), 200);
    id = body_text(r);
    cloudauth_response_free(r);
    REQUIRE(id != NULL && id[0] != '\0');
    snprintf(path, sizeof path, "/v5.0/ocr/RecognizeImage?id=%s", id);
    for (polls = 0; polls < 10; polls++) {
        char *json, *status;
        r = GET(s, path);
        if (r == NULL)
            break;
        json = body_text(r);
        status = json_string(json, "taskStatus");
        cloudauth_response_free(r);
        if (status != NULL && strcmp(status, "Completed") == 0) {
            char *data = json_string(json, "results.0.data");
            CHECK(data != NULL && data[0] != '\0');
            free(data);
            free(status);
            free(json);
            break;
        }
        CHECK_STR(status, "Processing");
        free(status);
        free(json);
    }
    CHECK(polls < 10);
    free(id);
    cloudauth_session_free(s);
}

static void test_request_check_url(void)
{
    /* cloudauth_session_check_url: the rule a binding asks for before it puts the token on a
     * request its own HTTP client sends; the same rule as cloudauth_session_request. */
    static const char *const yes[] = {"true", "1", "yes", "on", "TRUE", "On"};
    cloudauth_session *s = OPEN_SESSION(NULL);
    size_t i;
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_check_url(NULL, "https://example.com/"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_check_url(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_ERROR_MENTIONS("url");
    CHECK_RC(cloudauth_session_check_url(s, "\xff\xfe"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_check_url(s, "https://example.com/x?client_secret=leak"), CLOUDAUTH_OK);
    CHECK_STR(cloudauth_last_error(), "");
    CHECK_RC(cloudauth_session_check_url(s, "http://127.0.0.1:9/x"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_check_url(s, "http://127.0.0.2/x"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_check_url(s, "http://[::1]/x"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_check_url(s, "http://LocalHost/x"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_session_check_url(s, "/headers"), CLOUDAUTH_OK); /* base_url is loopback */
    CHECK_RC(cloudauth_session_check_url(s, "http://example.com/x?client_secret=leak"),
             CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_ERROR_MENTIONS("example.com");
    CHECK_LACKS(cloudauth_last_error(), "leak");
    CHECK_RC(cloudauth_session_check_url(s, "http://loopback/x"), CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_RC(cloudauth_session_check_url(s, "ftp://127.0.0.1/x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_RC(cloudauth_session_check_url(s, "http://"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    cloudauth_session_free(s);
    /* allow_insecure_http in every form the config accepts */
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        s = OPEN_SESSION("allow_insecure_http", yes[i], NULL);
        REQUIRE(s != NULL);
        CHECK_RC(cloudauth_session_check_url(s, "http://example.com/x"), CLOUDAUTH_OK);
        cloudauth_session_free(s);
    }
    s = OPEN_SESSION("allow_insecure_http", "off", NULL);
    REQUIRE(s != NULL);
    CHECK_RC(cloudauth_session_check_url(s, "http://example.com/x"), CLOUDAUTH_ERR_INSECURE_URL);
    cloudauth_session_free(s);
    CHECK_EQ(stat_long("token_requests"), 0); /* nothing is ever sent */
}

static void test_session_origin(void)
{
    /* cloudauth_session_origin: the origin adapters of other HTTP clients compare a request's
     * with before they add the token. */
    char want[64];
    cloudauth_config *cfg;
    cloudauth_session *s = OPEN_SESSION(NULL);
    const char *origin;
    REQUIRE(s != NULL);
    snprintf(want, sizeof want, "http://127.0.0.1:%d", standin_port());
    CHECK_RC(cloudauth_session_check_url(s, NULL), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    origin = cloudauth_session_origin(s);
    CHECK_STR(origin, want);
    CHECK_STR(cloudauth_last_error(), ""); /* a success clears the previous error */
    CHECK(cloudauth_session_origin(s) == origin); /* owned by the session, the same each time */
    cloudauth_session_free(s);

    CHECK(cloudauth_session_origin(NULL) == NULL);
    CHECK_ERROR_MENTIONS("session is NULL");

    /* Serialized as URL parsing does: lower case, default port left out, IDNA, IPv6 brackets;
     * path, query and user info are not part of it. */
    s = OPEN_SESSION("base_url", "HTTPS://user@API.Example.COM:443/v4.0/words?x=1", NULL);
    REQUIRE(s != NULL);
    CHECK_STR(cloudauth_session_origin(s), "https://api.example.com");
    cloudauth_session_free(s);
    s = OPEN_SESSION("base_url", "http://[::1]:8080/x", NULL);
    REQUIRE(s != NULL);
    CHECK_STR(cloudauth_session_origin(s), "http://[::1]:8080");
    cloudauth_session_free(s);
    s = OPEN_SESSION("base_url", "https://b\xc3\xbc" "cher.example:8443", NULL);
    REQUIRE(s != NULL);
    CHECK_STR(cloudauth_session_origin(s), "https://xn--bcher-kva.example:8443");
    cloudauth_session_free(s);

    /* Without the base_url key: the default base_url's origin. */
    cfg = cloudauth_config_new();
    REQUIRE(cfg != NULL);
    CHECK_RC(cloudauth_config_set(cfg, "client_id", "demo-client"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_config_set(cfg, "client_secret", "demo-secret"), CLOUDAUTH_OK);
    CHECK_RC(cloudauth_config_set(cfg, "token_url", surl("/connect/token")), CLOUDAUTH_OK);
    s = NULL;
    CHECK_RC(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK);
    cloudauth_config_free(cfg);
    REQUIRE(s != NULL);
    CHECK_STR(cloudauth_session_origin(s), "https://api.aspose.cloud");
    cloudauth_session_free(s);
}

const struct test_case request_tests[] = {
    {"request_url_joining", test_request_url_joining},
    {"request_binary_body", test_request_binary_body},
    {"request_headers", test_request_headers},
    {"request_any_status", test_request_any_status},
    {"request_keep_alive", test_request_keep_alive},
    {"request_redirects", test_request_redirects},
    {"request_insecure_urls", test_request_insecure_urls},
    {"request_timeout", test_request_timeout},
    {"request_size_cap", test_request_size_cap},
    {"request_secrets_not_in_messages", test_request_secrets_not_in_messages},
    {"request_threads_share_session", test_request_threads_share_session},
    {"request_ocr_flow", test_request_ocr_flow},
    {"request_check_url", test_request_check_url},
    {"session_origin", test_session_origin},
    {NULL, NULL},
};
