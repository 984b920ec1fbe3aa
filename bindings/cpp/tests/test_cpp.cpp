// Tests of the C++ binding (bindings/cpp/cloudauth.hpp) against the local stand-in server
// (tests/standin/server.py). Run by tests/run/cpp.sh, which starts the stand-in and sets
// STANDIN_URL / STANDIN_PORT.
//
//   test_cpp [FILTER...]     every test, or those whose name contains a FILTER
//
// Each test starts from a reset stand-in. Checks record a failure and carry on; REQUIRE stops
// the test. CLOUDAUTH_TEST_TIME_FACTOR (default 1) stretches timeouts and delays for slow runs
// (valgrind); the assertions stay the same. Prints "N passed, M failed"; exits 1 on failure.
#include <cloudauth.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#ifndef CLOUDAUTH_EXPECTED_VERSION
#error "build with -DCLOUDAUTH_EXPECTED_VERSION='\"x.y.z\"' (the version in Cargo.toml)"
#endif

namespace {

// ---- the framework ------------------------------------------------------------------------

std::mutex check_lock;
unsigned long checks_passed = 0, checks_failed = 0;

struct Abort {};  // thrown by REQUIRE: ends the current test

bool check_at(bool ok, const char* file, int line, const std::string& what) {
    std::lock_guard<std::mutex> guard(check_lock);
    if (ok) {
        ++checks_passed;
    } else {
        ++checks_failed;
        std::cout << "    " << file << ":" << line << ": " << what << std::endl;
    }
    return ok;
}

template <class T>
std::string show(const T& v) {
    std::ostringstream o;
    o << v;
    return o.str();
}
std::string show(const std::string& v) { return "\"" + v + "\""; }
std::string show(std::string_view v) { return "\"" + std::string(v) + "\""; }

#define CHECK(cond) check_at(static_cast<bool>(cond), __FILE__, __LINE__, "CHECK(" #cond ")")
#define REQUIRE(cond) \
    do { if (!CHECK(cond)) throw Abort{}; } while (0)
#define CHECK_EQ(got, want)                                                                    \
    [&] {                                                                                      \
        const auto& g_ = (got);                                                                \
        const auto& w_ = (want);                                                               \
        return check_at(g_ == w_, __FILE__, __LINE__,                                          \
                        #got " == " #want ": got " + show(g_) + ", expected " + show(w_));     \
    }()
#define CHECK_CONTAINS(hay, needle)                                                            \
    check_at(std::string(hay).find(needle) != std::string::npos, __FILE__, __LINE__,           \
             std::string(#hay " should contain \"") + (needle) + "\", got \"" + (hay) + "\"")
#define CHECK_LACKS(hay, needle)                                                               \
    check_at(std::string(hay).find(needle) == std::string::npos, __FILE__, __LINE__,           \
             std::string(#hay " should NOT contain the given text, got \"") + (hay) + "\"")

// Runs expr, which must throw cloudauth::Error with `code`; returns that Error's what() and
// message as "what\nmessage" (empty if it did not throw as expected; a check failure then).
#define CHECK_THROWS(expr, want_code) check_throws_at([&] { (void)(expr); }, (want_code), #expr, __FILE__, __LINE__)

struct Caught {
    bool ok = false;
    cloudauth_result code = CLOUDAUTH_OK;
    std::string what, message;
};

Caught check_throws_at(const std::function<void()>& fn, cloudauth_result want, const char* expr,
                       const char* file, int line) {
    Caught c;
    try {
        fn();
        check_at(false, file, line, std::string(expr) + ": expected cloudauth::Error " +
                                        std::string(cloudauth::result_name(want)) + ", nothing thrown");
    } catch (const cloudauth::Error& e) {
        c.code = e.code();
        c.what = e.what();
        c.message = e.message();
        c.ok = check_at(e.code() == want, file, line,
                        std::string(expr) + ": expected " + std::string(cloudauth::result_name(want)) +
                            ", got " + e.what());
        // Every Error says what went wrong, and what() leads with the code's name.
        check_at(!e.message().empty(), file, line, std::string(expr) + ": the Error has no message");
        check_at(c.what.rfind(std::string(e.name()) + ": ", 0) == 0, file, line,
                 std::string(expr) + ": what() should start with the code name: " + c.what);
    } catch (const std::exception& e) {
        check_at(false, file, line, std::string(expr) + ": expected cloudauth::Error, got another exception: " + e.what());
    }
    return c;
}

long time_factor() {
    const char* f = std::getenv("CLOUDAUTH_TEST_TIME_FACTOR");
    long n = f ? std::strtol(f, nullptr, 10) : 1;
    return n < 1 ? 1 : n;
}

std::string standin_url(const std::string& path = "") {
    const char* base = std::getenv("STANDIN_URL");
    return std::string(base ? base : "") + path;
}

int standin_port() {
    const char* p = std::getenv("STANDIN_PORT");
    return p ? std::atoi(p) : 0;
}

// ---- a small JSON reader, for the stand-in's answers -----------------------------------------

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
    std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;

    // The value at a dotted path ("last_token_request.form.scope", "results.0.data"), or null.
    const Json& at(const std::string& path) const {
        static const Json null_json{nullptr};
        const Json* cur = this;
        std::size_t start = 0;
        while (start <= path.size()) {
            std::size_t dot = path.find('.', start);
            std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            if (auto* obj = std::get_if<JsonObject>(&cur->v)) {
                auto it = obj->find(part);
                if (it == obj->end()) return null_json;
                cur = &it->second;
            } else if (auto* arr = std::get_if<JsonArray>(&cur->v)) {
                std::size_t i = std::strtoul(part.c_str(), nullptr, 10);
                if (i >= arr->size()) return null_json;
                cur = &(*arr)[i];
            } else {
                return null_json;
            }
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        return *cur;
    }
    std::string str(const std::string& path) const {
        const Json& j = at(path);
        auto* s = std::get_if<std::string>(&j.v);
        return s ? *s : std::string("(not a string)");
    }
    long num(const std::string& path) const {
        const Json& j = at(path);
        auto* d = std::get_if<double>(&j.v);
        return d ? static_cast<long>(*d) : -1;
    }
    bool is_null(const std::string& path) const { return std::holds_alternative<std::nullptr_t>(at(path).v); }
};

class JsonParser {
public:
    explicit JsonParser(std::string_view text) : s_(text) {}
    Json parse() {
        Json j = value();
        ws();
        if (i_ != s_.size()) fail();
        return j;
    }
    bool failed() const { return failed_; }

private:
    void fail() {
        failed_ = true;
        i_ = s_.size();
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
    }
    bool eat(char c) {
        ws();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }
    Json value() {
        ws();
        if (i_ >= s_.size()) {
            fail();
            return Json{nullptr};
        }
        char c = s_[i_];
        if (c == '{') {
            ++i_;
            JsonObject obj;
            if (eat('}')) return Json{obj};
            do {
                ws();
                std::string key = string();
                if (!eat(':')) fail();
                obj[key] = value();
            } while (!failed_ && eat(','));
            if (!eat('}')) fail();
            return Json{obj};
        }
        if (c == '[') {
            ++i_;
            JsonArray arr;
            if (eat(']')) return Json{arr};
            do {
                arr.push_back(value());
            } while (!failed_ && eat(','));
            if (!eat(']')) fail();
            return Json{arr};
        }
        if (c == '"') return Json{string()};
        if (s_.substr(i_, 4) == "null") return i_ += 4, Json{nullptr};
        if (s_.substr(i_, 4) == "true") return i_ += 4, Json{true};
        if (s_.substr(i_, 5) == "false") return i_ += 5, Json{false};
        std::size_t start = i_;
        while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) ++i_;
        if (start == i_) {
            fail();
            return Json{nullptr};
        }
        return Json{std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr)};
    }
    std::string string() {
        std::string out;
        if (i_ >= s_.size() || s_[i_] != '"') {
            fail();
            return out;
        }
        for (++i_; i_ < s_.size(); ++i_) {
            char c = s_[i_];
            if (c == '"') {
                ++i_;
                return out;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (++i_ >= s_.size()) break;
            switch (s_[i_]) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    unsigned long cp = std::strtoul(std::string(s_.substr(i_ + 1, 4)).c_str(), nullptr, 16);
                    i_ += 4;
                    if (cp < 0x80) {
                        out += static_cast<char>(cp);
                    } else if (cp < 0x800) {
                        out += static_cast<char>(0xc0 | (cp >> 6));
                        out += static_cast<char>(0x80 | (cp & 0x3f));
                    } else {  // surrogate pairs are not needed for the stand-in's answers
                        out += static_cast<char>(0xe0 | (cp >> 12));
                        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
                        out += static_cast<char>(0x80 | (cp & 0x3f));
                    }
                    break;
                }
                default: out += s_[i_];  // \" \\ \/
            }
        }
        fail();
        return out;
    }

    std::string_view s_;
    std::size_t i_ = 0;
    bool failed_ = false;
};

Json parse_json(std::string_view text, const char* file, int line) {
    JsonParser p(text);
    Json j = p.parse();
    check_at(!p.failed(), file, line, "not JSON: " + std::string(text.substr(0, 300)));
    return j;
}
#define PARSE_JSON(text) parse_json((text), __FILE__, __LINE__)

// ---- raw HTTP to the stand-in's /_control endpoints (not through the library) -------------

struct RawResponse {
    int status = 0;  // 0: the exchange failed
    std::string body;
};

RawResponse raw_http(const std::string& method, const std::string& path, const std::string& body = "") {
    RawResponse out;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return out;
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(standin_port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return out;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(standin_port()) +
                      "\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < req.size();) {
        ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            ::close(fd);
            return out;
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string all;
    char buf[4096];
    for (;;) {  // to EOF: the server closes after a Connection: close exchange
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        all.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    std::size_t sep = all.find("\r\n\r\n");
    if (sep == std::string::npos || std::sscanf(all.c_str(), "HTTP/1.%*d %d", &out.status) != 1) {
        out.status = 0;
        return out;
    }
    out.body = all.substr(sep + 4);
    return out;
}

void ctl_post(const std::string& path, const std::string& body, const char* file, int line) {
    RawResponse r = raw_http("POST", path, body);
    check_at(r.status == 200, file, line,
             "POST " + path + " " + body + ": HTTP " + std::to_string(r.status) + " " + r.body);
}
#define CTL_CONFIG(json) ctl_post("/_control/config", (json), __FILE__, __LINE__)
#define CTL_REVOKE() ctl_post("/_control/revoke", "", __FILE__, __LINE__)

Json stats_at(const char* file, int line) {
    RawResponse r = raw_http("GET", "/_control/stats");
    check_at(r.status == 200, file, line, "GET /_control/stats: HTTP " + std::to_string(r.status));
    return parse_json(r.body, file, line);
}
#define STATS() stats_at(__FILE__, __LINE__)
#define STAT(name) STATS().num(name)

// ---- sessions -------------------------------------------------------------------------------

// A config for the stand-in with its credentials, then the extra settings (which may override).
cloudauth::Config standin_config(std::initializer_list<std::pair<std::string_view, std::string_view>> extra = {}) {
    std::string token_url = standin_url("/connect/token"), base = standin_url();
    cloudauth::Config cfg{{"client_id", "demo-client"},
                          {"client_secret", "demo-secret"},
                          {"token_url", token_url},
                          {"base_url", base}};
    for (const auto& kv : extra) cfg.set(kv.first, kv.second);
    return cfg;
}

cloudauth::Session standin_session(std::initializer_list<std::pair<std::string_view, std::string_view>> extra = {}) {
    return cloudauth::Session(standin_config(extra));
}

// A countdown latch, so that threads start their calls together.
class Latch {
public:
    explicit Latch(int n) : n_(n) {}
    void arrive_and_wait() {
        std::unique_lock<std::mutex> lock(m_);
        if (--n_ == 0) {
            cv_.notify_all();
        } else {
            cv_.wait(lock, [this] { return n_ == 0; });
        }
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    int n_;
};

// ---- the tests ------------------------------------------------------------------------------

void test_version() {
    CHECK_EQ(cloudauth::version(), std::string_view(CLOUDAUTH_EXPECTED_VERSION));
    CHECK_EQ(cloudauth::result_name(CLOUDAUTH_ERR_TIMEOUT), std::string_view("CLOUDAUTH_ERR_TIMEOUT"));
    CHECK_EQ(cloudauth::result_name(CLOUDAUTH_OK), std::string_view("CLOUDAUTH_OK"));
}

void test_types_are_move_only() {
    static_assert(!std::is_copy_constructible<cloudauth::Config>::value, "Config is move-only");
    static_assert(!std::is_copy_assignable<cloudauth::Config>::value, "Config is move-only");
    static_assert(!std::is_copy_constructible<cloudauth::Session>::value, "Session is move-only");
    static_assert(!std::is_copy_assignable<cloudauth::Session>::value, "Session is move-only");
    static_assert(!std::is_copy_constructible<cloudauth::Response>::value, "Response is move-only");
    static_assert(!std::is_copy_assignable<cloudauth::Response>::value, "Response is move-only");
    static_assert(std::is_nothrow_move_constructible<cloudauth::Session>::value, "");
    static_assert(std::is_nothrow_move_assignable<cloudauth::Session>::value, "");
    static_assert(std::is_nothrow_move_constructible<cloudauth::Response>::value, "");
    static_assert(std::is_nothrow_move_constructible<cloudauth::Config>::value, "");
    static_assert(std::is_base_of<std::runtime_error, cloudauth::Error>::value, "");
    // A session is shared by const reference: its methods are const.
    using Token = decltype(std::declval<const cloudauth::Session&>().token());
    using Req = decltype(std::declval<const cloudauth::Session&>().request("GET", "/"));
    static_assert(std::is_same<Token, std::string>::value, "");
    static_assert(std::is_same<Req, cloudauth::Response>::value, "");
    CHECK(true);
}

void test_config_init_list_and_set() {
    std::string token_url = standin_url("/connect/token"), base = standin_url();
    cloudauth::Config cfg{{"client_id", "demo-client"}, {"client_secret", "demo-secret"}};
    cloudauth::Config& same = cfg.set("token_url", token_url).set("base_url", base).set("scope", "ocr.read");
    CHECK(&same == &cfg);
    CHECK(static_cast<bool>(cfg));
    CHECK(cfg.get() != nullptr);
    // later settings override earlier ones
    cfg.set("auth_method", "client_secret_basic").set("auth_method", "client_secret_post");

    const cloudauth::Session session(cfg);
    std::string token = session.token();
    CHECK(!token.empty());
    Json stats = STATS();
    CHECK_EQ(stats.num("token_requests"), 1L);
    CHECK_EQ(stats.str("last_token_request.form.client_id"), std::string("demo-client"));
    CHECK_EQ(stats.str("last_token_request.form.scope"), std::string("ocr.read"));
    CHECK_EQ(stats.str("last_token_request.form.grant_type"), std::string("client_credentials"));

    // the session copied the config: changing the config afterwards does not affect it
    cfg.set("token_url", "http://127.0.0.1:9/connect/token");
    session.invalidate();
    CHECK(!session.token().empty());
    CHECK_EQ(STAT("token_requests"), 2L);
}

void test_config_bad_key_and_values() {
    cloudauth::Config cfg;
    Caught c = CHECK_THROWS(cfg.set("no_such_key", "1"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "no_such_key");
    CHECK_CONTAINS(c.what, "CLOUDAUTH_ERR_INVALID_ARGUMENT");

    c = CHECK_THROWS(cfg.set("timeout_ms", "soon"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "timeout_ms");

    // in the initializer list too
    c = CHECK_THROWS((cloudauth::Config{{"client_id", "x"}, {"bogus_key", "y"}}), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "bogus_key");

    // an embedded NUL would cut the string short in C: rejected, and the value is not shown
    std::string secret_with_nul("Zq9-sekrit\0tail", 15);
    c = CHECK_THROWS(cfg.set("client_secret", secret_with_nul), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "client_secret");
    CHECK_LACKS(c.what, "Zq9-sekrit");
    c = CHECK_THROWS(cfg.set(std::string("client_id\0x", 11), "v"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "NUL");

    // a failed set leaves the config usable
    cfg.set("client_id", "demo-client").set("client_secret", "demo-secret");
}

void test_session_needs_credentials() {
    cloudauth::Config cfg{{"client_id", "demo-client"}};
    Caught c = CHECK_THROWS(cloudauth::Session{cfg}, CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "client_secret");

    // plain http to a remote host would carry the secret: refused before anything is sent
    cloudauth::Config remote{{"client_id", "demo-client"},
                             {"client_secret", "demo-secret"},
                             {"token_url", "http://example.com/connect/token"}};
    c = CHECK_THROWS(cloudauth::Session{remote}, CLOUDAUTH_ERR_INSECURE_URL);
    CHECK_CONTAINS(c.message, "example.com");
    CHECK_LACKS(c.what, "demo-secret");
}

void test_token_cached_and_invalidated() {
    const cloudauth::Session session = standin_session();
    std::string t1 = session.token();
    std::string t2 = session.token();
    CHECK(!t1.empty());
    CHECK_EQ(t1.size(), std::strlen(t1.c_str()));  // no stray NUL from the buffer protocol
    CHECK(t1 == t2);
    CHECK_EQ(STAT("token_requests"), 1L);

    // the request carries exactly that token
    cloudauth::Response r = session.request("GET", "/headers");
    CHECK_EQ(r.status(), 200);
    CHECK(PARSE_JSON(r.body()).str("headers.authorization") == "Bearer " + t1);

    session.invalidate();
    std::string t3 = session.token();
    CHECK(!t3.empty());
    CHECK(t3 != t1);
    CHECK_EQ(STAT("token_requests"), 2L);

    // invalidate_token: a token that is no longer current leaves the cached one alone
    session.invalidate_token(t1);
    CHECK(session.token() == t3);
    CHECK_EQ(STAT("token_requests"), 2L);
    session.invalidate_token(t3);
    std::string t4 = session.token();
    CHECK(t4 != t3);
    CHECK_EQ(STAT("token_requests"), 3L);
}

void test_token_expires_in() {
    CTL_CONFIG("{\"token_expires_in\": 120}");
    const cloudauth::Session session = standin_session({{"refresh_skew_s", "0"}});
    std::chrono::seconds left = session.token_expires_in();  // fetches the first token
    CHECK(left.count() >= 118 && left.count() <= 120);
    CHECK_EQ(STAT("token_requests"), 1L);
    session.token();
    CHECK(session.token_expires_in() <= left);
    CHECK_EQ(STAT("token_requests"), 1L);
}

void test_token_longer_than_first_buffer() {
    // token() starts with a 1 KiB buffer; a 5000-byte token takes the BUFFER_TOO_SMALL path.
    std::string long_token(5000, 'k');
    long_token[0] = 'L';
    long_token.back() = 'Z';
    CTL_CONFIG("{\"token_script\": [{\"status\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, "
               "\"body\": {\"access_token\": \"" + long_token + "\", \"expires_in\": 3600, \"token_type\": \"Bearer\"}}]}");
    const cloudauth::Session session = standin_session();
    std::string t = session.token();
    CHECK_EQ(t.size(), std::size_t{5000});
    CHECK(t == long_token);
    CHECK(session.token() == long_token);  // cached
    CHECK_EQ(STAT("token_requests"), 1L);
}

void test_request_get_with_headers() {
    const cloudauth::Session session = standin_session();
    cloudauth::Response r = session.request("GET", "/headers", {{"X-Test-One", "1"}, {"X-Test-Two", "two words"}});
    CHECK_EQ(r.status(), 200);
    Json j = PARSE_JSON(r.body());
    CHECK_EQ(j.str("headers.x-test-one"), std::string("1"));
    CHECK_EQ(j.str("headers.x-test-two"), std::string("two words"));

    // headers from a std::map, and an absolute URL
    std::map<std::string, std::string> hmap{{"X-From-Map", "yes"}};
    r = session.request("GET", standin_url("/headers"), hmap);
    CHECK_EQ(r.status(), 200);
    CHECK_EQ(PARSE_JSON(r.body()).str("headers.x-from-map"), std::string("yes"));

    // a std::vector of string_view pairs works too
    std::vector<std::pair<std::string_view, std::string_view>> hv{{"X-View", "v"}};
    r = session.request("GET", "/headers", hv);
    CHECK_EQ(PARSE_JSON(r.body()).str("headers.x-view"), std::string("v"));
    CHECK_EQ(STAT("api_requests"), 3L);
    CHECK_EQ(STAT("token_requests"), 1L);
}

void test_request_binary_body_round_trip() {
    const cloudauth::Session session = standin_session();
    std::string all_bytes;
    for (int i = 0; i < 256; ++i) all_bytes += static_cast<char>(i);
    all_bytes += std::string("\0\0after-nuls", 13);

    // std::string body (with NUL bytes)
    cloudauth::Response r = session.request("POST", "/echo", {{"Content-Type", "application/octet-stream"}}, all_bytes);
    CHECK_EQ(r.status(), 200);
    CHECK_EQ(r.body().size(), all_bytes.size());
    CHECK(r.body() == all_bytes);
    CHECK(r.text() == all_bytes);
    CHECK_EQ(r.header("X-Echo-Method").value_or("(absent)"), std::string("POST"));

    // std::vector<uint8_t> body with PUT
    std::vector<std::uint8_t> bytes(all_bytes.begin(), all_bytes.end());
    r = session.request("PUT", "/echo", {}, bytes);
    CHECK_EQ(r.status(), 200);
    CHECK(r.body() == all_bytes);
    CHECK_EQ(r.header("x-echo-method").value_or("(absent)"), std::string("PUT"));

    // pointer + size, and a string literal
    r = session.request("POST", "/echo", {}, cloudauth::Body(bytes.data(), 10));
    CHECK(r.body() == all_bytes.substr(0, 10));
    r = session.request("POST", "/echo", {}, "plain text");
    CHECK_EQ(r.body(), std::string_view("plain text"));

    // no body: empty
    r = session.request("GET", "/echo?a=1&b=two");
    CHECK_EQ(r.status(), 200);
    CHECK(r.body().empty());
    CHECK_EQ(r.header("X-Echo-Query").value_or("(absent)"), std::string("a=1&b=two"));
}

void test_response_headers() {
    const cloudauth::Session session = standin_session();
    cloudauth::Response r = session.request("POST", "/echo", {}, "x");
    REQUIRE(r.status() == 200);
    // present, in any case
    CHECK_EQ(r.header("Content-Type").value_or("(absent)"), std::string("application/octet-stream"));
    CHECK_EQ(r.header("content-type").value_or("(absent)"), std::string("application/octet-stream"));
    CHECK_EQ(r.header("CONTENT-TYPE").value_or("(absent)"), std::string("application/octet-stream"));
    CHECK_EQ(r.header("Content-Length").value_or("(absent)"), std::string("1"));
    // absent
    std::optional<std::string> none = r.header("X-Not-There");
    CHECK(!none.has_value());
    CHECK(!r.header("").has_value());
    // a NUL in the name is bad input, not "absent"
    CHECK_THROWS(r.header(std::string("Content-Type\0x", 14)), CLOUDAUTH_ERR_INVALID_ARGUMENT);

    // the whole list: lower-case names, and it agrees with header()
    cloudauth::Headers all = r.headers();
    bool found_ct = false, found_method = false;
    for (const auto& h : all) {
        for (char ch : h.first) CHECK(!(ch >= 'A' && ch <= 'Z'));
        if (h.first == "content-type") found_ct = h.second == "application/octet-stream";
        if (h.first == "x-echo-method") found_method = h.second == "POST";
    }
    CHECK(found_ct);
    CHECK(found_method);
    CHECK(all.size() >= 4);
}

void test_http_errors_are_responses() {
    const cloudauth::Session session = standin_session();
    cloudauth::Response r = session.request("GET", "/status/404");
    CHECK_EQ(r.status(), 404);
    CHECK_EQ(PARSE_JSON(r.body()).num("status"), 404L);
    r = session.request("GET", "/status/500");
    CHECK_EQ(r.status(), 500);
    // a 403 is the caller's answer: no token refresh
    r = session.request("GET", "/status/403");
    CHECK_EQ(r.status(), 403);
    CHECK_EQ(STAT("token_requests"), 1L);
}

void test_bad_request_input() {
    const cloudauth::Session session = standin_session();
    // CR/LF in a header (the library refuses it)
    Caught c = CHECK_THROWS(session.request("GET", "/headers", {{"X-Evil", "a\r\nX-Injected: 1"}}),
                            CLOUDAUTH_ERR_INVALID_ARGUMENT);
    // a colon in the name would be split differently by the C side: refused, name not echoed
    c = CHECK_THROWS(session.request("GET", "/headers", {{"Authorization: Bearer Zq9tok", "x"}}),
                     CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_LACKS(c.what, "Zq9tok");
    c = CHECK_THROWS(session.request("GET", "/headers", {{"X-Name: with-colon", "v"}}), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "':'");
    // the session owns the Authorization header
    c = CHECK_THROWS(session.request("GET", "/headers", {{"Authorization", "Bearer mine"}}),
                     CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "uthorization");
    CHECK_THROWS(session.request("GET", "/headers", {{"", "x"}}), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    // NUL bytes in strings the C ABI takes NUL-terminated
    c = CHECK_THROWS(session.request("GET", std::string("/headers\0/x", 11)), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "url");
    CHECK_THROWS(session.request(std::string("GET\0", 4), "/headers"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    c = CHECK_THROWS(session.request("GET", "/headers", {{"X-Key", std::string("Zq9val\0", 7)}}),
                     CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "X-Key");
    CHECK_LACKS(c.what, "Zq9val");
    CHECK_THROWS(session.invalidate_token(std::string("a\0b", 3)), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    // a bad method or URL
    CHECK_THROWS(session.request("G E T", "/headers"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(session.request("GET", "ftp://127.0.0.1/x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    // nothing reached the API
    CHECK_EQ(STAT("api_requests"), 0L);
    // and the session still works
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

void test_move_semantics() {
    cloudauth::Session a = standin_session();
    std::string t = a.token();
    cloudauth::Session b(std::move(a));
    CHECK(static_cast<bool>(b));
    CHECK(!static_cast<bool>(a));  // NOLINT: checking the moved-from state is the point
    CHECK(a.get() == nullptr);
    CHECK(b.token() == t);  // same session, same cached token

    // the moved-from session throws Error, it does not crash
    Caught c = CHECK_THROWS(a.token(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "moved");
    CHECK_THROWS(a.request("GET", "/headers"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(a.invalidate(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(a.invalidate_token("x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);

    // move assignment: the old session of the target is freed, the moved-from one refilled
    a = standin_session();
    CHECK(static_cast<bool>(a));
    CHECK(!a.token().empty());
    a = std::move(b);
    CHECK(a.token() == t);
    CHECK_THROWS(b.token(), CLOUDAUTH_ERR_INVALID_ARGUMENT);

    // responses: the body view stays valid in the moved-to object
    cloudauth::Response r1 = a.request("POST", "/echo", {}, "moved body");
    std::string_view before = r1.body();
    cloudauth::Response r2(std::move(r1));
    CHECK(r2.body() == "moved body");
    CHECK(before == "moved body");
    CHECK_EQ(r2.status(), 200);
    c = CHECK_THROWS(r1.status(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "Response");
    CHECK_THROWS(r1.body(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(r1.header("content-type"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(r1.headers(), CLOUDAUTH_ERR_INVALID_ARGUMENT);

    // configs
    cloudauth::Config c1 = standin_config();
    cloudauth::Config c2(std::move(c1));
    CHECK_THROWS(c1.set("scope", "x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(cloudauth::Session{c1}, CLOUDAUTH_ERR_INVALID_ARGUMENT);
    cloudauth::Session from_moved_to(c2);
    CHECK(!from_moved_to.token().empty());
}

void test_threads_share_one_session() {
    constexpr int kThreads = 8;
    // A slow token endpoint, so that every thread asks while the first fetch is in flight.
    CTL_CONFIG("{\"token_delay_ms\": " + std::to_string(300 * time_factor()) + "}");
    const cloudauth::Session session = standin_session();
    const cloudauth::Session& shared = session;

    Latch start(kThreads);
    std::vector<std::string> tokens(kThreads), auth(kThreads), errors(kThreads);
    std::vector<int> statuses(kThreads, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
        threads.emplace_back([&, i] {
            try {
                start.arrive_and_wait();
                tokens[i] = shared.token();
                cloudauth::Response r = shared.request("GET", "/headers", {{"X-Thread", std::to_string(i)}});
                statuses[i] = r.status();
                JsonParser p(r.body());
                Json j = p.parse();
                auth[i] = j.str("headers.authorization");
                if (j.str("headers.x-thread") != std::to_string(i)) errors[i] = "wrong X-Thread echoed";
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    }
    for (auto& t : threads) t.join();

    for (int i = 0; i < kThreads; ++i) {
        CHECK_EQ(errors[i], std::string());
        CHECK_EQ(statuses[i], 200);
        CHECK(!tokens[i].empty());
        CHECK(tokens[i] == tokens[0]);
        CHECK(auth[i] == "Bearer " + tokens[0]);
    }
    Json stats = STATS();
    CHECK_EQ(stats.num("token_requests"), 1L);  // single flight
    CHECK_EQ(stats.num("api_requests"), static_cast<long>(kThreads));
    CHECK_EQ(stats.num("unauthorized"), 0L);
}

void test_retry_once_after_401() {
    const cloudauth::Session session = standin_session();
    std::string t1 = session.token();
    CTL_REVOKE();  // the server forgets t1; the session does not know yet

    cloudauth::Response r = session.request("GET", "/headers");
    CHECK_EQ(r.status(), 200);
    std::string t2 = session.token();
    CHECK(t2 != t1);
    CHECK(PARSE_JSON(r.body()).str("headers.authorization") == "Bearer " + t2);
    Json stats = STATS();
    CHECK_EQ(stats.num("token_requests"), 2L);
    CHECK_EQ(stats.num("unauthorized"), 1L);

    // two 401s in a row: one refresh, then the second 401 is the caller's Response
    CTL_CONFIG("{\"api_script\": [{\"status\": 401, \"body\": \"{}\"}, {\"status\": 401, \"body\": \"{}\"}]}");
    r = session.request("GET", "/headers");
    CHECK_EQ(r.status(), 401);
    CHECK_EQ(STAT("token_requests"), 3L);
}

void test_auth_rejected() {
    const cloudauth::Session session = standin_session({{"client_secret", "Wr0ng-Zq9-secret"}});
    Caught c = CHECK_THROWS(session.token(), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_CONTAINS(c.message, "invalid_client");
    CHECK_CONTAINS(c.message, "401");
    CHECK_LACKS(c.what, "Wr0ng-Zq9-secret");
    c = CHECK_THROWS(session.request("GET", "/headers"), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_LACKS(c.what, "Wr0ng-Zq9-secret");
    CHECK_EQ(STAT("api_requests"), 0L);
    // catchable as the std::runtime_error it is
    bool caught = false;
    try {
        session.token();
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()).find("CLOUDAUTH_ERR_AUTH_REJECTED") != std::string::npos;
    }
    CHECK(caught);
}

void test_timeout() {
    long t = 300 * time_factor();
    const cloudauth::Session session = standin_session({{"timeout_ms", std::to_string(t)}});
    CHECK(!session.token().empty());  // fetched within the limit
    Caught c = CHECK_THROWS(session.request("GET", "/delay/" + std::to_string(4 * t)), CLOUDAUTH_ERR_TIMEOUT);
    CHECK_CONTAINS(c.message, "/delay/");
    // within the limit is fine, and the session is still usable
    CHECK_EQ(session.request("GET", "/delay/10").status(), 200);
}

void test_messages_never_contain_secrets() {
    // a network failure after the token was fetched: neither the secret nor the token appear
    const cloudauth::Session session = standin_session({{"connect_timeout_ms", "2000"}});
    std::string token = session.token();
    Caught c = CHECK_THROWS(session.request("GET", "http://127.0.0.1:9/x?api_key=K3y-Zq9"), CLOUDAUTH_ERR_NETWORK);
    CHECK_CONTAINS(c.message, "127.0.0.1:9");
    CHECK_LACKS(c.what, "demo-secret");
    CHECK_LACKS(c.what, token);
    CHECK_LACKS(c.what, "K3y-Zq9");

    // a token endpoint that fails with a body echoing the secret: still not in the message
    CTL_CONFIG("{\"token_script\": [{\"status\": 400, \"headers\": {\"Content-Type\": \"application/json\"}, "
               "\"body\": {\"error\": \"invalid_request\", \"error_description\": \"client_secret Sec-Zq9-42 is malformed\"}}]}");
    const cloudauth::Session other = standin_session({{"client_secret", "Sec-Zq9-42"}});
    c = CHECK_THROWS(other.token(), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_CONTAINS(c.message, "invalid_request");
    CHECK_LACKS(c.what, "Sec-Zq9-42");
    CHECK_LACKS(c.what, "demo-secret");
}


// ---- lifecycle: stats, rotation, events, environment -----------------------------------------

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void test_stats() {
    const cloudauth::Session session = standin_session();
    cloudauth::Stats st = session.stats();
    CHECK_EQ(st.token_requests, std::uint64_t{0});
    CHECK_EQ(st.api_requests, std::uint64_t{0});
    CHECK_EQ(st.token_expires_in_ms, std::int64_t{-1});  // no token yet

    session.token();
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
    CTL_REVOKE();  // the next request gets a 401, then is resent with a new token
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
    st = session.stats();
    CHECK_EQ(st.token_requests, std::uint64_t{2});
    CHECK_EQ(st.token_failures, std::uint64_t{0});
    CHECK_EQ(st.api_requests, std::uint64_t{3});
    CHECK_EQ(st.unauthorized_resends, std::uint64_t{1});
    CHECK_EQ(st.connection_resends, std::uint64_t{0});
    CHECK_EQ(st.shared_cache_hits, std::uint64_t{0});
    CHECK(st.token_expires_in_ms > 3500 * 1000L && st.token_expires_in_ms <= 3600 * 1000L);
    CHECK_EQ(STAT("token_requests"), 2L);  // the counters agree with the server

    // a failure is counted too
    const cloudauth::Session bad = standin_session({{"client_secret", "wrong"}});
    CHECK_THROWS(bad.token(), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_EQ(bad.stats().token_failures, std::uint64_t{1});
    CHECK_EQ(bad.stats().token_requests, std::uint64_t{1});

    cloudauth::Session moved = standin_session();
    cloudauth::Session to(std::move(moved));
    CHECK_THROWS(moved.stats(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
}

void test_set_credentials() {
    const cloudauth::Session session = standin_session();
    std::string t1 = session.token();
    // The server now accepts only a new pair: the current token still works until dropped.
    CTL_CONFIG("{\"clients\": {\"rotated-id\": \"R0tated-Zq9-secret\"}}");
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
    session.invalidate();
    Caught c = CHECK_THROWS(session.token(), CLOUDAUTH_ERR_AUTH_REJECTED);

    session.set_credentials("rotated-id", "R0tated-Zq9-secret");
    CHECK(session.token() == session.token());  // one fetch with the new pair
    Json stats = STATS();
    CHECK_EQ(stats.str("last_token_request.form.client_id"), std::string("rotated-id"));
    CHECK_EQ(stats.str("last_token_request.form.client_secret"), std::string("R0tated-Zq9-secret"));
    CHECK_EQ(stats.num("token_requests"), 3L);

    // and back
    CTL_CONFIG("{\"clients\": null}");
    session.set_credentials("demo-client", "demo-secret");
    session.invalidate();
    CHECK(!session.token().empty());
    CHECK_EQ(STATS().str("last_token_request.form.client_id"), std::string("demo-client"));

    // bad input: nothing changes, and the secret is not shown
    c = CHECK_THROWS(session.set_credentials("x", std::string("Zq9-new\0sec", 11)), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "client_secret");
    CHECK_LACKS(c.what, "Zq9-new");
    CHECK_THROWS(session.set_credentials("", "Zq9-secret"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    session.invalidate();
    CHECK(!session.token().empty());
    CHECK_EQ(STATS().str("last_token_request.form.client_id"), std::string("demo-client"));
}

// Events as the handler saw them (copied: the views die with the call).
struct SeenEvent {
    std::string kind, reason, message;
    cloudauth_result result;
    int http_status;
};

class EventLog {
public:
    void add(const cloudauth::Event& e) {
        std::lock_guard<std::mutex> g(m_);
        seen_.push_back({std::string(e.kind_name()), std::string(e.reason), std::string(e.message), e.result,
                         e.http_status});
        cv_.notify_all();
    }
    // Waits (bounded) until at least n events arrived; returns a copy of them.
    std::vector<SeenEvent> wait_for(std::size_t n) {
        std::unique_lock<std::mutex> g(m_);
        cv_.wait_for(g, std::chrono::seconds(5 * time_factor()), [&] { return seen_.size() >= n; });
        return seen_;
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::vector<SeenEvent> seen_;
};

void test_events() {
    auto log = std::make_shared<EventLog>();
    std::weak_ptr<EventLog> weak = log;
    std::atomic<const cloudauth::Session*> self{nullptr};
    std::atomic<int> reentered{0};
    std::string t1;
    {
        std::optional<cloudauth::Session> session;
        {
            cloudauth::Config cfg = standin_config({{"refresh_mode", "inline"}});
            // any callable: this one owns the log and calls back into the library
            cfg.on_event([log, &self, &reentered](const cloudauth::Event& e) {
                log->add(e);
                if (const cloudauth::Session* s = self.load()) {
                    if (s->stats().token_requests > 0) ++reentered;
                }
            });
            session.emplace(cfg);
        }  // the config is gone; the session keeps the handler alive
        log.reset();
        self = &*session;

        t1 = session->token();
        std::vector<SeenEvent> ev = weak.lock()->wait_for(1);
        REQUIRE(ev.size() == 1);
        CHECK_EQ(ev[0].kind, std::string("token_fetched"));
        CHECK_EQ(ev[0].reason, std::string("first_use"));
        CHECK_EQ(ev[0].result, CLOUDAUTH_OK);
        CHECK_EQ(ev[0].http_status, 200);

        session->invalidate();
        session->token();
        CTL_REVOKE();
        CHECK_EQ(session->request("GET", "/headers").status(), 200);
        CTL_CONFIG("{\"clients\": {\"other\": \"other-secret\"}}");
        session->invalidate();
        CHECK_THROWS(session->token(), CLOUDAUTH_ERR_AUTH_REJECTED);

        ev = weak.lock()->wait_for(5);
        REQUIRE(ev.size() == 5);
        CHECK_EQ(ev[1].kind, std::string("token_fetched"));
        CHECK_EQ(ev[1].reason, std::string("invalidated"));
        CHECK_EQ(ev[2].kind, std::string("unauthorized"));
        CHECK_EQ(ev[2].http_status, 401);
        CHECK_EQ(ev[3].kind, std::string("token_fetched"));
        CHECK_EQ(ev[3].reason, std::string("unauthorized"));
        CHECK_EQ(ev[4].kind, std::string("token_fetch_failed"));
        CHECK_EQ(ev[4].result, CLOUDAUTH_ERR_AUTH_REJECTED);
        CHECK_EQ(ev[4].http_status, 401);
        for (const SeenEvent& e : ev) {
            CHECK_LACKS(e.message, "demo-secret");
            CHECK_LACKS(e.message, t1);
        }
        CHECK(reentered.load() >= 4);
        self = nullptr;
    }
    // config and session gone: the callable (and the log it owned) is released
    CHECK(weak.expired());
}

void test_event_handler_that_throws() {
    std::atomic<int> calls{0};
    cloudauth::Config cfg = standin_config();
    cfg.on_event([&calls](const cloudauth::Event&) {
        ++calls;
        throw std::runtime_error("handler failure");  // must not unwind into the library
    });
    const cloudauth::Session session(cfg);
    CHECK(!session.token().empty());
    session.invalidate();
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
    CHECK_EQ(calls.load(), 2);

    // on_event(nullptr) removes the handler for later sessions
    cfg.on_event(nullptr);
    const cloudauth::Session quiet(cfg);
    quiet.token();
    CHECK_EQ(calls.load(), 2);
    // a plain function works too
    static std::atomic<int> fn_calls{0};
    fn_calls = 0;
    struct F {
        static void on(const cloudauth::Event&) { ++fn_calls; }
    };
    cfg.on_event(&F::on);
    const cloudauth::Session plain(cfg);
    plain.token();
    CHECK_EQ(fn_calls.load(), 1);
}

void test_event_handler_lives_as_long_as_the_library_holds_it() {
    // The library releases the handler (cloudauth_config_set_event_callback_with_release) once
    // neither the config nor a session made from it holds it: not earlier, and then at once.
    auto owned = std::make_shared<std::atomic<int>>(0);
    std::weak_ptr<std::atomic<int>> weak = owned;
    cloudauth::Config cfg = standin_config({{"refresh_mode", "inline"}});
    cfg.on_event([owned](const cloudauth::Event&) { ++*owned; });
    owned.reset();
    {
        const cloudauth::Session session(cfg);
        cfg.on_event(nullptr);  // the config lets go; the session still holds it
        CHECK(!weak.expired());
        CHECK(!session.token().empty());
        auto alive = weak.lock();
        REQUIRE(alive != nullptr);
        CHECK_EQ(alive->load(), 1);
    }
    CHECK(weak.expired());
}

void test_background_refresh_events() {
    // Short tokens in background mode: the refresh is done off the caller's thread, reported
    // with the reason refresh_ahead, and counted in background_refreshes.
    CTL_CONFIG("{\"token_expires_in\": " + std::to_string(2 * time_factor()) + "}");
    auto log = std::make_shared<EventLog>();
    cloudauth::Config cfg = standin_config({{"refresh_mode", "background"}});
    cfg.on_event([log](const cloudauth::Event& e) { log->add(e); });
    const cloudauth::Session session(cfg);
    std::string t1 = session.token();
    auto t0 = std::chrono::steady_clock::now();
    std::string last = t1;
    while (last == t1 && seconds_since(t0) < 3.0 * static_cast<double>(time_factor())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        last = session.token();
    }
    CHECK(last != t1);
    std::vector<SeenEvent> ev = log->wait_for(2);
    REQUIRE(ev.size() >= 2);
    CHECK_EQ(ev[1].reason, std::string("refresh_ahead"));
    CHECK(session.stats().background_refreshes >= 1);
}

void test_session_origin() {
    // The library's serialization: scheme and host in lower case, no default port, IPv6 in
    // brackets; the default base_url when none was set.
    const std::pair<const char*, const char*> cases[] = {
        {"HTTPS://API.Example.COM:443/v4.0/words?x=1", "https://api.example.com"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"https://[::1]:8443/x", "https://[::1]:8443"},
    };
    for (const auto& c : cases) {
        const cloudauth::Session s(cloudauth::Config{
            {"client_id", "a"}, {"client_secret", "b"}, {"token_url", "https://id.example.com/t"}, {"base_url", c.first}});
        CHECK_EQ(std::string(s.origin()), std::string(c.second));
    }
    cloudauth::Session none(
        cloudauth::Config{{"client_id", "a"}, {"client_secret", "b"}, {"token_url", "https://id.example.com/t"}});
    std::string_view before = none.origin();
    CHECK_EQ(std::string(before), std::string("https://api.aspose.cloud"));
    cloudauth::Session moved(std::move(none));
    CHECK_EQ(std::string(moved.origin()), std::string("https://api.aspose.cloud"));
    CHECK(moved.origin().data() == before.data()); // the session's string, not a copy
    CHECK_THROWS(none.origin(), CLOUDAUTH_ERR_INVALID_ARGUMENT);
}

void test_config_from_env() {
    std::string token_url = standin_url("/connect/token"), base = standin_url();
    ::setenv("CPPTEST_CLIENT_ID", "demo-client", 1);
    ::setenv("CPPTEST_CLIENT_SECRET", "demo-secret", 1);
    ::setenv("CPPTEST_TOKEN_URL", token_url.c_str(), 1);
    ::setenv("CPPTEST_BASE_URL", base.c_str(), 1);
    ::setenv("CPPTEST_SCOPE", "from-env", 1);
    ::setenv("CPPTEST_LIBRARY", "ignored: not a key", 1);
    {
        cloudauth::Config cfg = cloudauth::Config::from_env("CPPTEST_");
        const cloudauth::Session session(cfg);
        CHECK_EQ(std::string(session.origin()), base); // base_url from the environment
        CHECK_EQ(session.request("GET", "/headers").status(), 200);
        CHECK_EQ(STATS().str("last_token_request.form.scope"), std::string("from-env"));
        // set() afterwards overrides the environment
        cfg.set("scope", "from-code");
        const cloudauth::Session other(cfg);
        other.token();
        CHECK_EQ(STATS().str("last_token_request.form.scope"), std::string("from-code"));
    }
    ::setenv("CPPTEST_TIMEOUT_MS", "soon", 1);
    Caught c = CHECK_THROWS(cloudauth::Config::from_env("CPPTEST_"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(c.message, "CPPTEST_TIMEOUT_MS");
    CHECK_LACKS(c.what, "demo-secret");
    for (const char* k : {"CLIENT_ID", "CLIENT_SECRET", "TOKEN_URL", "BASE_URL", "SCOPE", "LIBRARY", "TIMEOUT_MS"}) {
        ::unsetenv((std::string("CPPTEST_") + k).c_str());
    }
}

// ---- async ----------------------------------------------------------------------------------

void test_async_futures() {
    const cloudauth::Session session = standin_session();
    std::future<std::string> tf = session.token_async();
    std::string token = tf.get();
    CHECK(!token.empty());
    CHECK(token == session.token());

    std::vector<std::future<cloudauth::Response>> fs;
    for (int i = 0; i < 5; ++i) {
        fs.push_back(session.request_async("GET", "/headers", {{"X-Op", std::to_string(i)}}));
    }
    fs.push_back(session.request_async("POST", "/echo", {}, std::string("async\0body", 10)));
    for (int i = 0; i < 5; ++i) {
        cloudauth::Response r = fs[static_cast<std::size_t>(i)].get();
        CHECK_EQ(r.status(), 200);
        Json j = PARSE_JSON(r.body());
        CHECK_EQ(j.str("headers.x-op"), std::to_string(i));
        CHECK(j.str("headers.authorization") == "Bearer " + token);
    }
    CHECK(fs[5].get().body() == std::string("async\0body", 10));
    CHECK_EQ(STAT("token_requests"), 1L);

    // an HTTP status is a Response, a failure is the Error in the future
    CHECK_EQ(session.request_async("GET", "/status/404").get().status(), 404);
    std::future<cloudauth::Response> down = session.request_async("GET", "http://127.0.0.1:9/x");
    Caught c = CHECK_THROWS(down.get(), CLOUDAUTH_ERR_NETWORK);
    CHECK_CONTAINS(c.message, "127.0.0.1:9");
    // bad input throws at once: nothing was started
    CHECK_THROWS(session.request_async("GET", "ftp://127.0.0.1/x"), CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_THROWS(session.request_async("GET", "/headers", {{"Authorization", "Bearer x"}}),
                 CLOUDAUTH_ERR_INVALID_ARGUMENT);
    // a failed token fetch reaches token_async's future
    const cloudauth::Session bad = standin_session({{"client_secret", "wrong"}});
    CHECK_THROWS(bad.token_async().get(), CLOUDAUTH_ERR_AUTH_REJECTED);
    CHECK_THROWS(bad.request_async("GET", "/headers").get(), CLOUDAUTH_ERR_AUTH_REJECTED);
}

void test_async_many_in_flight_from_one_thread() {
    // 64 requests that each take 500 ms, started from this thread: together they take about
    // 500 ms, one after another 32 s.
    constexpr int kOps = 64;
    const long delay = 500;
    const cloudauth::Session session = standin_session();
    session.token();
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::future<cloudauth::Response>> fs;
    for (int i = 0; i < kOps; ++i) fs.push_back(session.request_async("GET", "/delay/" + std::to_string(delay)));
    double started = seconds_since(t0);
    int ok = 0;
    for (auto& f : fs) ok += f.get().status() == 200;
    double took = seconds_since(t0);
    CHECK_EQ(ok, kOps);
    CHECK(started < 0.4 * static_cast<double>(time_factor()));  // starting does not wait
    check_at(took < 4.0 * static_cast<double>(time_factor()), __FILE__, __LINE__,
             "64 x 500 ms in flight took " + std::to_string(took) + " s (not concurrent)");
    CHECK_EQ(STAT("api_requests"), static_cast<long>(kOps));
}

void test_async_callbacks() {
    const cloudauth::Session session = standin_session();
    // a move-only callable; it runs on another thread and may call blocking functions
    std::promise<std::pair<int, std::string>> p;
    std::future<std::pair<int, std::string>> f = p.get_future();
    auto owned = std::make_unique<int>(7);
    std::thread::id caller = std::this_thread::get_id();
    std::atomic<bool> other_thread{false};
    cloudauth::Operation op = session.request_async(
        "GET", "/headers", {}, {},
        [&session, &other_thread, caller, owned = std::move(owned), p = std::move(p)](
            cloudauth::Result<cloudauth::Response> r) mutable {
            other_thread = std::this_thread::get_id() != caller;
            std::string token = session.token();  // re-enters the library, blocking call
            p.set_value({r ? r.value().status() : -1, token});
        });
    CHECK(static_cast<bool>(op));
    REQUIRE(f.wait_for(std::chrono::seconds(10 * time_factor())) == std::future_status::ready);
    auto got = f.get();
    CHECK_EQ(got.first, 200);
    CHECK(got.second == session.token());
    CHECK(other_thread.load());

    // a token callback; an Error result
    std::promise<std::string> tp;
    auto tf = tp.get_future();
    session.token_async([&tp](cloudauth::Result<std::string> r) { tp.set_value(r ? r.value() : "failed"); });
    CHECK(tf.get() == session.token());
    std::promise<cloudauth_result> ep;
    auto ef = ep.get_future();
    session.request_async("GET", "http://127.0.0.1:9/x", {}, {}, [&ep](cloudauth::Result<cloudauth::Response> r) {
        ep.set_value(r ? CLOUDAUTH_OK : r.error().code());
        try {
            (void)r.value();  // value() of a failure throws its Error
        } catch (const cloudauth::Error&) {
        }
    });
    CHECK_EQ(ef.get(), CLOUDAUTH_ERR_NETWORK);

    // a callable that throws: caught, nothing crashes, the session goes on
    std::atomic<int> ran{0};
    for (int i = 0; i < 3; ++i) {
        session.request_async("GET", "/headers", {}, {}, [&ran](cloudauth::Result<cloudauth::Response>) {
            ++ran;
            throw std::runtime_error("callback failure");
        });
    }
    session.token_async([&ran](cloudauth::Result<std::string>) {
        ++ran;
        throw 42;
    });
    auto t0 = std::chrono::steady_clock::now();
    while (ran.load() < 4 && seconds_since(t0) < 10.0 * static_cast<double>(time_factor())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK_EQ(ran.load(), 4);
    CHECK_EQ(session.request_async("GET", "/headers").get().status(), 200);
}

void test_async_cancel() {
    const cloudauth::Session session = standin_session();
    session.token();
    auto alive = std::make_shared<int>(1);
    std::weak_ptr<int> weak = alive;
    std::promise<cloudauth_result> p;
    auto f = p.get_future();
    auto t0 = std::chrono::steady_clock::now();
    cloudauth::Operation op = session.request_async(
        "GET", "/delay/5000", {}, {}, [&p, alive](cloudauth::Result<cloudauth::Response> r) {
            p.set_value(r ? CLOUDAUTH_OK : r.error().code());
        });
    alive.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    op.cancel();
    op.cancel();  // idempotent
    REQUIRE(f.wait_for(std::chrono::seconds(3 * time_factor())) == std::future_status::ready);
    CHECK_EQ(f.get(), CLOUDAUTH_ERR_CANCELLED);
    CHECK(seconds_since(t0) < 4.0 * static_cast<double>(time_factor()));
    // the callable is released once it has run (wait: it is freed right after it returns)
    for (int i = 0; i < 200 && !weak.expired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(weak.expired());

    // cancelling a finished operation changes nothing; an empty handle is a no-op
    std::promise<cloudauth_result> p2;
    auto f2 = p2.get_future();
    cloudauth::Operation done = session.token_async([&p2](cloudauth::Result<std::string> r) {
        p2.set_value(r ? CLOUDAUTH_OK : r.error().code());
    });
    CHECK_EQ(f2.get(), CLOUDAUTH_OK);
    done.cancel();
    cloudauth::Operation empty;
    empty.cancel();
    CHECK(!static_cast<bool>(empty));
    // a dropped handle does not cancel
    std::future<cloudauth::Response> kept;
    {
        cloudauth::Operation dropped = session.request_async("GET", "/delay/50", {}, {},
                                                             [](cloudauth::Result<cloudauth::Response>) {});
        kept = session.request_async("GET", "/delay/50");
    }
    CHECK_EQ(kept.get().status(), 200);
}

void test_async_session_destroyed_in_flight() {
    std::vector<std::future<cloudauth::Response>> fs;
    std::future<std::string> tf;
    CTL_CONFIG("{\"token_delay_ms\": " + std::to_string(2000 * time_factor()) + "}");
    auto t0 = std::chrono::steady_clock::now();
    {
        const cloudauth::Session session = standin_session();
        tf = session.token_async();  // waits on the slow token endpoint
        for (int i = 0; i < 8; ++i) fs.push_back(session.request_async("GET", "/headers"));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }  // destroyed with everything in flight
    for (auto& f : fs) CHECK_THROWS(f.get(), CLOUDAUTH_ERR_CANCELLED);
    CHECK_THROWS(tf.get(), CLOUDAUTH_ERR_CANCELLED);
    CHECK(seconds_since(t0) < 1.9 * static_cast<double>(time_factor()));  // before the token came
}

void test_token_cached() {
    CTL_CONFIG("{\"token_delay_ms\": " + std::to_string(300 * time_factor()) + "}");
    const cloudauth::Session session = standin_session();
    CHECK(!session.token_cached().has_value());  // nothing yet: a fetch starts in the background
    std::optional<std::string> t;
    auto t0 = std::chrono::steady_clock::now();
    while (!(t = session.token_cached()) && seconds_since(t0) < 5.0 * static_cast<double>(time_factor())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(t.has_value());
    CHECK(*t == session.token());
    CHECK_EQ(STAT("token_requests"), 1L);
}

// ---- streamed bodies ------------------------------------------------------------------------

// `n` bytes that are not all alike (a piece out of order or lost shows).
std::string pattern_bytes(std::size_t n) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 7 + i / 251) & 0xff);
    return out;
}

void test_stream_download_in_order_head_first() {
    const cloudauth::Session session = standin_session();
    const std::string sent = pattern_bytes(300 * 1024);
    std::string got, order;
    std::size_t pieces = 0;
    int head_status = 0;
    std::optional<std::string> head_type;
    cloudauth::Response r = session.request(
        "POST", "/echo", {{"Content-Type", "application/octet-stream"}}, sent,
        [&](const std::uint8_t* data, std::size_t len) {
            if (order.empty() || order.back() != 'b') order += 'b';
            got.append(reinterpret_cast<const char*>(data), len);
            ++pieces;
            return true;
        },
        [&](const cloudauth::ResponseHead& head) {
            order += 'h';
            head_status = head.status;
            head_type = head.header("CONTENT-TYPE");
            return true;
        });
    CHECK_EQ(order, std::string("hb"));  // the head once, before every body piece
    CHECK_EQ(head_status, 200);
    CHECK(head_type == std::optional<std::string>("application/octet-stream"));
    CHECK(got == sent);  // every byte, in order
    CHECK(pieces >= 2);  // streamed, not handed over whole
    CHECK_EQ(r.status(), 200);
    CHECK(r.body().empty());
    CHECK(r.header("x-echo-method") == std::optional<std::string>("POST"));

    // no head callback; any status is an answer (the 404's body streams too)
    std::string body404;
    r = session.request("GET", "/nowhere", {}, {}, [&](const std::uint8_t* d, std::size_t n) {
        body404.append(reinterpret_cast<const char*>(d), n);
        return true;
    });
    CHECK_EQ(r.status(), 404);
    CHECK_CONTAINS(body404, "not_found");

    // an empty sink is bad input, not a crash
    CHECK_THROWS(session.request("GET", "/big?bytes=10", {}, {}, cloudauth::BodySink()), CLOUDAUTH_ERR_INVALID_ARGUMENT);
}

void test_stream_stop_early_then_session_works() {
    const cloudauth::Session session = standin_session();
    std::size_t got = 0;
    int calls = 0;
    Caught c = CHECK_THROWS(session.request("GET", "/big?bytes=4000000", {}, {},
                                            [&](const std::uint8_t*, std::size_t len) {
                                                got += len;
                                                return ++calls < 2;  // stop at the second piece
                                            }),
                            CLOUDAUTH_ERR_CANCELLED);
    CHECK_EQ(calls, 2);
    CHECK(got < 4000000);
    // a head callback that says no: the body never starts
    calls = 0;
    CHECK_THROWS(session.request(
                     "GET", "/big?bytes=1000", {}, {},
                     [&](const std::uint8_t*, std::size_t) { return ++calls > 0; },
                     [](const cloudauth::ResponseHead& h) { return h.status != 200; }),
                 CLOUDAUTH_ERR_CANCELLED);
    CHECK_EQ(calls, 0);
    // the session goes on: streamed and whole requests both work
    std::size_t total = 0;
    cloudauth::Response r = session.request("GET", "/big?bytes=70000", {}, {}, [&](const std::uint8_t*, std::size_t n) {
        total += n;
        return true;
    });
    CHECK_EQ(r.status(), 200);
    CHECK_EQ(total, std::size_t(70000));
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

void test_stream_callable_that_throws() {
    const cloudauth::Session session = standin_session();
    int calls = 0;
    bool caught = false;
    try {
        session.request("GET", "/big?bytes=200000", {}, {}, [&](const std::uint8_t*, std::size_t) -> bool {
            ++calls;
            throw std::logic_error("sink says Zq9-no");
        });
    } catch (const std::logic_error& e) {  // the callable's own exception, not a cloudauth::Error
        caught = std::string(e.what()) == "sink says Zq9-no";
    }
    CHECK(caught);
    CHECK_EQ(calls, 1);  // the request stopped at once
    caught = false;
    try {
        session.request(
            "GET", "/headers", {}, {}, [](const std::uint8_t*, std::size_t) { return true; },
            [](const cloudauth::ResponseHead&) -> bool { throw 42; });
    } catch (int v) {
        caught = v == 42;
    }
    CHECK(caught);
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

void test_stream_cap_and_deadline() {
    {
        const cloudauth::Session session = standin_session({{"max_response_bytes", "100000"}});
        std::size_t got = 0;
        CHECK_THROWS(session.request("GET", "/big?bytes=500000", {}, {},
                                     [&](const std::uint8_t*, std::size_t n) {
                                         got += n;
                                         return true;
                                     }),
                     CLOUDAUTH_ERR_TOO_LARGE);
        CHECK(got <= 100000);  // nothing past the cap reached the sink
    }
    long t = 400 * time_factor();
    const cloudauth::Session session = standin_session({{"timeout_ms", std::to_string(t)}});
    CHECK(!session.token().empty());
    int pieces = 0;
    std::size_t bytes = 0;
    auto t0 = std::chrono::steady_clock::now();
    // a slow sink: the body arrives, but the exchange outlives timeout_ms mid-stream (pieces
    // are at most 64 KiB: 3 MB takes over 45 of them, over 4.5 timeouts' worth of sleeping)
    CHECK_THROWS(session.request("GET", "/big?bytes=3000000", {}, {},
                                 [&](const std::uint8_t*, std::size_t n) {
                                     ++pieces;
                                     bytes += n;
                                     std::this_thread::sleep_for(std::chrono::milliseconds(40 * time_factor()));
                                     return true;
                                 }),
                 CLOUDAUTH_ERR_TIMEOUT);
    CHECK(pieces >= 1);
    CHECK(bytes < 3000000);  // cut short mid-stream, not at the end
    double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(spent < 3.0 * static_cast<double>(t) / 1000.0 + 1.0);
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

// A body reader over `data` that hands out at most `step` bytes a call and counts rewinds.
struct Upload {
    std::string data;
    std::size_t step = 7000;
    std::size_t pos = 0;
    int rewinds = 0;

    cloudauth::BodyReader reader() {
        return [this](std::uint8_t* buf, std::size_t cap) {
            std::size_t n = std::min({cap, step, data.size() - pos});
            std::memcpy(buf, data.data() + pos, n);
            pos += n;
            return n;
        };
    }
    cloudauth::BodyRewind rewinder() {
        return [this] {
            ++rewinds;
            pos = 0;
            return true;
        };
    }
};

void test_upload_known_and_unknown_length() {
    const cloudauth::Session session = standin_session();
    Upload up{pattern_bytes(200 * 1024)};
    cloudauth::Response r = session.request("PUT", "/echo", {{"Content-Type", "application/octet-stream"}},
                                            cloudauth::BodySource(up.reader(), static_cast<std::int64_t>(up.data.size())));
    CHECK_EQ(r.status(), 200);
    CHECK(r.body() == up.data);  // the server got every byte, in order
    Json stats = STATS();
    CHECK_EQ(stats.str("api_log.0.headers.content-length"), std::to_string(up.data.size()));
    CHECK(stats.is_null("api_log.0.headers.transfer-encoding"));

    Upload chunked{pattern_bytes(90 * 1024)};
    r = session.request("POST", "/echo", {}, cloudauth::BodySource(chunked.reader()));
    CHECK_EQ(r.status(), 200);
    CHECK(r.body() == chunked.data);
    stats = STATS();
    CHECK_EQ(stats.str("api_log.1.headers.transfer-encoding"), std::string("chunked"));

    // both sides streamed, and a std::istream as the source
    std::istringstream in(std::string("from a std::istream"));
    std::string echoed;
    r = session.request("POST", "/echo", {}, cloudauth::BodySource::from_stream(in),
                        [&](const std::uint8_t* d, std::size_t n) {
                            echoed.append(reinterpret_cast<const char*>(d), n);
                            return true;
                        });
    CHECK_EQ(r.status(), 200);
    CHECK_EQ(echoed, std::string("from a std::istream"));
    CHECK_EQ(STATS().str("api_log.2.headers.content-length"), std::string("19"));  // its length was known

    // a length the reader does not keep to: a clear error, and the session goes on
    Upload shorter{"short"};
    Caught c = CHECK_THROWS(session.request("POST", "/echo", {}, cloudauth::BodySource(shorter.reader(), 100)),
                            CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK(!c.message.empty());
    CHECK_THROWS(session.request("POST", "/echo", {}, cloudauth::BodySource(cloudauth::BodyReader())),
                 CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

void test_upload_rewound_after_401_and_307() {
    const cloudauth::Session session = standin_session();
    CHECK(!session.token().empty());
    CTL_REVOKE();  // the first send gets a 401: rewound, resent with a new token
    Upload up{pattern_bytes(50 * 1000)};
    cloudauth::Response r = session.request(
        "POST", "/echo", {}, cloudauth::BodySource(up.reader(), static_cast<std::int64_t>(up.data.size()), up.rewinder()));
    CHECK_EQ(r.status(), 200);
    CHECK(r.body() == up.data);
    CHECK_EQ(up.rewinds, 1);
    Json stats = STATS();
    CHECK_EQ(stats.num("unauthorized"), 1L);
    CHECK_EQ(stats.str("api_log.0.headers.content-length"), std::string("50000"));  // sent whole twice
    CHECK_EQ(stats.str("api_log.1.headers.content-length"), std::string("50000"));

    // a 307 keeps the method and the body: rewound and sent again
    Upload moved{pattern_bytes(30 * 1000)};
    std::string to = standin_url("/echo");
    r = session.request("POST", "/redirect?code=307&to=" + to, {},
                        cloudauth::BodySource(moved.reader(), cloudauth::BodySource::unknown_length, moved.rewinder()));
    CHECK_EQ(r.status(), 200);
    CHECK(r.body() == moved.data);
    CHECK_EQ(moved.rewinds, 1);
    stats = STATS();
    CHECK_EQ(stats.str("api_log.2.path").rfind("/redirect", 0), std::size_t(0));
    CHECK_EQ(stats.str("api_log.3.path"), std::string("/echo"));
    CHECK_EQ(stats.str("api_log.3.headers.transfer-encoding"), std::string("chunked"));
}

void test_upload_without_rewind_is_sent_once() {
    const cloudauth::Session session = standin_session();
    CHECK(!session.token().empty());
    CTL_REVOKE();
    Upload up{"one-shot body"};
    cloudauth::Response r = session.request("POST", "/echo", {}, cloudauth::BodySource(up.reader(), 13));
    CHECK_EQ(r.status(), 401);  // not sent again: the 401 is the answer
    CHECK_EQ(STAT("unauthorized"), 1L);
    CHECK_EQ(STAT("api_requests"), 0L);
    CHECK_EQ(STAT("token_requests"), 1L);
    // the rejected token is gone: the next request fetches a new one and works
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
    CHECK_EQ(STAT("token_requests"), 2L);

    // a rewind that says no, or throws: the same, and the exception comes back
    CTL_REVOKE();
    Upload refused{"refused"};
    r = session.request("POST", "/echo", {}, cloudauth::BodySource(refused.reader(), 7, [] { return false; }));
    CHECK_EQ(r.status(), 401);
    CHECK(!session.token().empty());  // a new token, then rejected again
    CTL_REVOKE();
    Upload throwing{"throwing"};
    bool caught = false;
    try {
        session.request("POST", "/echo", {}, cloudauth::BodySource(throwing.reader(), 8, []() -> bool {
                            throw std::runtime_error("rewind says Zq9-no");
                        }));
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "rewind says Zq9-no";
    }
    CHECK(caught);

    // a 307 without a rewind: the redirect is the answer
    std::string to = standin_url("/echo");
    Upload moved{"moved"};
    r = session.request("POST", "/redirect?code=307&to=" + to, {}, cloudauth::BodySource(moved.reader(), 5));
    CHECK_EQ(r.status(), 307);
}

void test_upload_reader_that_throws() {
    const cloudauth::Session session = standin_session();
    int calls = 0;
    bool caught = false;
    try {
        session.request("POST", "/echo", {},
                        cloudauth::BodySource([&](std::uint8_t*, std::size_t) -> std::size_t {
                            ++calls;
                            throw std::out_of_range("reader says Zq9-no");
                        }));
    } catch (const std::out_of_range& e) {
        caught = std::string(e.what()) == "reader says Zq9-no";
    }
    CHECK(caught);
    CHECK_EQ(calls, 1);
    // a reader that claims more than the room it got is a clear error, not an overrun
    CHECK_THROWS(session.request("POST", "/echo", {},
                                 cloudauth::BodySource([](std::uint8_t*, std::size_t cap) { return cap + 1; })),
                 CLOUDAUTH_ERR_INVALID_ARGUMENT);
    CHECK_EQ(session.request("GET", "/headers").status(), 200);
}

struct TestCase {
    const char* name;
    void (*fn)();
};

const TestCase kTests[] = {
    {"version", test_version},
    {"types_are_move_only", test_types_are_move_only},
    {"config_init_list_and_set", test_config_init_list_and_set},
    {"config_bad_key_and_values", test_config_bad_key_and_values},
    {"session_needs_credentials", test_session_needs_credentials},
    {"token_cached_and_invalidated", test_token_cached_and_invalidated},
    {"session_origin", test_session_origin},
    {"token_expires_in", test_token_expires_in},
    {"token_longer_than_first_buffer", test_token_longer_than_first_buffer},
    {"request_get_with_headers", test_request_get_with_headers},
    {"request_binary_body_round_trip", test_request_binary_body_round_trip},
    {"response_headers", test_response_headers},
    {"http_errors_are_responses", test_http_errors_are_responses},
    {"bad_request_input", test_bad_request_input},
    {"move_semantics", test_move_semantics},
    {"threads_share_one_session", test_threads_share_one_session},
    {"retry_once_after_401", test_retry_once_after_401},
    {"auth_rejected", test_auth_rejected},
    {"timeout", test_timeout},
    {"messages_never_contain_secrets", test_messages_never_contain_secrets},
    {"stats", test_stats},
    {"set_credentials", test_set_credentials},
    {"events", test_events},
    {"event_handler_that_throws", test_event_handler_that_throws},
    {"event_handler_lives_as_long_as_the_library_holds_it",
     test_event_handler_lives_as_long_as_the_library_holds_it},
    {"background_refresh_events", test_background_refresh_events},
    {"config_from_env", test_config_from_env},
    {"async_futures", test_async_futures},
    {"async_many_in_flight_from_one_thread", test_async_many_in_flight_from_one_thread},
    {"async_callbacks", test_async_callbacks},
    {"async_cancel", test_async_cancel},
    {"async_session_destroyed_in_flight", test_async_session_destroyed_in_flight},
    {"token_cached", test_token_cached},
    {"stream_download_in_order_head_first", test_stream_download_in_order_head_first},
    {"stream_stop_early_then_session_works", test_stream_stop_early_then_session_works},
    {"stream_callable_that_throws", test_stream_callable_that_throws},
    {"stream_cap_and_deadline", test_stream_cap_and_deadline},
    {"upload_known_and_unknown_length", test_upload_known_and_unknown_length},
    {"upload_rewound_after_401_and_307", test_upload_rewound_after_401_and_307},
    {"upload_without_rewind_is_sent_once", test_upload_without_rewind_is_sent_once},
    {"upload_reader_that_throws", test_upload_reader_that_throws},
};

}  // namespace

int main(int argc, char** argv) {
    if (standin_port() == 0) {
        std::cerr << "test_cpp: STANDIN_PORT is not set; run it through tests/run/cpp.sh" << std::endl;
        return 2;
    }
    int passed = 0, failed = 0;
    for (const TestCase& t : kTests) {
        bool selected = argc < 2;
        for (int i = 1; i < argc; ++i) selected = selected || std::strstr(t.name, argv[i]) != nullptr;
        if (!selected) continue;

        unsigned long failed_before;
        {
            std::lock_guard<std::mutex> guard(check_lock);
            failed_before = checks_failed;
        }
        ctl_post("/_control/reset", "", __FILE__, __LINE__);
        try {
            t.fn();
        } catch (const Abort&) {
            // a REQUIRE failed and was reported
        } catch (const std::exception& e) {
            check_at(false, __FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        }
        bool ok;
        {
            std::lock_guard<std::mutex> guard(check_lock);
            ok = checks_failed == failed_before;
        }
        std::cout << (ok ? "PASS " : "FAIL ") << t.name << std::endl;
        (ok ? passed : failed)++;
    }
    std::cout << passed << " passed, " << failed << " failed (" << checks_passed << " checks passed, "
              << checks_failed << " failed)" << std::endl;
    return failed == 0 && passed > 0 ? 0 : 1;
}
