// cloudauth demo in C++: the C demo's flow (examples/c/demo.c) with the header-only C++17
// binding, bindings/cpp/cloudauth.hpp.
//
// It runs an OCR job the way an Aspose.OCR Cloud client does, against the local stand-in
// (tests/standin/server.py):
//   1. configure a session: client credentials, token endpoint, API base URL;
//   2. get the access token, only to show its length (never print a token);
//   3. submit an image: POST /v5.0/ocr/RecognizeImage answers with a task id;
//   4. poll GET /v5.0/ocr/RecognizeImage?id=<task> until the task is Completed;
//   5. decode and print the recognized text.
//
// Against the real Aspose Cloud, leave token_url and base_url at their defaults and set your own
// client_id and client_secret. Step 2 is optional: every request fetches, caches and refreshes the
// token by itself, and retries once with a fresh one after a 401.
//
// Build:  g++ -std=c++17 -Iinclude -Ibindings/cpp examples/cpp/ocr_demo.cpp -Ltarget/release -lcloudauth
// Run:    STANDIN_URL=http://127.0.0.1:<port> ./ocr_demo      (tests/run/cpp.sh does both)
#include <cloudauth.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// The "scanned document": an 8x8 grayscale PNG of the letter H.
const std::vector<std::uint8_t> kImagePng = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
    0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0xe1,
    0x64, 0xe1, 0x57, 0x00, 0x00, 0x00, 0x18, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8,
    0x0f, 0x05, 0x0c, 0x40, 0x08, 0xa5, 0x10, 0x0c, 0x30, 0xc0, 0x2e, 0x85, 0xa4, 0x07, 0x04,
    0x00, 0xa7, 0xf4, 0x2f, 0xd1, 0x8a, 0xd7, 0x08, 0x6a, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

constexpr const char* kOcrPath = "/v5.0/ocr/RecognizeImage";
constexpr int kMaxPolls = 20;                            // give up after this many status checks
constexpr std::chrono::milliseconds kPollInterval{250};  // between two status checks

// ---- small helpers: base64 and just enough JSON for these answers --------------------------

constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::vector<std::uint8_t>& data) {
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < data.size(); i += 3) {
        std::uint32_t n = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8 | data[i + 2];
        for (int shift : {18, 12, 6, 0}) out += kB64[n >> shift & 63];
    }
    if (i < data.size()) {  // one or two bytes left
        std::uint32_t n = std::uint32_t{data[i]} << 16;
        if (i + 1 < data.size()) n |= std::uint32_t{data[i + 1]} << 8;
        out += kB64[n >> 18 & 63];
        out += kB64[n >> 12 & 63];
        out += i + 1 < data.size() ? kB64[n >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

// Decodes base64, standard or URL-safe, padding optional; std::nullopt if it is not base64.
std::optional<std::string> base64_decode(std::string_view text) {
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=') break;
        std::size_t v = c == '-' ? 62 : c == '_' ? 63 : kB64.find(c);
        if (v == std::string_view::npos) return std::nullopt;
        acc = acc << 6 | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>(acc >> bits & 0xff);
        }
    }
    return out;
}

// The string value of the first "key" in a JSON text (simple escapes undone), or std::nullopt.
// A plain search, good enough for the small, known answers of this demo; a real program would
// use a JSON library.
std::optional<std::string> json_string(std::string_view json, std::string_view key) {
    std::string quoted = "\"" + std::string(key) + "\"";
    for (std::size_t at = json.find(quoted); at != std::string_view::npos; at = json.find(quoted, at + 1)) {
        std::size_t p = json.find_first_not_of(" \t\r\n", at + quoted.size());
        if (p == std::string_view::npos || json[p] != ':') continue;
        p = json.find_first_not_of(" \t\r\n", p + 1);
        if (p == std::string_view::npos || json[p] != '"') return std::nullopt;
        std::string out;
        for (++p; p < json.size() && json[p] != '"'; ++p) {
            if (json[p] == '\\' && p + 1 < json.size()) ++p;  // \" \\ \/ : keep the escaped character
            out += json[p];
        }
        return out;
    }
    return std::nullopt;
}

std::string first_line(std::string_view text) {
    std::string s(text.substr(0, 300));
    return s.substr(0, s.find('\n'));
}

// ---- the demo's steps -----------------------------------------------------------------------

// Step 3: POST the image; returns the task id.
std::string submit_image(const cloudauth::Session& session) {
    std::string body = "{\"image\": \"" + base64_encode(kImagePng) +
                       "\", \"settings\": {\"language\": \"English\", \"makeSkewCorrect\": true}}";
    // A path is joined to base_url; the session adds "Authorization: Bearer <token>".
    cloudauth::Response r = session.request("POST", kOcrPath, {{"Content-Type", "application/json"}}, body);
    // Any HTTP status is a Response: the status is ours to check.
    if (r.status() != 200) {
        throw std::runtime_error("submitting the image: HTTP " + std::to_string(r.status()) + ": " + first_line(r.body()));
    }
    std::string task(r.body());  // the answer is the bare task id
    task = task.substr(0, task.find_first_of(" \t\r\n\""));
    // It goes into a URL: accept only what a UUID is made of.
    if (task.empty() || task.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos) {
        throw std::runtime_error("submitting the image: unexpected task id");
    }
    return task;
}

// Step 4: poll until Completed; returns the JSON of the finished task.
std::string wait_for_task(const cloudauth::Session& session, const std::string& task) {
    const std::string url = std::string(kOcrPath) + "?id=" + task;
    for (int poll = 1; poll <= kMaxPolls; ++poll) {
        cloudauth::Response r = session.request("GET", url);
        if (r.status() != 200) {
            throw std::runtime_error("polling the task: HTTP " + std::to_string(r.status()) + ": " + first_line(r.body()));
        }
        std::string json(r.body());
        std::optional<std::string> status = json_string(json, "taskStatus");
        std::cout << "poll " << poll << ": " << status.value_or("(no taskStatus)") << std::endl;
        if (status == "Completed") return json;
        if (status != "Pending" && status != "Processing") {
            throw std::runtime_error("the OCR task failed: " + first_line(json));
        }
        std::this_thread::sleep_for(kPollInterval);
    }
    throw std::runtime_error("the OCR task was not done after " + std::to_string(kMaxPolls) + " polls");
}

}  // namespace

int main() {
    const char* standin = std::getenv("STANDIN_URL");
    if (standin == nullptr || *standin == '\0') {
        std::cerr << "ocr_demo: STANDIN_URL is not set; run it with tests/run/cpp.sh, which starts the local stand-in"
                  << std::endl;
        return 2;
    }
    std::cout << "cloudauth " << cloudauth::version() << " (C++), Aspose stand-in at " << standin << std::endl;
    try {
        // Step 1: a config is a set of string keys; the session copies it.
        const std::string base(standin);
        cloudauth::Config config{{"client_id", "demo-client"},
                                 {"client_secret", "demo-secret"},
                                 {"token_url", base + "/connect/token"},
                                 {"base_url", base}};
        const cloudauth::Session session(config);  // checks the config; sends nothing yet

        // Step 2: the token's length only: it is a credential.
        std::cout << "token: " << session.token().size()
                  << " bytes; the session refreshes it before it expires" << std::endl;

        // Step 3.
        std::string task = submit_image(session);
        std::cout << "OCR task " << task << " submitted (" << kImagePng.size() << "-byte PNG)" << std::endl;

        // Step 4.
        std::string result = wait_for_task(session, task);

        // Step 5: results[0].data is the recognized text, base64-encoded.
        std::optional<std::string> data = json_string(result, "data");
        std::optional<std::string> text = data ? base64_decode(*data) : std::nullopt;
        if (!text) {
            std::cerr << "ocr_demo: the finished task has no readable results[0].data: " << first_line(result)
                      << std::endl;
            return 1;
        }
        std::cout << "recognized text: " << *text << std::endl;
        return 0;
    } catch (const cloudauth::Error& e) {
        // e.what() is "<CODE NAME>: <message>"; the message says which step failed and why.
        std::cerr << "ocr_demo: " << e.what() << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "ocr_demo: " << e.what() << std::endl;
    }
    return 1;
}
