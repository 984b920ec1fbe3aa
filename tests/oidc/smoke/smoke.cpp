// C++ smoke of the real-provider suite (test_oidc_provider.py builds and runs it): every
// argument KEY=VALUE goes to cloudauth::Config::set unchanged, as a C++ program passes the v2
// keys (auth_method, client_cert_file, client_key_file, issuer, token_param.NAME, ...); then
// one GET of the path in CLOUDAUTH_SMOKE_PATH. Prints the status and the body, or the error.
#include <cloudauth.hpp>

#include <cstdlib>
#include <iostream>
#include <string_view>

int main(int argc, char** argv) {
    try {
        cloudauth::Config cfg;
        for (int i = 1; i < argc; ++i) {
            std::string_view arg(argv[i]);
            std::size_t eq = arg.find('=');
            if (eq == std::string_view::npos) {
                std::cerr << "smoke: expected KEY=VALUE, got " << arg << "\n";
                return 2;
            }
            cfg.set(arg.substr(0, eq), arg.substr(eq + 1));
        }
        const char* path = std::getenv("CLOUDAUTH_SMOKE_PATH");
        const cloudauth::Session session(cfg);
        cloudauth::Response r = session.request("GET", path ? path : "/whoami");
        std::cout << r.status() << "\n" << r.body() << "\n";
        return 0;
    } catch (const cloudauth::Error& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
