/* The test framework, the stand-in helpers and the small JSON reader. See testlib.h. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ---- the framework ---------------------------------------------------------------------- */

static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
unsigned long t_checks_passed, t_checks_failed;

int t_check(int cond, const char *file, int line, const char *fmt, ...)
{
    pthread_mutex_lock(&check_lock);
    if (cond) {
        t_checks_passed++;
    } else {
        va_list ap;
        t_checks_failed++;
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
    }
    pthread_mutex_unlock(&check_lock);
    return cond;
}

int t_check_rc(cloudauth_result got, cloudauth_result want, const char *expr, const char *file,
               int line)
{
    return t_check(got == want, file, line, "%s: expected %s, got %s (last error: \"%s\")", expr,
                   cloudauth_result_name(want), cloudauth_result_name(got),
                   cloudauth_last_error());
}

int t_check_long(long long got, long long want, const char *expr, const char *file, int line)
{
    return t_check(got == want, file, line, "%s: expected %lld, got %lld", expr, want, got);
}

int t_check_str(const char *got, const char *want, const char *expr, const char *file, int line)
{
    int ok = got != NULL && want != NULL ? strcmp(got, want) == 0 : got == want;
    return t_check(ok, file, line, "%s: expected \"%s\", got \"%s\"", expr,
                   want ? want : "(NULL)", got ? got : "(NULL)");
}

int t_check_contains(const char *haystack, const char *needle, int want, const char *expr,
                     const char *file, int line)
{
    int found;
    if (haystack == NULL)
        return t_check(0, file, line, "%s is NULL", expr);
    if (needle == NULL) /* "mentions anything": just non-empty */
        return t_check(want ? haystack[0] != '\0' : haystack[0] == '\0', file, line,
                       "%s: expected %s, got \"%s\"", expr, want ? "a message" : "\"\"",
                       haystack);
    found = strstr(haystack, needle) != NULL;
    return t_check(found == want, file, line, "%s: expected it %s \"%s\", got \"%s\"", expr,
                   want ? "to contain" : "NOT to contain", needle, haystack);
}

/* ---- the environment -------------------------------------------------------------------- */

#define RING 8
static char ring[RING][1024];
static unsigned ring_next;

static char *ring_buf(void)
{
    return ring[ring_next++ % RING];
}

const char *surl(const char *path)
{
    const char *base = getenv("STANDIN_URL");
    char *buf = ring_buf();
    snprintf(buf, sizeof ring[0], "%s%s", base ? base : "", path);
    return buf;
}

int standin_port(void)
{
    const char *p = getenv("STANDIN_PORT");
    return p ? atoi(p) : 0;
}

long time_factor(void)
{
    const char *f = getenv("CLOUDAUTH_TEST_TIME_FACTOR");
    long n = f ? strtol(f, NULL, 10) : 1;
    return n < 1 ? 1 : n;
}

void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = ms % 1000 * 1000000L;
    while (nanosleep(&ts, &ts) != 0)
        ;
}

const char *num(long long n)
{
    char *buf = ring_buf();
    snprintf(buf, sizeof ring[0], "%lld", n);
    return buf;
}

static cloudauth_config *vconfig(const char *file, int line, const char *key, va_list ap)
{
    cloudauth_config *cfg = cloudauth_config_new();
    const char *defaults[] = {
        "client_id", "demo-client",
        "client_secret", "demo-secret",
        "token_url", surl("/connect/token"),
        "base_url", surl(""),
    };
    size_t i;
    int ok = 1;
    if (!t_check(cfg != NULL, file, line, "cloudauth_config_new() returned NULL"))
        return NULL;
    for (i = 0; i < sizeof defaults / sizeof defaults[0]; i += 2)
        ok &= t_check_rc(cloudauth_config_set(cfg, defaults[i], defaults[i + 1]), CLOUDAUTH_OK,
                         defaults[i], file, line);
    while (key != NULL) {
        const char *value = va_arg(ap, const char *);
        ok &= t_check_rc(cloudauth_config_set(cfg, key, value), CLOUDAUTH_OK, key, file, line);
        key = va_arg(ap, const char *);
    }
    if (!ok) {
        cloudauth_config_free(cfg);
        return NULL;
    }
    return cfg;
}

cloudauth_config *open_config_at(const char *file, int line, const char *key, ...)
{
    cloudauth_config *cfg;
    va_list ap;
    va_start(ap, key);
    cfg = vconfig(file, line, key, ap);
    va_end(ap);
    return cfg;
}

cloudauth_session *open_session_at(const char *file, int line, const char *key, ...)
{
    cloudauth_config *cfg;
    cloudauth_session *s = NULL;
    va_list ap;
    va_start(ap, key);
    cfg = vconfig(file, line, key, ap);
    va_end(ap);
    if (cfg == NULL)
        return NULL;
    if (!t_check_rc(cloudauth_session_new(cfg, &s), CLOUDAUTH_OK, "cloudauth_session_new", file,
                    line))
        s = NULL;
    cloudauth_config_free(cfg);
    return s;
}

char *get_token_at(cloudauth_session *s, const char *file, int line)
{
    size_t len = 0;
    char *buf;
    if (!t_check_rc(cloudauth_session_token(s, NULL, 0, &len), CLOUDAUTH_ERR_BUFFER_TOO_SMALL,
                    "cloudauth_session_token(s, NULL, 0, &len)", file, line))
        return NULL;
    buf = malloc(len + 1);
    if (buf == NULL)
        return NULL;
    if (!t_check_rc(cloudauth_session_token(s, buf, len + 1, &len), CLOUDAUTH_OK,
                    "cloudauth_session_token(s, buf, len + 1, &len)", file, line)) {
        free(buf);
        return NULL;
    }
    return buf;
}

cloudauth_response *get_at(cloudauth_session *s, const char *url, const char *file, int line)
{
    cloudauth_response *r = NULL;
    char what[600];
    snprintf(what, sizeof what, "GET %s", url);
    if (!t_check_rc(cloudauth_session_request(s, "GET", url, NULL, 0, NULL, 0, &r), CLOUDAUTH_OK,
                    what, file, line))
        return NULL;
    return r;
}

char *body_text(const cloudauth_response *r)
{
    size_t len = 0;
    const uint8_t *body = cloudauth_response_body(r, &len);
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    if (len > 0)
        memcpy(text, body, len);
    text[len] = '\0';
    return text;
}

char *lower_dup(const char *s)
{
    size_t i, n = strlen(s);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    for (i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return out;
}

/* ---- raw HTTP ----------------------------------------------------------------------------- */

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, 0);
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

int raw_http(const char *method, const char *path, const char *body, struct raw_response *out)
{
    struct sockaddr_in addr;
    struct timeval tv = {30, 0};
    char head[1024];
    size_t body_len = body ? strlen(body) : 0, cap = 4096, len = 0;
    char *buf, *sep;
    int fd, head_len;

    out->status = 0;
    out->body = NULL;
    out->body_len = 0;

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)standin_port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    head_len = snprintf(head, sizeof head,
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        method, path, standin_port(), body_len);
    if (send_all(fd, head, (size_t)head_len) != 0 ||
        (body_len > 0 && send_all(fd, body, body_len) != 0)) {
        close(fd);
        return -1;
    }
    buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return -1;
    }
    for (;;) { /* read to EOF: the server closes after answering a Connection: close request */
        ssize_t n;
        if (cap - len < 2048) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                close(fd);
                return -1;
            }
            buf = bigger;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        out->status = 0;
        return -1;
    }
    sep += 4;
    out->body_len = len - (size_t)(sep - buf);
    memmove(buf, sep, out->body_len + 1);
    out->body = buf;
    return 0;
}

static void ctl_post(const char *path, const char *body, const char *file, int line)
{
    struct raw_response r;
    raw_http("POST", path, body, &r);
    t_check(r.status == 200, file, line, "POST %s %s: HTTP %d %s", path, body ? body : "",
            r.status, r.body ? r.body : "(no answer)");
    free(r.body);
}

void ctl_reset(void)
{
    ctl_post("/_control/reset", NULL, __FILE__, __LINE__);
}

void ctl_config_at(const char *json, const char *file, int line)
{
    ctl_post("/_control/config", json, file, line);
}

void ctl_revoke(void)
{
    ctl_post("/_control/revoke", NULL, __FILE__, __LINE__);
}

char *ctl_stats(void)
{
    struct raw_response r;
    raw_http("GET", "/_control/stats", NULL, &r);
    if (!t_check(r.status == 200, __FILE__, __LINE__, "GET /_control/stats: HTTP %d", r.status)) {
        free(r.body);
        return NULL;
    }
    return r.body;
}

long stat_long(const char *path)
{
    char *stats = ctl_stats();
    long v = -1;
    if (stats != NULL && !json_long(stats, path, &v))
        t_check(0, __FILE__, __LINE__, "stats have no number at '%s': %s", path, stats);
    free(stats);
    return v;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static const char *ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* Past the end of the string starting at the opening quote p, or NULL. */
static const char *skip_string(const char *p)
{
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (*++p == '\0')
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Past the end of the value starting at p (after whitespace), or NULL. */
static const char *skip_value(const char *p)
{
    p = ws(p);
    if (*p == '"')
        return skip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (*p != '"' || (p = skip_string(p)) == NULL)
                    return NULL;
                p = ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if ((p = skip_value(p)) == NULL)
                return NULL;
            p = ws(p);
            if (*p == ',') {
                p = ws(p + 1);
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '\0' || strchr(",:]}", *p))
        return NULL;
    while (*p != '\0' && !strchr(",]} \t\r\n", *p)) /* number, true, false, null */
        p++;
    return p;
}

/* Within the object or array at p, the member named by the segment [seg, seg+len). */
static const char *member(const char *p, const char *seg, size_t len)
{
    p = ws(p);
    if (*p == '{') {
        p = ws(p + 1);
        while (*p == '"') {
            const char *key = p + 1, *end = skip_string(p);
            if (end == NULL)
                return NULL;
            p = ws(end);
            if (*p++ != ':')
                return NULL;
            p = ws(p);
            if ((size_t)(end - 1 - key) == len && strncmp(key, seg, len) == 0)
                return p;
            if ((p = skip_value(p)) == NULL)
                return NULL;
            p = ws(p);
            if (*p == ',')
                p = ws(p + 1);
        }
        return NULL;
    }
    if (*p == '[') {
        char digits[32];
        long index, i;
        if (len == 0 || len >= sizeof digits)
            return NULL;
        memcpy(digits, seg, len);
        digits[len] = '\0';
        index = strtol(digits, NULL, 10);
        p = ws(p + 1);
        for (i = 0; *p != ']' && *p != '\0'; i++) {
            if (i == index)
                return p;
            if ((p = skip_value(p)) == NULL)
                return NULL;
            p = ws(p);
            if (*p == ',')
                p = ws(p + 1);
        }
        return NULL;
    }
    return NULL;
}

const char *json_at(const char *json, const char *path)
{
    const char *p = ws(json);
    while (p != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        p = member(p, path, len);
        path += len + (dot != NULL);
    }
    return p ? ws(p) : NULL;
}

int json_long(const char *json, const char *path, long *out)
{
    const char *p = json_at(json, path);
    char *end;
    long v;
    if (p == NULL || !(*p == '-' || isdigit((unsigned char)*p)))
        return 0;
    v = strtol(p, &end, 10);
    if (end == p)
        return 0;
    *out = v;
    return 1;
}

int json_is_null(const char *json, const char *path)
{
    const char *p = json_at(json, path);
    return p != NULL && strncmp(p, "null", 4) == 0;
}

char *json_string(const char *json, const char *path)
{
    const char *p = json_at(json, path), *end;
    char *out, *o;
    if (p == NULL || *p != '"' || (end = skip_string(p)) == NULL)
        return NULL;
    out = o = malloc((size_t)(end - p));
    if (out == NULL)
        return NULL;
    for (p++; p < end - 1; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        switch (*++p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': { /* enough for ASCII; anything else becomes '?' */
            char hex[5] = {0};
            long cp;
            memcpy(hex, p + 1, 4);
            cp = strtol(hex, NULL, 16);
            *o++ = cp > 0 && cp < 0x80 ? (char)cp : '?';
            p += 4;
            break;
        }
        default: *o++ = *p; break; /* \" \\ \/ */
        }
    }
    *o = '\0';
    return out;
}
