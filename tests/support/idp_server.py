"""A recording authorization server and API on 127.0.0.1 for tests/identity_providers.rs.

Usage: idp_server.py [LIFETIME_S]  -> prints "PORT <n>", serves for LIFETIME_S (default 60) s.

It checks nothing cryptographic itself: it records every request (form fields and headers) so
that the Rust test verifies assertions and DPoP proofs with its own verifier, and it answers
with the behaviour the path asks for:
  discovery  /.well-known/oauth-authorization-server/<case>, /<case>/.well-known/openid-configuration
             cases: good (RFC 8414), oidc (only OpenID), missing (404), html (not JSON),
             foreign (another issuer), noendpoint, flaky (500 once, then good), picky (lists
             only client_secret_basic), mtls (an mtls_endpoint_aliases entry)
  POST /token            a Bearer token (DPoP when a DPoP header came)
  POST /nonce-loop/token DPoP: always 400 use_dpop_nonce with a new nonce
  GET  /api/redirect     302 to /api (same origin)
  POST /echo/token       400 whose description quotes the DPoP proof and client assertion
  POST /dpop-always/token  a token_type=DPoP token, asked for or not
  POST /rotate/token?dir=D  503 (Retry-After: 0) while D holds a NAME.next file, after renaming
                         each to NAME (a platform rotating its token files between attempts);
                         then a token
  POST /nonce/token      DPoP: 400 use_dpop_nonce + DPoP-Nonce until the proof carries it
  GET  /api              200, echoing nothing
  GET  /api/nonce        DPoP: 401 use_dpop_nonce + DPoP-Nonce until the proof carries it
  GET  /api/nonce-loop   DPoP: always 401 use_dpop_nonce with a new nonce
  GET  /api/echo-proof   400 whose body quotes the DPoP proof and Authorization header
  GET  /_requests        the recorded requests, as JSON
"""
import base64
import http.server
import itertools
import json
import sys
import threading
import urllib.parse

RECORDS = []
LOCK = threading.Lock()
COUNTER = itertools.count(1)
FLAKY_SEEN = set()


def proof_nonce(headers):
    proof = headers.get("DPoP")
    if not proof:
        return None
    try:
        claims = proof.split(".")[1]
        claims += "=" * (-len(claims) % 4)
        return json.loads(base64.urlsafe_b64decode(claims)).get("nonce")
    except Exception:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def send(self, status, obj, headers=()):
        body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "form": urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True),
        }
        with LOCK:
            RECORDS.append(entry)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_requests":
            with LOCK:
                return self.send(200, RECORDS)
        self.record(b"")
        prefix = "/.well-known/oauth-authorization-server/"
        suffix = "/.well-known/openid-configuration"
        if path.startswith(prefix):
            return self.metadata(path[len(prefix):], rfc8414=True)
        if path.endswith(suffix):
            return self.metadata(path[1 : -len(suffix)], rfc8414=False)
        if path.startswith("/api"):
            return self.api(path)
        self.send(404, {"error": "not_found"})

    def metadata(self, case, rfc8414):
        base = self.base()
        doc = {
            "issuer": f"{base}/{case}",
            "token_endpoint": f"{base}/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post", "client_secret_basic", "client_secret_jwt", "private_key_jwt",
            ],
            "dpop_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
        }
        if case == "oidc" and rfc8414 or case == "missing":
            return self.send(404, {"error": "not_found"})
        if case == "html":
            return self.send(200, b"<html>hello</html>")
        if case == "foreign":
            doc["issuer"] = "https://evil.example"
        if case == "noendpoint":
            del doc["token_endpoint"]
        if case == "picky":
            doc["token_endpoint_auth_methods_supported"] = ["client_secret_basic"]
        if case == "mtls":
            doc["mtls_endpoint_aliases"] = {"token_endpoint": f"{base}/mtls/token"}
        if case == "flaky" and case not in FLAKY_SEEN:
            FLAKY_SEEN.add(case)
            return self.send(500, {"error": "server_error"})
        self.send(200, doc)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.record(body)
        path = urllib.parse.urlsplit(self.path).path
        dpop = self.headers.get("DPoP")
        if path == "/nonce/token" and proof_nonce(self.headers) != "server-nonce-1":
            return self.send(
                400,
                {"error": "use_dpop_nonce", "error_description": "nonce required"},
                [("DPoP-Nonce", "server-nonce-1")],
            )
        if path == "/nonce-loop/token":
            n = next(COUNTER)
            return self.send(400, {"error": "use_dpop_nonce"}, [("DPoP-Nonce", f"loop-{n}")])
        if path == "/echo/token":
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            return self.send(400, {"error": "invalid_client", "error_description":
                                   "got proof " + str(self.headers.get("DPoP")) + " and assertion "
                                   + str(form.get("client_assertion"))})
        if path == "/rotate/token":
            import os
            folder = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)["dir"][0]
            pending = [f for f in os.listdir(folder) if f.endswith(".next")]
            for f in pending:
                os.replace(os.path.join(folder, f), os.path.join(folder, f[: -len(".next")]))
            if pending:
                return self.send(503, {"error": "temporarily_unavailable"}, [("Retry-After", "0")])
        if path.endswith("/token"):
            n = next(COUNTER)
            extra = [("DPoP-Nonce", "server-nonce-1")] if path == "/nonce/token" else []
            return self.send(
                200,
                {"access_token": f"tok-{n}", "expires_in": 3600,
                 "token_type": "DPoP" if dpop or path == "/dpop-always/token" else "Bearer"},
                extra,
            )
        self.send(404, {"error": "not_found"})

    def api(self, path):
        if path == "/api/nonce" and proof_nonce(self.headers) != "api-nonce-1":
            return self.send(
                401, {"error": "use_dpop_nonce"},
                [("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'), ("DPoP-Nonce", "api-nonce-1")],
            )
        if path == "/api/nonce-loop":
            n = next(COUNTER)
            return self.send(
                401, {"error": "use_dpop_nonce"},
                [("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'), ("DPoP-Nonce", f"loop-{n}")],
            )
        if path == "/api/redirect":
            return self.send(302, {}, [("Location", f"{self.base()}/api")])
        if path == "/api/echo-proof":
            return self.send(400, {"proof": self.headers.get("DPoP"),
                                   "authorization": self.headers.get("Authorization")})
        self.send(200, {"ok": True})


def main():
    lifetime = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Timer(lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
