// cloudauth.hpp: header-only C++17 binding of cloudauth (OAuth2 client-credentials tokens and
// authorized HTTP requests). It wraps the C ABI of cloudauth.h; link with -lcloudauth.
//
//   cloudauth::Config cfg{{"client_id", "..."}, {"client_secret", "..."}};
//   cfg.set("timeout_ms", "5000");
//   cloudauth::Session session(cfg);                      // copies cfg; sends nothing yet
//   cloudauth::Response r = session.request("POST", "/v5.0/ocr/RecognizeImage",
//                                           {{"Content-Type", "application/json"}}, json);
//   if (r.status() == 200) use(r.body());                 // std::string_view, binary-safe
//   std::future<cloudauth::Response> f = session.request_async("GET", "/v5.0/ocr/...");
//
// The token lifecycle (refresh_mode, client_secret_file, ...) is configured with keys; a live
// session rotates its secret with set_credentials(), reports counters with stats(), and events
// go to the callable given to Config::on_event().
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
// - Callables given to the library (Config::on_event, the callback forms of request_async and
//   token_async) run on library threads; an exception they throw is caught and dropped, it never
//   unwinds into C. They are kept alive exactly as long as the library may call them.
// - The callables of a streamed request (BodySink, HeadCallback, BodySource's reader and
//   rewind) run on the calling thread during request(); an exception one throws is caught at
//   the C boundary, stops the request, and is rethrown from request() unchanged.
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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <initializer_list>
#include <istream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
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

// Zeroes a string's bytes when it goes out of scope, also on an exception (it may hold a secret).
struct Wiper {
    std::string& s;
    ~Wiper() {
        volatile char* p = s.empty() ? nullptr : &s[0];
        for (std::size_t i = 0; i < s.size(); ++i) {
            p[i] = '\0';
        }
    }
};

struct ConfigDeleter {
    void operator()(cloudauth_config* p) const noexcept { cloudauth_config_free(p); }
};
struct SessionDeleter {
    void operator()(cloudauth_session* p) const noexcept { cloudauth_session_free(p); }
};
struct ResponseDeleter {
    void operator()(cloudauth_response* p) const noexcept { cloudauth_response_free(p); }
};
struct OpDeleter {
    void operator()(cloudauth_op* p) const noexcept { cloudauth_op_free(p); }
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

// What a session reports (cloudauth_event): passed to the handler given to Config::on_event.
// The string views are valid during the call only: copy them to keep them. No field ever holds
// a secret or a token.
struct Event {
    cloudauth_event_kind kind;     // e.g. CLOUDAUTH_EVENT_TOKEN_FETCHED
    std::string_view reason;       // why a token was asked for: "first_use", "refresh_ahead",
                                   // "expired", "invalidated", "unauthorized",
                                   // "credentials_changed"; "" for the other kinds
    cloudauth_result result;       // CLOUDAUTH_OK or the failure's code
    std::uint16_t http_status;     // 0 when there was no HTTP answer
    std::uint64_t duration_ms;     // the fetch's duration; for RETRY, the wait before the next try
    std::string_view message;      // one line for a person

    // The kind in lower case: "token_fetched", "token_fetch_failed", "retry", "unauthorized",
    // "cache_unavailable" ("unknown" for a kind this header does not know).
    std::string_view kind_name() const noexcept {
        switch (kind) {
            case CLOUDAUTH_EVENT_TOKEN_FETCHED: return "token_fetched";
            case CLOUDAUTH_EVENT_TOKEN_FETCH_FAILED: return "token_fetch_failed";
            case CLOUDAUTH_EVENT_RETRY: return "retry";
            case CLOUDAUTH_EVENT_UNAUTHORIZED: return "unauthorized";
            case CLOUDAUTH_EVENT_CACHE_UNAVAILABLE: return "cache_unavailable";
        }
        return "unknown";
    }
};

namespace detail {

using EventFn = std::function<void(const Event&)>;

// The event handler as the C side holds it (user_data): the library calls release() once no
// config or session holds it, and never calls the trampoline after that, so the handler (and
// all it captures) lives exactly as long as the library may call it.
struct EventHandler {
    static void trampoline(void* user_data, const cloudauth_event* ev) noexcept {
        try {
            if (user_data == nullptr || ev == nullptr) {
                return;
            }
            Event e{ev->kind,
                    ev->reason != nullptr ? std::string_view(ev->reason) : std::string_view(),
                    ev->result,
                    ev->http_status,
                    ev->duration_ms,
                    ev->message != nullptr ? std::string_view(ev->message) : std::string_view()};
            (*static_cast<EventFn*>(user_data))(e);
        } catch (...) {
            // The handler's exception has nowhere to go: the library must not see it.
        }
    }

    static void release(void* user_data) noexcept { delete static_cast<EventFn*>(user_data); }
};

}  // namespace detail

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
        detail::Wiper wipe_value{v};  // it may be the secret
        detail::check(cloudauth_config_set(cfg, k.c_str(), v.c_str()));
        return *this;
    }

    explicit operator bool() const noexcept { return static_cast<bool>(cfg_); }
    // The C handle, still owned by this object (nullptr after a move).
    const cloudauth_config* get() const noexcept { return cfg_.get(); }
    cloudauth_config* get() noexcept { return cfg_.get(); }

    // Calls `handler` with a `const cloudauth::Event&` for every event of the sessions later
    // made from this config (a session keeps the handler it was made with); returns *this.
    // `handler` is any callable: a lambda, a function, a std::function. It is moved (or copied)
    // in and kept alive as long as this config or a session made from it lives. It runs on
    // whatever thread did the work (a caller's thread, or a library thread), with no cloudauth
    // lock held, so it may call into cloudauth; it must be safe to call from several threads at
    // once and return quickly. An exception it throws is caught and dropped: it never unwinds
    // into the library. `on_event(nullptr)` removes the handler.
    template <class F, class = std::enable_if_t<std::is_invocable<std::decay_t<F>&, const Event&>::value>>
    Config& on_event(F&& handler) {
        cloudauth_config* cfg = detail::live(cfg_, "cloudauth::Config");
        auto fn = std::make_unique<detail::EventFn>(std::forward<F>(handler));
        detail::check(cloudauth_config_set_event_callback_with_release(
            cfg, &detail::EventHandler::trampoline, fn.get(), &detail::EventHandler::release));
        fn.release();  // the library owns it now, and releases it
        return *this;
    }
    Config& on_event(std::nullptr_t) {
        detail::check(cloudauth_config_set_event_callback(detail::live(cfg_, "cloudauth::Config"), nullptr, nullptr));
        return *this;
    }

    // A config from the environment: for every known key K, the variable <prefix><K in upper
    // case>, e.g. CLOUDAUTH_CLIENT_ID, CLOUDAUTH_TOKEN_URL. Other variables are ignored. A
    // malformed value throws CLOUDAUTH_ERR_INVALID_ARGUMENT naming the variable. Keys may be
    // set() afterwards to override what the environment said.
    static Config from_env(std::string_view prefix = "CLOUDAUTH_") {
        Config cfg;
        cfg.set_from_env(prefix);
        return cfg;
    }

    // The same on an existing config: variables that are set override earlier settings.
    Config& set_from_env(std::string_view prefix = "CLOUDAUTH_") {
        cloudauth_config* cfg = detail::live(cfg_, "cloudauth::Config");
        std::string p = detail::c_string(prefix, "environment prefix");
        detail::check(cloudauth_config_from_env(cfg, p.c_str()));
        return *this;
    }

private:
    friend class Session;

    std::unique_ptr<cloudauth_config, detail::ConfigDeleter> cfg_;
};

namespace detail {

inline Headers response_headers(const cloudauth_response* r) {
    Headers out;
    std::size_t n = cloudauth_response_header_count(r);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const char* name = nullptr;
        const char* value = nullptr;
        check(cloudauth_response_header_at(r, i, &name, &value));
        out.emplace_back(name, value);
    }
    return out;
}

}  // namespace detail

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
    Headers headers() const { return detail::response_headers(ptr()); }

    explicit operator bool() const noexcept { return static_cast<bool>(r_); }
    // The C handle, still owned by this object (nullptr after a move).
    const cloudauth_response* get() const noexcept { return r_.get(); }

private:
    const cloudauth_response* ptr() const { return detail::live(r_, "cloudauth::Response"); }

    std::unique_ptr<cloudauth_response, detail::ResponseDeleter> r_;
};

// A session's counters (cloudauth_stats), from Session::stats().
struct Stats {
    std::uint64_t token_requests = 0;        // HTTP requests to the token endpoint, retries included
    std::uint64_t token_failures = 0;        // token fetches that ended in an error, after retries
    std::uint64_t background_refreshes = 0;  // successful refreshes done off the callers' threads
    std::uint64_t api_requests = 0;          // API requests sent, resends included
    std::uint64_t unauthorized_resends = 0;  // API requests resent after a 401
    std::uint64_t shared_cache_hits = 0;     // tokens taken from the file or Redis cache
    std::uint64_t shared_cache_errors = 0;   // file or Redis cache operations that failed
    std::int64_t token_expires_in_ms = -1;   // the current token's remaining life; -1 when none
    std::uint64_t connection_resends = 0;    // requests resent on a new connection after a stale one failed
};

// The outcome of an asynchronous call, passed to its callback: a value or the Error. Move-only
// when T is.
template <class T>
class Result {
public:
    explicit Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    explicit Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    // The value; throws the Error when the call failed.
    T& value() & {
        throw_if_error();
        return std::get<0>(v_);
    }
    const T& value() const& {
        throw_if_error();
        return std::get<0>(v_);
    }
    T&& value() && {
        throw_if_error();
        return std::get<0>(std::move(v_));
    }

    // The Error; only when !ok() (throws std::bad_variant_access otherwise).
    const Error& error() const { return std::get<1>(v_); }

private:
    void throw_if_error() const {
        if (v_.index() == 1) {
            throw std::get<1>(v_);
        }
    }

    std::variant<T, Error> v_;
};

// A handle on an asynchronous operation in flight, for cancelling it. Move-only. Destroying it
// neither cancels the operation nor waits for it (its callback still runs once).
class Operation {
public:
    Operation() noexcept = default;
    explicit Operation(cloudauth_op* op) noexcept : op_(op) {}

    // The callback then runs with CLOUDAUTH_ERR_CANCELLED, unless the operation had already
    // finished or is finishing (it then reports its real outcome). Thread-safe; idempotent; a
    // no-op on an empty handle.
    void cancel() const noexcept { cloudauth_op_cancel(op_.get()); }

    explicit operator bool() const noexcept { return static_cast<bool>(op_); }
    cloudauth_op* get() const noexcept { return op_.get(); }

private:
    std::unique_ptr<cloudauth_op, detail::OpDeleter> op_;
};

// ---- streamed bodies (docs/streaming.md) -------------------------------------------------

// The status and headers of a streamed answer, given to a head callback before any body byte.
struct ResponseHead {
    int status = 0;
    Headers headers;  // in the order received, names lower-case

    // The first value of header `name`, matched case-insensitively; std::nullopt when absent.
    std::optional<std::string> header(std::string_view name) const {
        for (const auto& h : headers) {
            if (h.first.size() == name.size() &&
                std::equal(name.begin(), name.end(), h.first.begin(), [](char a, char b) {
                    return (a >= 'A' && a <= 'Z' ? a + ('a' - 'A') : a) == b;
                })) {
                return h.second;
            }
        }
        return std::nullopt;
    }
};

// Gets each piece of a response body in order, on the calling thread; `data` is valid during
// the call only. Return true to go on, false to stop the request (it then throws
// CLOUDAUTH_ERR_CANCELLED and the connection is closed, not reused).
using BodySink = std::function<bool(const std::uint8_t* data, std::size_t len)>;
// Gets the final answer's status and headers once, before any body byte (redirects followed and
// a 401 that was resent never reach it). Return false to stop the request, as for BodySink.
using HeadCallback = std::function<bool(const ResponseHead& head)>;

// Copies up to `cap` bytes of a request body, from where the last call stopped, into `buf`;
// returns how many, 0 at the end. Called on the calling thread, during the request only. Throw
// to fail the request (the exception is rethrown from request()).
using BodyReader = std::function<std::size_t(std::uint8_t* buf, std::size_t cap)>;
// Puts the body back at its start for a resend; returns true when done, false when it cannot.
using BodyRewind = std::function<bool()>;

// A request body read piece by piece while the request is written (an upload of any size in the
// memory of one piece). It refers to its callables: it only has to outlive the request() call.
//
// - `length`: the body's size in bytes, sent as Content-Length (a reader that ends before it or
//   gives more fails the request with CLOUDAUTH_ERR_INVALID_ARGUMENT), or unknown_length: sent
//   chunked.
// - `rewind`: called before a resend (a 401 to a request that carried the token, a 307 or 308, a
//   connection that failed under the request). Without it, or when it returns false, nothing is
//   sent again: the 401 or the redirect is the answer, a failed connection the Error.
class BodySource {
public:
    static constexpr std::int64_t unknown_length = -1;

    explicit BodySource(BodyReader read, std::int64_t length = unknown_length, BodyRewind rewind = {})
        : read_(std::move(read)), rewind_(std::move(rewind)), length_(length) {}

    // A source over a std::istream (a file, a stringstream, ...), read from where it stands.
    // When the stream can tell its position it can be rewound to there; the length is then
    // the rest of the stream unless given.
    static BodySource from_stream(std::istream& in, std::int64_t length = unknown_length) {
        std::istream::pos_type start = in.tellg();
        bool seekable = start != std::istream::pos_type(-1);
        if (seekable && length == unknown_length) {
            in.seekg(0, std::ios::end);
            std::istream::pos_type end = in.tellg();
            in.seekg(start);
            if (end != std::istream::pos_type(-1) && in.good()) {
                length = static_cast<std::int64_t>(end - start);
            }
        }
        BodyReader read = [&in](std::uint8_t* buf, std::size_t cap) -> std::size_t {
            in.read(reinterpret_cast<char*>(buf), static_cast<std::streamsize>(cap));
            if (in.bad()) {
                throw Error(CLOUDAUTH_ERR_CANCELLED, "reading the request body from its std::istream failed");
            }
            return static_cast<std::size_t>(in.gcount());
        };
        BodyRewind rewind;
        if (seekable) {
            rewind = [&in, start] {
                in.clear();
                in.seekg(start);
                return !in.fail();
            };
        }
        return BodySource(std::move(read), length, std::move(rewind));
    }

    const BodyReader& reader() const noexcept { return read_; }
    const BodyRewind& rewinder() const noexcept { return rewind_; }
    std::int64_t length() const noexcept { return length_; }

private:
    BodyReader read_;
    BodyRewind rewind_;
    std::int64_t length_;
};

namespace detail {

// What the C callbacks of one streamed call reach through user_data. A callable's exception is
// caught here (it must not unwind into C), stops the request, and is rethrown by finish() once
// the C call has returned.
struct StreamCall {
    const BodySink* sink = nullptr;
    const HeadCallback* head = nullptr;
    const BodySource* source = nullptr;
    std::exception_ptr error;

    static std::size_t on_read(void* user_data, std::uint8_t* buf, std::size_t cap) noexcept {
        auto* call = static_cast<StreamCall*>(user_data);
        try {
            std::size_t n = call->source->reader()(buf, cap);
            if (n > cap) {
                invalid("the body reader returned more bytes than the buffer holds");
            }
            return n;
        } catch (...) {
            call->error = std::current_exception();
            return CLOUDAUTH_READ_FAILED;
        }
    }

    static int on_rewind(void* user_data) noexcept {
        auto* call = static_cast<StreamCall*>(user_data);
        try {
            return call->source->rewinder()() ? 0 : 1;
        } catch (...) {
            call->error = std::current_exception();
            return 1;
        }
    }

    cloudauth_body_source c_source() {
        cloudauth_body_source b{};
        b.read = &StreamCall::on_read;
        b.rewind = source->rewinder() ? &StreamCall::on_rewind : nullptr;
        b.user_data = this;
        b.length = source->length();
        return b;
    }

    static int on_head(void* user_data, const cloudauth_response* r) noexcept {
        auto* call = static_cast<StreamCall*>(user_data);
        try {
            ResponseHead h;
            h.status = cloudauth_response_status(r);
            h.headers = response_headers(r);
            return (*call->head)(h) ? 0 : 1;
        } catch (...) {
            call->error = std::current_exception();
            return 1;
        }
    }

    static int on_write(void* user_data, const std::uint8_t* data, std::size_t len) noexcept {
        auto* call = static_cast<StreamCall*>(user_data);
        try {
            return (*call->sink)(data, len) ? 0 : 1;
        } catch (...) {
            call->error = std::current_exception();
            return 1;
        }
    }

    cloudauth_body_sink c_sink() {
        cloudauth_body_sink s{};
        s.head = head != nullptr && *head ? &StreamCall::on_head : nullptr;
        s.write = &StreamCall::on_write;
        s.user_data = this;
        return s;
    }

    // The outcome of the C call: the callable's own exception first (the library only saw
    // "stopped"), then the library's error, else the response.
    cloudauth_response* finish(cloudauth_result rc, cloudauth_response* out) {
        std::unique_ptr<cloudauth_response, ResponseDeleter> owned(out);
        if (error) {
            std::rethrow_exception(error);
        }
        check(rc);
        return owned.release();
    }
};

}  // namespace detail

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

    // The session's origin, "scheme://host[:port]" of base_url (the default base_url when none
    // was set, from_env's included), as the library serializes it: the only origin code that
    // adds token() to its own requests should send it to (docs/adapters.md). Owned by the
    // session: valid while it lives (a move keeps it valid).
    std::string_view origin() const {
        const char* o = cloudauth_session_origin(ptr());
        if (o == nullptr) {
            const char* msg = cloudauth_last_error();
            throw Error(CLOUDAUTH_ERR_INTERNAL, msg != nullptr ? std::string(msg) : std::string("no origin"));
        }
        return o;
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
        std::vector<std::string> lines = header_lines(headers);
        std::vector<const char*> ptrs = pointers(lines);
        cloudauth_response* out = nullptr;
        detail::check(cloudauth_session_request(s, m.c_str(), u.c_str(),
                                                ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(),
                                                body.size() > 0 ? body.data() : nullptr,
                                                body.size(), &out));
        return Response(out);
    }

    // request() with the response body streamed to `sink` piece by piece instead of held in
    // memory (a download of any size in the memory of one piece); `on_head`, if given, gets the
    // status and headers first. The Response returned has the status and headers and an empty
    // body. max_response_bytes caps the body (CLOUDAUTH_ERR_TOO_LARGE, no byte past the cap
    // reaches `sink`); timeout_ms bounds the whole exchange, the callables' time included. On an
    // Error the caller discards what `sink` got. An exception thrown by `sink` or `on_head`
    // stops the request and is rethrown from here, unchanged.
    Response request(std::string_view method, std::string_view url, const Headers& headers, Body body,
                     const BodySink& sink, const HeadCallback& on_head = {}) const {
        cloudauth_session* s = ptr();
        if (!sink) {
            detail::invalid("the body sink is empty");
        }
        std::string m = detail::c_string(method, "method");
        std::string u = detail::c_string(url, "url");
        std::vector<std::string> lines = header_lines(headers);
        std::vector<const char*> ptrs = pointers(lines);
        detail::StreamCall call;
        call.sink = &sink;
        call.head = &on_head;
        cloudauth_body_sink c_sink = call.c_sink();
        cloudauth_response* out = nullptr;
        cloudauth_result rc = cloudauth_session_request_stream(
            s, m.c_str(), u.c_str(), ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(),
            body.size() > 0 ? body.data() : nullptr, body.size(), &c_sink, &out);
        return Response(call.finish(rc, out));
    }

    // request() with the request body read from `body` while the request is written (see
    // BodySource), the response held whole. An exception thrown by the reader or the rewind
    // callable stops the request and is rethrown from here, unchanged.
    Response request(std::string_view method, std::string_view url, const Headers& headers,
                     const BodySource& body) const {
        return request_source(method, url, headers, body, nullptr, nullptr);
    }

    // Both streamed: the request body from `body`, the response body to `sink` (as above).
    Response request(std::string_view method, std::string_view url, const Headers& headers,
                     const BodySource& body, const BodySink& sink, const HeadCallback& on_head = {}) const {
        if (!sink) {
            detail::invalid("the body sink is empty");
        }
        return request_source(method, url, headers, body, &sink, &on_head);
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

    // The token if one is usable now, without any I/O; std::nullopt otherwise, in which case a
    // fetch has been started on a library thread (a later call finds its token). Never blocks.
    std::optional<std::string> token_cached() const {
        cloudauth_session* s = ptr();
        std::string buf(1024, '\0');
        for (int attempt = 0; attempt < 8; ++attempt) {
            std::size_t len = 0;
            cloudauth_result rc = cloudauth_session_token_cached(s, &buf[0], buf.size(), &len);
            if (rc == CLOUDAUTH_OK) {
                buf.resize(len);
                return buf;
            }
            if (rc == CLOUDAUTH_ERR_WOULD_BLOCK) {
                return std::nullopt;
            }
            if (rc != CLOUDAUTH_ERR_BUFFER_TOO_SMALL) {
                detail::check(rc);
            }
            buf.assign(len + 1, '\0');
        }
        throw Error(CLOUDAUTH_ERR_BUFFER_TOO_SMALL, "the token kept changing size while being read");
    }

    // Rotates the credentials: later token requests use these (a fetch in flight finishes with
    // the old ones); the current token stays until it expires or is invalidated. The library
    // copies both strings; this binding's temporary copy of the secret is zeroed.
    void set_credentials(std::string_view client_id, std::string_view client_secret) const {
        cloudauth_session* s = ptr();
        std::string id = detail::c_string(client_id, "client_id");
        std::string secret = detail::c_string(client_secret, "client_secret");
        detail::Wiper wipe_secret{secret};
        detail::check(cloudauth_session_set_credentials(s, id.c_str(), secret.c_str()));
    }

    // The session's counters. Takes no lock and sends nothing.
    Stats stats() const {
        cloudauth_stats c{};
        detail::check(cloudauth_session_stats(ptr(), &c, sizeof c));
        Stats out;
        out.token_requests = c.token_requests;
        out.token_failures = c.token_failures;
        out.background_refreshes = c.background_refreshes;
        out.api_requests = c.api_requests;
        out.unauthorized_resends = c.unauthorized_resends;
        out.shared_cache_hits = c.shared_cache_hits;
        out.shared_cache_errors = c.shared_cache_errors;
        out.token_expires_in_ms = c.token_expires_in_ms;
        out.connection_resends = c.connection_resends;
        return out;
    }

    // ---- asynchronous calls --------------------------------------------------------------
    // They return at once; the work runs on the library's threads (hundreds may be in flight,
    // over pooled connections). Bad input (and a library that cannot start its threads) throws
    // right here, and then nothing was started. Destroying the Session with operations in flight
    // is allowed: they finish with CLOUDAUTH_ERR_CANCELLED.

    // request() asynchronously. The future holds the Response, or the Error request() would
    // have thrown (CLOUDAUTH_ERR_CANCELLED if the session was destroyed first).
    std::future<Response> request_async(std::string_view method, std::string_view url,
                                        const Headers& headers = {}, Body body = {}) const {
        std::promise<Response> promise;
        std::future<Response> future = promise.get_future();
        request_async(method, url, headers, body, [p = std::move(promise)](Result<Response> r) mutable {
            if (r) {
                p.set_value(std::move(r).value());
            } else {
                p.set_exception(std::make_exception_ptr(r.error()));
            }
        });
        return future;
    }

    // The same with a callback: `done` (any callable taking a cloudauth::Result<Response>) runs
    // exactly once, on a library thread, never inside this call, with no cloudauth lock held (it
    // may call any cloudauth function, blocking ones included). An exception it throws is
    // caught and dropped: it never unwinds into the library. Returns a handle for cancelling.
    template <class F, class = std::enable_if_t<std::is_invocable<std::decay_t<F>&, Result<Response>>::value>>
    Operation request_async(std::string_view method, std::string_view url, const Headers& headers, Body body,
                            F&& done) const {
        cloudauth_session* s = ptr();
        std::string m = detail::c_string(method, "method");
        std::string u = detail::c_string(url, "url");
        std::vector<std::string> lines = header_lines(headers);
        std::vector<const char*> ptrs = pointers(lines);
        using Fn = std::decay_t<F>;
        auto pending = std::make_unique<Fn>(std::forward<F>(done));
        cloudauth_op* op = nullptr;
        detail::check(cloudauth_session_request_async(
            s, m.c_str(), u.c_str(), ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(),
            body.size() > 0 ? body.data() : nullptr, body.size(), &response_done<Fn>, pending.get(), &op));
        pending.release();  // response_done owns it now
        return Operation(op);
    }

    // token() asynchronously: the future holds the token, or the Error token() would have thrown.
    std::future<std::string> token_async() const {
        std::promise<std::string> promise;
        std::future<std::string> future = promise.get_future();
        token_async([p = std::move(promise)](Result<std::string> r) mutable {
            if (r) {
                p.set_value(std::move(r).value());
            } else {
                p.set_exception(std::make_exception_ptr(r.error()));
            }
        });
        return future;
    }

    // The same with a callback taking a cloudauth::Result<std::string>; rules as for the
    // callback form of request_async.
    template <class F, class = std::enable_if_t<std::is_invocable<std::decay_t<F>&, Result<std::string>>::value>>
    Operation token_async(F&& done) const {
        cloudauth_session* s = ptr();
        using Fn = std::decay_t<F>;
        auto pending = std::make_unique<Fn>(std::forward<F>(done));
        cloudauth_op* op = nullptr;
        detail::check(cloudauth_session_token_async(s, &token_done<Fn>, pending.get(), &op));
        pending.release();  // token_done owns it now
        return Operation(op);
    }

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }
    // The C handle, still owned by this object (nullptr after a move), for calling the C API.
    cloudauth_session* get() const noexcept { return s_.get(); }

private:
    cloudauth_session* ptr() const { return detail::live(s_, "cloudauth::Session"); }

    Response request_source(std::string_view method, std::string_view url, const Headers& headers,
                            const BodySource& body, const BodySink* sink, const HeadCallback* on_head) const {
        cloudauth_session* s = ptr();
        if (!body.reader()) {
            detail::invalid("the body source has no reader");
        }
        std::string m = detail::c_string(method, "method");
        std::string u = detail::c_string(url, "url");
        std::vector<std::string> lines = header_lines(headers);
        std::vector<const char*> ptrs = pointers(lines);
        detail::StreamCall call;
        call.source = &body;
        call.sink = sink;
        call.head = on_head;
        cloudauth_body_source c_source = call.c_source();
        cloudauth_body_sink c_sink{};
        if (sink != nullptr) {
            c_sink = call.c_sink();
        }
        cloudauth_response* out = nullptr;
        cloudauth_result rc = cloudauth_session_request_stream_body(
            s, m.c_str(), u.c_str(), ptrs.empty() ? nullptr : ptrs.data(), ptrs.size(), &c_source,
            sink != nullptr ? &c_sink : nullptr, &out);
        return Response(call.finish(rc, out));
    }

    // The cloudauth_response_fn of request_async: runs the callable once and frees it. The
    // response is owned from the first line, so it is freed whatever the callable does.
    template <class Fn>
    static void response_done(void* user_data, cloudauth_result rc, cloudauth_response* r,
                              const char* error) noexcept {
        std::unique_ptr<Fn> fn(static_cast<Fn*>(user_data));
        Response response(r);
        try {
            if (rc == CLOUDAUTH_OK && response) {
                (*fn)(Result<Response>(std::move(response)));
            } else {
                (*fn)(Result<Response>(Error(rc == CLOUDAUTH_OK ? CLOUDAUTH_ERR_INTERNAL : rc,
                                             error != nullptr ? error : "")));
            }
        } catch (...) {
            // Nowhere to go: the library must not see it.
        }
    }

    template <class Fn>
    static void token_done(void* user_data, cloudauth_result rc, const char* token, std::size_t len,
                           const char* error) noexcept {
        std::unique_ptr<Fn> fn(static_cast<Fn*>(user_data));
        try {
            if (rc == CLOUDAUTH_OK && token != nullptr) {
                (*fn)(Result<std::string>(std::string(token, len)));
            } else {
                (*fn)(Result<std::string>(Error(rc == CLOUDAUTH_OK ? CLOUDAUTH_ERR_INTERNAL : rc,
                                                error != nullptr ? error : "")));
            }
        } catch (...) {
            // Nowhere to go: the library must not see it.
        }
    }

    static std::vector<std::string> header_lines(const Headers& headers) {
        std::vector<std::string> lines;
        lines.reserve(headers.size());
        for (const auto& h : headers) {
            lines.push_back(header_line(h.first, h.second));
        }
        return lines;
    }

    static std::vector<const char*> pointers(const std::vector<std::string>& lines) {
        std::vector<const char*> ptrs;
        ptrs.reserve(lines.size());
        for (const auto& line : lines) {
            ptrs.push_back(line.c_str());
        }
        return ptrs;
    }

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
