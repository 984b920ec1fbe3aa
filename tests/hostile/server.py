#!/usr/bin/env python3
"""A hostile HTTP server for tests/hostile/hostile.c, on 127.0.0.1 only.

It listens on two ephemeral ports (two origins: "main" and "other"), writes "PORTS <main> <other>"
to stdout (and to --port-file), and exits by itself after --lifetime seconds. What it does is
chosen per request by the first path segment, e.g. POST /reset (the token endpoint) or
GET /echo?nonce=7 (an API). Every behaviour works on either port; handlers are bounded in
time, and a client that goes away ends them.

Tokens it issues are "HTK-<serial>-<random hex>", remembered so API behaviours can tell a valid
token from none or a stale one.
"""
import argparse
import base64
import itertools
import json
import os
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()
ISSUED = set()
SERIAL = [0]
FIRST_TOKEN_FOR = {}  # nonce -> first token seen by /401_once
PORTS = {}

MAX_HANDLER_SECONDS = 20


def issue():
    with LOCK:
        SERIAL[0] += 1
        t = "HTK-%d-%s" % (SERIAL[0], secrets.token_hex(12))
        ISSUED.add(t)
    return t


class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        self.headers = headers  # lower-case name -> value
        self.body = body
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query))

    def bearer(self):
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def auth_state(self):
        t = self.bearer()
        if t is None:
            return "none"
        return "valid" if t in ISSUED else "invalid"


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    while len(rest) < n:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Request(method, target, headers, rest[:n])


def response(status, body=b"", headers=(), reason="X", close=False):
    if isinstance(body, str):
        body = body.encode()
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    names = [h[0].lower() for h in headers]
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if "content-length" not in names and "transfer-encoding" not in names:
        head += "Content-Length: %d\r\n" % len(body)
    if close:  # the handler closes after this one: say so, or the client reuses a dead socket
        head += "Connection: close\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def json_response(status, obj, close=False):
    return response(status, json.dumps(obj), [("Content-Type", "application/json")], close=close)


def grant(token=None, **extra):
    body = {"access_token": token if token is not None else issue(), "expires_in": 3600,
            "token_type": "Bearer"}
    body.update(extra)
    return body


def echoed(req, kind):
    """What an echoing server or proxy error page would reflect back."""
    auth = req.headers.get("authorization", "")
    form = req.body.decode("latin-1")
    decoded_form = urllib.parse.unquote_plus(form)
    basic = ""
    if auth.startswith("Basic "):
        try:
            basic = base64.b64decode(auth[6:]).decode("latin-1")
        except Exception:
            basic = "?"
    fields = urllib.parse.parse_qs(form)
    assertion = fields.get("client_assertion", [""])[0]
    grant_assertion = fields.get("assertion", [""])[0]  # the JWT-bearer grant's
    subject = fields.get("subject_token", [""])[0]
    proof = req.headers.get("dpop", "")
    return {
        # client assertions and DPoP proofs, whole and as their signature alone
        "assertion": assertion,
        "assertionsig": assertion.rsplit(".", 1)[-1],
        "grantassertion": grant_assertion,
        "grantassertionsig": grant_assertion.rsplit(".", 1)[-1],
        "subject": subject,
        "subjectsig": subject.rsplit(".", 1)[-1],
        "proof": proof,
        "proofsig": proof.rsplit(".", 1)[-1],
        "body": form,
        "body_lower": form.replace("%2B", "%2b").replace("%2F", "%2f").replace("%3A", "%3a"),
        "body_decoded": decoded_form,
        "auth": auth,
        "auth_decoded": basic,
        "auth_unquoted": urllib.parse.unquote_plus(basic),
        "all": "body=[%s] auth=[%s] decoded=[%s] pair=[%s]" % (form, auth, decoded_form, basic),
        # The secret straddling character 200, where an old cut fell.
        "at200": "x" * 170 + decoded_form + "|" + auth + "|" + basic,
        "pct": urllib.parse.quote(decoded_form, safe=""),
        "pct_lower": re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                            urllib.parse.quote(decoded_form, safe="")),
        "b64_secret": base64.b64encode(
            urllib.parse.parse_qs(form).get("client_secret", [""])[0].encode()).decode()
        if form else base64.urlsafe_b64encode(auth.encode()).decode(),
    }[kind]


# ---- behaviours ----------------------------------------------------------------------------

def transport(conn, req, what):
    if what == "reset":
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    elif what == "close":
        conn.close()
    elif what == "hang":
        time.sleep(MAX_HANDLER_SECONDS)
    elif what == "garbage":
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    elif what == "half_status":
        conn.sendall(b"HTTP/1.1 20")
        conn.close()
    elif what == "bad_status":
        conn.sendall(b"HTTP/1.1 999999 Huh\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    elif what == "no_headers_end":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
        conn.close()
    elif what == "drip_headers":
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
            conn.sendall(bytes([b]))
            time.sleep(0.2)
    elif what == "drip_body":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
        for _ in range(200):
            conn.sendall(b" ")
            time.sleep(0.2)
    elif what == "short_body":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"access_token\":")
        conn.close()
    elif what == "huge_cl":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n0123456789")
        conn.close()
    elif what == "big_cl":  # under a 1 GiB cap, so only what arrives may be allocated
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n0123456789")
        conn.close()
    elif what == "endless_chunked":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
        deadline = time.time() + MAX_HANDLER_SECONDS
        while time.time() < deadline:
            conn.sendall(chunk)
    elif what == "endless_close":  # no length: the body ends when the connection does
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        deadline = time.time() + MAX_HANDLER_SECONDS
        while time.time() < deadline:
            conn.sendall(b"z" * 65536)
    elif what == "big_body":  # 2 MiB, declared honestly
        conn.sendall(response(200, b"{" + b" " * (2 << 20) + b"}", close=True))
    elif what == "bad_chunk":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")
        conn.close()
    elif what == "many_headers":
        conn.sendall(response(200, "{}", [("X-H%d" % i, "v") for i in range(500)], close=True))
    elif what == "huge_header":
        conn.sendall(response(200, "{}", [("X-Big", "v" * (1 << 20))], close=True))
    elif what == "early_hints":
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" +
                     json_response(200, grant(), close=True))
    else:
        return False
    return True


TOKEN_BODIES = {
    "not_json": "<html>Welcome to nginx</html>",
    "empty": "",
    "json_array": "[1,2]",
    "json_string": '"access_token"',
    "json_null": "null",
    "truncated": '{"access_token":"abc","expires_in":36',
    "no_access_token": '{"expires_in":3600,"token_type":"Bearer"}',
    "token_number": '{"access_token":12345,"expires_in":3600}',
    "token_null": '{"access_token":null,"expires_in":3600}',
    "token_empty": '{"access_token":"","expires_in":3600}',
    "token_object": '{"access_token":{"a":1},"expires_in":3600}',
    # Bodies are sent as their latin-1 bytes: this one is valid UTF-8 JSON with a non-ASCII token.
    "token_non_ascii": '{"access_token":"caf\u00e9-t\u00f6ken","expires_in":3600}'.encode().decode(
        "latin-1"),
    "token_invalid_utf8": '{"access_token":"caf\u00e9","expires_in":3600}',
    "token_latin1_escape": '{"access_token":"abc\\u00ffdef","expires_in":3600}',
    "token_control": '{"access_token":"abc\\u0001def","expires_in":3600}',
    "token_newline": '{"access_token":"abc\\r\\nX-Evil: 1","expires_in":3600}',
    "token_space": '{"access_token":"abc def","expires_in":3600}',
    "token_nul": '{"access_token":"abc\\u0000def","expires_in":3600}',
    "token_emoji": '{"access_token":"\\ud83d\\ude00","expires_in":3600}',
    "type_mac": '{"access_token":"abc","expires_in":3600,"token_type":"mac"}',
    "type_number": '{"access_token":"abc","expires_in":3600,"token_type":7}',
    "expires_negative": '{"access_token":"abc","expires_in":-5}',
    "expires_zero": '{"access_token":"abc","expires_in":0}',
    "expires_word": '{"access_token":"abc","expires_in":"soon"}',
    "expires_object": '{"access_token":"abc","expires_in":{}}',
    "expires_huge": '{"access_token":"abc","expires_in":1e400}',
    "expires_nan": '{"access_token":"abc","expires_in":NaN}',
    "deep_json": "[" * 100000 + "]" * 100000,
    "utf16": '\ufeff{"access_token":"abc"}'.encode("utf-16").decode("latin-1"),
    "binary": "\x00\x01\x02\xff\xfe" * 100,
    "error_in_200": '{"access_token":"abc","error":"invalid_client","error_description":"no"}',
}


def token_ok(req, what):
    if what == "ok":
        return json_response(200, grant())
    if what == "slow_ok":
        time.sleep(float(req.query.get("s", "1.0")))
        return json_response(200, grant())
    if what == "ok_basic_only":  # a token only for client_secret_basic callers
        if not req.headers.get("authorization", "").startswith("Basic "):
            return json_response(401, {"error": "invalid_client"})
        return json_response(200, grant())
    if what == "ok_lower_bearer":
        return json_response(200, grant(token_type="bearer", expires_in="120"))
    if what in TOKEN_BODIES:
        return response(200, TOKEN_BODIES[what].encode("latin-1"),
                        [("Content-Type", "application/json")])
    return None


def token_status(req, what):
    # status_<code>[_<oauth error>]
    if not what.startswith("status_"):
        return None
    parts = what.split("_", 2)
    code = int(parts[1])
    if len(parts) == 3:
        return json_response(code, {"error": parts[2], "error_description": "said the server"})
    if code in (301, 302, 303, 307, 308):
        port = PORTS["main"]
        return response(code, "", [("Location", "http://127.0.0.1:%d/ok" % port)])
    return response(code, "<html><h1>%d</h1></html>" % code, [("Content-Type", "text/html")])


def token_echo(req, what):
    # echo_<status>_<kind>_<where>: where = desc (error_description), html (whole body),
    # type (token_type of a 200), expires (expires_in of a 200)
    if not what.startswith("echo_"):
        return None
    _, status, rest = what.split("_", 2)
    kind, where = rest.rsplit("_", 1)
    text = echoed(req, kind)
    status = int(status)
    if where == "desc":
        return json_response(status, {"error": "invalid_request", "error_description": text})
    if where == "html":
        return response(status, "<html><body>Bad request: %s</body></html>" % text,
                        [("Content-Type", "text/html")])
    if where == "type":
        return json_response(status, grant(token="abc", token_type=text))
    if where == "expires":
        return json_response(status, grant(token="abc", expires_in=text))
    if where == "error":
        return json_response(status, {"error": text})
    return None


NONCES = itertools.count(1)


def token_dpop(req, what):
    if what == "dpop_nonce_loop":  # asks for a new DPoP nonce every time
        return response(400, json.dumps({"error": "use_dpop_nonce", "error_description": "again"}),
                        [("Content-Type", "application/json"),
                         ("DPoP-Nonce", "nonce-%d" % next(NONCES))])
    return None


def discovery(req, what):
    # /.well-known/oauth-authorization-server/<case>: authorization server metadata
    if what != ".well-known":
        return None
    case = req.path.rstrip("/").rsplit("/", 1)[-1]
    issuer = "http://127.0.0.1:%d/%s" % (PORTS["main"], case)
    doc = {"issuer": issuer, "token_endpoint": "http://127.0.0.1:%d/ok" % PORTS["main"]}
    if case == "disc_404":
        return response(404, "<html>not here</html>", [("Content-Type", "text/html")])
    if case == "disc_html":
        return response(200, "<html>metadata?</html>", [("Content-Type", "text/html")])
    if case == "disc_foreign":
        doc["issuer"] = "https://attacker.example/\r\nX-Injected: 1"
    if case == "disc_no_endpoint":
        del doc["token_endpoint"]
    if case == "disc_remote_http":
        doc["token_endpoint"] = "http://remote.example/token"
    if case == "disc_huge":
        doc["padding"] = "x" * (2 << 20)
    if case == "disc_redirect":
        return response(302, "", [("Location", "http://127.0.0.1:%d/ok" % PORTS["main"])])
    return json_response(200, doc)


def api(conn, req, what):
    if what == "api_dpop_nonce_loop":  # a resource server that asks for a new nonce every time
        return response(401, '{"error":"use_dpop_nonce"}',
                        [("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'),
                         ("DPoP-Nonce", "api-nonce-%d" % next(NONCES))])
    port = PORTS["main"]
    other = PORTS["other"]
    state = req.auth_state()
    if what == "echo":
        return response(200, "nonce=%s auth=%s method=%s len=%d" % (
            req.query.get("nonce", ""), state, req.method, len(req.body)),
            [("X-Nonce", req.query.get("nonce", ""))])
    if what == "need_token":  # 200 only with a valid token
        if state != "valid":
            return response(401, "denied", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return response(200, "nonce=%s auth=valid" % req.query.get("nonce", ""))
    if what == "always_401":
        return response(401, "denied auth=%s" % state,
                        [("WWW-Authenticate", 'Bearer error="invalid_token"')])
    if what == "401_once":
        nonce = req.query.get("nonce", "")
        with LOCK:
            first = FIRST_TOKEN_FOR.setdefault(nonce, req.bearer())
        if req.bearer() == first:
            return response(401, "stale", [("WWW-Authenticate", 'Bearer error="invalid_token"')])
        return response(200, "fresh auth=%s" % state)
    if what == "to_other":  # redirect to the other origin, path from ?to=
        return response(302, "", [("Location", "http://127.0.0.1:%d/%s" % (
            other, req.query.get("to", "echo")))])
    if what == "to_same":
        return response(307, "", [("Location", "http://127.0.0.1:%d/%s" % (
            port, req.query.get("to", "echo")))])
    if what == "to_other_and_back":
        return response(302, "", [("Location", "http://127.0.0.1:%d/to_same?to=%s" % (
            other, req.query.get("to", "echo")))])
    if what == "to_remote_http":
        # The path carries the token: a message quoting the target must not show it.
        return response(302, "", [("Location", "http://remote.example/%s/x?q=%s" % (
            req.bearer(), req.bearer()))])
    if what == "to_loop":
        return response(302, "", [("Location", "/to_loop")])
    if what == "to_ftp":
        return response(302, "", [("Location", "ftp://127.0.0.1/x")])
    if what == "to_bad":
        return response(302, "", [("Location", "http://[::1:bad/")])
    if what == "referer":
        return response(200, "referer=[%s]" % req.headers.get("referer", ""))
    if what == "to_referer":
        return response(302, "", [("Location", "http://127.0.0.1:%d/referer" % other)])
    if what.startswith("code_"):
        code = int(what[5:])
        if code in (204, 304):
            return b"HTTP/1.1 %d X\r\n\r\n" % code
        return response(code, "code %d" % code)
    if what == "bad_header_value":
        return b"HTTP/1.1 200 OK\r\nX-Bin: \xff\xfe\x80\r\nContent-Length: 2\r\n\r\nok"
    if what == "token_in_401":  # an API that echoes the token in a 401 body
        return response(401, "your token %s is bad" % req.bearer())
    return None


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        conn = self.request
        conn.settimeout(MAX_HANDLER_SECONDS)
        try:
            while True:
                req = read_request(conn)
                if req is None:
                    return
                what = req.path.strip("/").split("/")[0]
                if transport(conn, req, what):
                    return
                out = (token_ok(req, what) or token_status(req, what) or token_echo(req, what)
                       or token_dpop(req, what) or discovery(req, what) or api(conn, req, what))
                if out is None:
                    out = response(404, "no behaviour %r" % what)
                conn.sendall(out)
        except (OSError, ValueError):
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=300)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    servers = {}
    for name in ("main", "other"):
        s = Server(("127.0.0.1", 0), Handler)
        servers[name] = s
        PORTS[name] = s.server_address[1]
        threading.Thread(target=s.serve_forever, daemon=True).start()
    line = "PORTS %d %d\n" % (PORTS["main"], PORTS["other"])
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(line)
        os.replace(args.port_file + ".tmp", args.port_file)
    sys.stdout.write(line)
    sys.stdout.flush()
    # Bounded life, also when whoever started us was killed.
    deadline = time.time() + args.lifetime
    while time.time() < deadline:
        time.sleep(0.5)
        if os.getppid() == 1:
            break
    os._exit(0)


if __name__ == "__main__":
    main()
