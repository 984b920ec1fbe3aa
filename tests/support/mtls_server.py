"""HTTPS servers on 127.0.0.1 that ask for a TLS client certificate and record who presented
which, for the mutual-TLS tests (tests/mtls.rs).

Usage: mtls_server.py SERVER_CERT SERVER_KEY TRUSTED_PEM...
Prints "PORTS <origin> <other> <control>" and serves for at most 120 s (or until stdin closes).

- <origin> and <other>: HTTPS, client certificate requested (optional: a client that presents
  none is served too), verified against TRUSTED_PEM (CAs, or self-signed client certificates).
  POST /token answers a token when a certificate was presented and 401 invalid_client when not
  (POST /token-short: the same, with expires_in 2);
  /redirect?to=URL answers 302 to URL (or another status with &status=N, after &delay_ms=N),
  GET /loop answers 302 to itself; /refuses-first-token answers 401 to the first token issued
  (mtls-1-…) and 200 to any other; on <origin>,
  GET /.well-known/oauth-authorization-server answers metadata whose issuer is <origin>, whose
  token_endpoint is <origin>/plain-token and whose mtls_endpoint_aliases.token_endpoint is
  <other>/token (RFC 8705 §5); anything else answers 200.
- <control>: plain HTTP on 127.0.0.1; GET /log returns every request seen so far as JSON
  (listener, method, path, the SHA-256 of the presented certificate or null, Authorization,
  Cookie, DPoP, the body as text, the form body of token requests), GET /clear empties it; its
  /.well-known/oauth-authorization-server names itself as the issuer and a plain-http
  mtls_endpoint_aliases.token_endpoint.
"""
import hashlib
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.parse

LOG = []
LOCK = threading.Lock()
TOKENS = {"n": 0}
PORTS = {}


def make_handler(listener):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body, headers=()):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            der = self.connection.getpeercert(binary_form=True)
            fingerprint = hashlib.sha256(der).hexdigest() if der else None
            url = urllib.parse.urlsplit(self.path)
            with LOCK:
                LOG.append({
                    "listener": listener,
                    "method": self.command,
                    "path": url.path,
                    "cert": fingerprint,
                    "authorization": self.headers.get("Authorization"),
                    "cookie": self.headers.get("Cookie"),
                    "dpop": self.headers.get("DPoP"),
                    "body": body.decode(errors="replace"),
                    "form": urllib.parse.parse_qs(body.decode()) if url.path.startswith("/token") else None,
                })
            if url.path in ("/token", "/token-short"):
                if fingerprint is None:
                    return self.answer(401, json.dumps({"error": "invalid_client",
                                                        "error_description": "no client certificate"}),
                                       [("Content-Type", "application/json")])
                with LOCK:
                    TOKENS["n"] += 1
                    token = f"mtls-{TOKENS['n']}-{fingerprint[:16]}"
                lifetime = 2 if url.path == "/token-short" else 3600
                return self.answer(200, json.dumps({"access_token": token, "expires_in": lifetime,
                                                    "token_type": "Bearer"}),
                                   [("Content-Type", "application/json")])
            if url.path == "/.well-known/oauth-authorization-server" and listener == "origin":
                origin, other = (f"https://127.0.0.1:{PORTS[n]}" for n in ("origin", "other"))
                return self.answer(200, json.dumps({
                    "issuer": origin,
                    "token_endpoint": f"{origin}/plain-token",
                    "mtls_endpoint_aliases": {"token_endpoint": f"{other}/token"},
                    "token_endpoint_auth_methods_supported": ["tls_client_auth",
                                                              "self_signed_tls_client_auth"],
                }), [("Content-Type", "application/json")])
            if url.path == "/loop":
                return self.answer(302, "", [("Location", "/loop")])
            if url.path == "/refuses-first-token":
                auth = self.headers.get("Authorization") or ""
                return self.answer(401 if auth.startswith("Bearer mtls-1-") else 200, "ok")
            if url.path == "/redirect":
                query = urllib.parse.parse_qs(url.query)
                status = int(query.get("status", ["302"])[0])
                time.sleep(int(query.get("delay_ms", ["0"])[0]) / 1000)
                return self.answer(status, "", [("Location", query["to"][0])])
            return self.answer(200, "ok")

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

        def log_message(self, *args):
            pass

    return Handler


class Control(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/.well-known/oauth-authorization-server":
            me = f"http://127.0.0.1:{self.server.server_address[1]}"
            data = json.dumps({"issuer": me, "token_endpoint": f"{me}/token",
                               "mtls_endpoint_aliases": {"token_endpoint": f"{me}/token"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        with LOCK:
            if self.path == "/clear":
                LOG.clear()
            data = json.dumps(LOG).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client closing a kept-alive connection (a rotated or freed client) is no error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def tls_server(listener, cert, key, trusted):
    server = Quiet(("127.0.0.1", 0), make_handler(listener))
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    for pem in trusted:
        ctx.load_verify_locations(pem)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    return server


def main():
    cert, key, trusted = sys.argv[1], sys.argv[2], sys.argv[3:]
    servers = [tls_server("origin", cert, key, trusted), tls_server("other", cert, key, trusted),
               http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)]
    PORTS["origin"], PORTS["other"] = (s.server_address[1] for s in servers[:2])
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("PORTS " + " ".join(str(s.server_address[1]) for s in servers), flush=True)
    # Bounded: stops after 120 s, or as soon as the test closes our stdin (or dies).
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(120)


if __name__ == "__main__":
    main()
