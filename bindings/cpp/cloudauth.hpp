// cloudauth.hpp: header-only C++17 binding of cloudauth (OAuth2 client-credentials tokens and
// authorized HTTP requests). It wraps the C ABI of cloudauth.h; link with -lcloudauth.
//
//   cloudauth::Config cfg{{"client_id", "..."}, {"client_secret", "..."}};
//   cfg.set("timeout_ms", "5000");
//   cloudauth::Session session(cfg);                      // copies cfg; sends nothing yet
//   cloudauth::Response r = session.request("POST", "/v5.0/ocr/RecognizeImage",
//                                           {{"Content-Type", "application/json"}}, json);
//   if (r.status() == 200) use(r.body());                 // std::string_view, binary-safe
//
// Rules:
// - Every failure throws cloudauth::Error (a std::runtime_error) carrying the cloudauth_result
//   code and the library's one-line message (cloudauth_last_error()). Messages never contain a
//   secret or a token. Any HTTP status (404, 500, ...) is a Response, not an Error.
// - Config, Session and Response own their C handle through a std::unique_ptr whose deleter is
//   the C _free function. They are move-only.
// - A moved-from object is empty: every method on it throws cloudauth::Error with code
//   CLOUDAUTH_ERR_INVALID_ARGUMENT ("... used after it was moved from"); it never crashes.
//   Destroying or assigning to a moved-from object is fine. `explicit operator bool` tells
//   whether an object holds a handle.
// - Thread-safety (that of the C types): a Session is thread-safe: share one (by reference)
//   across all threads; its methods are const. A Response is immutable and may be read from
//   several threads. A Config is single-owner: do not use one from two threads at once.
// - Strings passed in are copied by the library. They must not contain NUL bytes (the C ABI
//   takes NUL-terminated strings); one that does is rejected with CLOUDAUTH_ERR_INVALID_ARGUMENT
//   instead of being silently cut short. Bodies are binary-safe.
#ifndef CLOUDAUTH_HPP
#define CLOUDAUTH_HPP

// MSVC keeps __cplusplus at 199711L unless /Zc:__cplusplus; _MSVC_LANG has the real value.
#if defined(_MSVC_LANG) && _MSVC_LANG > __cplusplus
#define CLOUDAUTH_HPP_CPLUSPLUS _MSVC_LANG
#else
#define CLOUDAUTH_HPP_CPLUSPLUS __cplusplus
#endif
#if CLOUDAUTH_HPP_CPLUSPLUS < 201703L
#error "cloudauth.hpp needs C++17 or newer (std::optional, std::string_view): compile with -std=c++17 or later; from older C++ use the C API in cloudauth.h"
#else

#include <cloudauth.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace cloudauth {

// The name of a result code, e.g. "CLOUDAUTH_ERR_TIMEOUT". Static storage.
inline std::string_view result_name(cloudauth_result code) noexcept {
    const char* name = cloudauth_result_name(code);
    return name != nullptr ? std::string_view(name) : std::string_view("CLOUDAUTH_UNKNOWN_RESULT");
}

// The library version, e.g. "0.1.0". Static storage.
inline std::string_view version() noexcept {
    const char* v = cloudauth_version();
    return v != nullptr ? std::string_view(v) : std::string_view();
}

// A failed cloudauth call. what() is "<CODE NAME>: <message>".
class Error : public std::runtime_error {
public:
    Error(cloudauth_result code, const std::string& message)
        : std::runtime_error(std::string(result_name(code)) + ": " + message),
          code_(code),
          message_(message) {}

    // The result code, e.g. CLOUDAUTH_ERR_AUTH_REJECTED.
    cloudauth_result code() const noexcept { return code_; }
    // Its name, e.g. "CLOUDAUTH_ERR_AUTH_REJECTED".
    std::string_view name() const noexcept { return result_name(code_); }
    // The library's message alone: which step failed and why.
    const std::string& message() const noexcept { return message_; }

private:
    cloudauth_result code_;
    std::string message_;
};

namespace detail {

// Throws the Error for rc, with this thread's last-error message (read right after the call,
// before any other cloudauth call can replace it).
inline void check(cloudauth_result rc) {
    if (rc != CLOUDAUTH_OK) {
        const char* msg = cloudauth_last_error();
        throw Error(rc, msg != nullptr ? std::string(msg) : std::string());
    }
}

[[noreturn]] inline void invalid(const std::string& message) {
    throw Error(CLOUDAUTH_ERR_INVALID_ARGUMENT, message);
}

// A NUL-terminated copy of s; rejects embedded NULs. `what` names the argument, never its
// value (it may be a secret).
inline std::string c_string(std::string_view s, const char* what) {
    if (s.find('\0') != std::string_view::npos) {
        invalid(std::string(what) + " contains a NUL byte");
    }
    return std::string(s);
}

struct ConfigDeleter {
    void operator()(cloudauth_config* p) const noexcept { cloudauth_config_free(p); }
};
struct SessionDeleter {
    void operator()(cloudauth_session* p) const noexcept { cloudauth_session_free(p); }
};
struct ResponseDeleter {
    void operator()(cloudauth_response* p) const noexcept { cloudauth_response_free(p); }
};

template <class T, class D>
T* live(const std::unique_ptr<T, D>& p, const char* type) {
    if (!p) {
        invalid(std::string(type) + " used after it was moved from");
    }
    return p.get();
}

}  // namespace detail

// Request headers, in order: name -> value, sent as "Name: value".
using Headers = std::vector<std::pair<std::string, std::string>>;

// A non-owning view of a request body: text or bytes, binary-safe (NUL bytes included).
// It only has to outlive the request() call it is passed to.
class Body {
public:
    Body() noexcept = default;
    Body(std::string_view s) noexcept : data_(s.data()), size_(s.size()) {}
    Body(const std::string& s) noexcept : data_(s.data()), size_(s.size()) {}
    Body(const char* s) noexcept : data_(s), size_(s != nullptr ? std::char_traits<char>::length(s) : 0) {}
    Body(const std::vector<std::uint8_t>& v) noexcept : data_(v.data()), size_(v.size()) {}
    Body(const std::vector<char>& v) noexcept : data_(v.data()), size_(v.size()) {}
    Body(const std::vector<std::byte>& v) noexcept : data_(v.data()), size_(v.size()) {}
    Body(const void* data, std::size_t size) noexcept : data_(data), size_(data != nullptr ? size : 0) {}

    const std::uint8_t* data() const noexcept { return static_cast<const std::uint8_t*>(data_); }
    std::size_t size() const noexcept { return size_; }

private:
    const void* data_ = nullptr;
    std::size_t size_ = 0;
};

// Configuration: string keys and values (see cloudauth.h for the keys). Single owner, move-only.
// A bad key or value throws right away, with a message that names the key (never the value).
class Config {
public:
    Config() : cfg_(cloudauth_config_new()) {
        if (!cfg_) {
            throw Error(CLOUDAUTH_ERR_INTERNAL, "cloudauth_config_new returned NULL");
        }
    }

    // Config cfg{{"client_id", "..."}, {"client_secret", "..."}};
    Config(std::initializer_list<std::pair<std::string_view, std::string_view>> settings) : Config() {
        for (const auto& kv : settings) {
            set(kv.first, kv.second);
        }
    }

    Config(Config&&) noexcept = default;
    Config& operator=(Config&&) noexcept = default;
    Config(const Config&) = delete;
    Config& operator=(const Config&) = delete;

    // Sets one key; returns *this for chaining. On failure the config is unchanged.
    Config& set(std::string_view key, std::string_view value) {
        cloudauth_config* cfg = detail::live(cfg_, "cloudauth::Config");
        std::string k = detail::c_string(key, "configuration key");
        std::string v = detail::c_string(value, ("the value of configuration key '" + k + "'").c_str());
        Wiper wipe_value{v};  // it may be the secret
        detail::check(cloudauth_config_set(cfg, k.c_str(), v.c_str()));
        return *this;
    }

    explicit operator bool() const noexcept { return static_cast<bool>(cfg_); }
    // The C handle, still owned by this object (nullptr after a move).
    const cloudauth_config* get() const noexcept { return cfg_.get(); }
    cloudauth_config* get() noexcept { return cfg_.get(); }

private:
    // Zeroes a string's bytes when it goes out of scope, also on an exception.
    struct Wiper {
        std::string& s;
        ~Wiper() {
            volatile char* p = s.empty() ? nullptr : &s[0];
            for (std::size_t i = 0; i < s.size(); ++i) {
                p[i] = '\0';
            }
        }
    };

    std::unique_ptr<cloudauth_config, detail::ConfigDeleter> cfg_;
};

// The answer to a request: status, headers and body, all in memory. Move-only, immutable.
class Response {
public:
    // Takes ownership of a response from cloudauth_session_request.
    explicit Response(cloudauth_response* r) noexcept : r_(r) {}

    Response(Response&&) noexcept = default;
    Response& operator=(Response&&) noexcept = default;
    Response(const Response&) = delete;
    Response& operator=(const Response&) = delete;

    // The HTTP status, e.g. 200 or 404.
    int status() const { return cloudauth_response_status(ptr()); }

    // The body, binary-safe; a view into the response, valid as long as this Response (or the
    // one it is moved into) lives.
    std::string_view body() const {
        std::size_t len = 0;
        const std::uint8_t* data = cloudauth_response_body(ptr(), &len);
        if (data == nullptr || len == 0) {
            return std::string_view();
        }
        return std::string_view(reinterpret_cast<const char*>(data), len);
    }

    // A copy of the body.
    std::string text() const { return std::string(body()); }

    // The first value of header `name`, matched case-insensitively; std::nullopt when absent.
    std::optional<std::string> header(std::string_view name) const {
        const cloudauth_response* r = ptr();
        std::string n = detail::c_string(name, "header name");
        const char* value = cloudauth_response_header(r, n.c_str());
        if (value == nullptr) {
            return std::nullopt;
        }
        return std::string(value);
    }

    // Every header in the order received (names lower-case; a repeated header once per value).
    Headers headers() const {
        const cloudauth_response* r = ptr();
        Headers out;
        std::size_t n = cloudauth_response_header_count(r);
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            const char* name = nullptr;
            const char* value = nullptr;
            detail::check(cloudauth_response_header_at(r, i, &name, &value));
            out.emplace_back(name, value);
        }
        return out;
    }

    explicit operator bool() const noexcept { return static_cast<bool>(r_); }
    // The C handle, still owned by this object (nullptr after a move).
    const cloudauth_response* get() const noexcept { return r_.get(); }

private:
    const cloudauth_response* ptr() const { return detail::live(r_, "cloudauth::Response"); }

    std::unique_ptr<cloudauth_response, detail::ResponseDeleter> r_;
};

// Credentials, the cached token and a connection pool. Thread-safe: share one across threads
// (its methods are const). Move-only; destroy it only once no other thread uses it.
class Session {
public:
    // Copies the configuration; checks it but sends nothing (the first token is fetched on first
    // use). Throws CLOUDAUTH_ERR_INVALID_ARGUMENT (e.g. missing client_id) or _INSECURE_URL.
    explicit Session(const Config& config) {
        const cloudauth_config* cfg = config.get();
        if (cfg == nullptr) {
            detail::invalid("cloudauth::Config used after it was moved from");
        }
        cloudauth_session* s = nullptr;
        detail::check(cloudauth_session_new(cfg, &s));
        s_.reset(s);
    }

    Session(Session&&) noexcept = default;
    Session& operator=(Session&&) noexcept = default;
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // The current valid access token, fetched or refreshed as needed. A credential: never log it.
    std::string token() const {
        cloudauth_session* s = ptr();
        std::string buf(1024, '\0');
        // BUFFER_TOO_SMALL tells the length needed. A refresh by another thread between two calls
        // may change it, so try again a few times rather than once.
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::size_t len = 0;
            cloudauth_result rc = cloudauth_session_token(s, &buf[0], buf.size(), &len);
            if (rc == CLOUDAUTH_OK) {
                buf.resize(len);
                return buf;
            }
            if (rc != CLOUDAUTH_ERR_BUFFER_TOO_SMALL) {
                detail::check(rc);
            }
            buf.assign(len + 1, '\0');
        }
        throw Error(CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "the token kept changing size while being read");
    }

    // Whole seconds the current valid token has left (a token is fetched first if none is
    // held), from the token response's expires_in on a monotonic clock.
    std::chrono::seconds token_expires_in() const {
        std::uint64_t seconds = 0;
        detail::check(cloudauth_session_token_expires_in(ptr(), &seconds));
        return std::chrono::seconds(static_cast<std::chrono::seconds::rep>(seconds));
    }

    // Drops the cached token: the next use fetches a new one.
    void invalidate() const { detail::check(cloudauth_session_invalidate(ptr())); }

    // Drops the cached token only if it is still `token` (one a server just rejected with a 401),
    // so many threads reacting to the same 401 cause one new token request. request() does this
    // by itself; this is for code that sends its own requests with token().
    void invalidate_token(std::string_view token) const {
        cloudauth_session* s = ptr();
        std::string t = detail::c_string(token, "token");
        detail::check(cloudauth_session_invalidate_token(s, t.c_str()));
    }

    // Sends an authorized request and reads the whole response. `url` is absolute or a path
    // joined to base_url. The session adds "Authorization: Bearer <token>" (passing an
    // Authorization header yourself is an error) and, on a 401, retries once with a new token.
    // Any HTTP status is a Response; errors (network, timeout, token, bad input) throw Error.
    Response request(std::string_view method, std::string_view url, const Headers& headers = {},
                     Body body = {}) const {
        cloudauth_session* s = ptr();
        std::string m = detail::c_string(method, "method");
        std::string u = detail::c_string(url, "url");
        std::vector<std::string> lines;
        lines.reserve(headers.size());
        for (const auto& h : headers) {
            lines.push_back(header_line(h.first, h.second));
        }
        std::vector<const char*> ptrs;
        ptrs.reserve(lines.size());
        for (const auto& line : lines) {
            ptrs.push_back(line.c_str());
        }
        cloudauth_response* out = nullptr;
        detail::check(cloudauth_session_request(s, m.c_str(), u.c_str(),
                                                ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(),
                                                body.size() > 0 ? body.data() : nullptr,
                                                body.size(), &out));
        return Response(out);
    }

    // The same with headers from any range of name/value pairs, e.g. a std::map.
    template <class HeaderRange,
              class = std::enable_if_t<!std::is_convertible<const HeaderRange&, const Headers&>::value>,
              class = decltype(std::begin(std::declval<const HeaderRange&>())->first),
              class = decltype(std::begin(std::declval<const HeaderRange&>())->second)>
    Response request(std::string_view method, std::string_view url, const HeaderRange& headers,
                     Body body = {}) const {
        Headers h;
        for (const auto& kv : headers) {
            h.emplace_back(std::string(std::string_view(kv.first)), std::string(std::string_view(kv.second)));
        }
        return request(method, url, h, body);
    }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    // The C handle, still owned by this object (nullptr after a move), for calling the C API.
    cloudauth_session* get() const noexcept { return s_.get(); }

private:
    cloudauth_session* ptr() const { return detail::live(s_, "cloudauth::Session"); }

    // "Name: value". The library rejects CR/LF; a colon in the name or a NUL anywhere would be
    // misread by it, so they are refused here. Messages quote a name only when it looks like
    // one: a malformed "name" may hold a credential ("Authorization: Bearer ...").
    static std::string header_line(std::string_view name, std::string_view value) {
        if (name.empty()) {
            detail::invalid("a header name is empty");
        }
        std::string n = detail::c_string(name, "a header name");
        if (n.find(':') != std::string::npos) {
            detail::invalid("a header name contains ':'; pass the name and the value separately");
        }
        std::string line = n + ": ";
        line += detail::c_string(value, ("the value of header " + quoted(n)).c_str());
        return line;
    }

    static std::string quoted(const std::string& name) {
        bool plain = name.size() <= 64;
        for (char c : name) {
            plain = plain && c > ' ' && c < 127;
        }
        return plain ? "'" + name + "'" : std::string("(name not shown)");
    }

    std::unique_ptr<cloudauth_session, detail::SessionDeleter> s_;
};

}  // namespace cloudauth

#endif  // C++17
#endif  // CLOUDAUTH_HPP
