#!/usr/bin/env python3
"""Local stand-in for the Aspose Cloud API: an OAuth2 token endpoint plus Bearer-checked API.

Shared by every test suite, the examples and `make demo`. The contract is tests/standin/PROTOCOL.md.
Python 3.11 stdlib only; binds 127.0.0.1 only; stops by itself after --lifetime seconds.
"""

import argparse
import base64
import binascii
import http.server
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid

CLIENTS = {"demo-client": "demo-secret", "odd+id:%": "s3cr+t:with%odd chars&="}
OCR_TEXT = "Hello from the cloudauth stand-in ({} image bytes)"


class State:
    """Everything the control endpoints can change, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.knobs = {"token_expires_in": 3600, "token_type": "Bearer", "token_delay_ms": 0,
                      "token_default": None}
        self.token_script = []
        self.api_script = []
        self.tokens = {}  # token -> deadline (monotonic) or None
        self.revoked = set()
        self.tasks = {}  # task id -> [polls, image bytes]
        self.token_requests = 0
        self.api_requests = 0
        self.unauthorized = 0
        self.token_log = []

    def stats(self):
        return {"token_requests": self.token_requests, "api_requests": self.api_requests,
                "unauthorized": self.unauthorized, "connections": CONNECTIONS[0],
                "last_token_request": self.token_log[-1] if self.token_log else None,
                "token_log": self.token_log[-50:]}


STATE = State()
CONNECTIONS = [0]


def make_jwt():
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    now = int(time.time())
    payload = {"iss": "cloudauth-standin", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload)}.{secrets.token_urlsafe(32)}"


def token_json(pad_bytes=0):
    with STATE.lock:
        knobs = dict(STATE.knobs)
    token = make_jwt()
    body = {"access_token": token}
    if knobs["token_expires_in"] != "omit":
        body["expires_in"] = knobs["token_expires_in"]
    if knobs["token_type"] != "omit":
        body["token_type"] = knobs["token_type"]
    text = json.dumps(body)
    if pad_bytes and len(text) < pad_bytes:
        body["pad"] = "x" * (pad_bytes - len(text))
        text = json.dumps(body)
    lifetime = knobs["token_expires_in"]
    deadline = time.monotonic() + lifetime if isinstance(lifetime, (int, float)) and not isinstance(lifetime, bool) else None
    with STATE.lock:
        STATE.tokens[token] = deadline
    return text


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    verbose = False

    def setup(self):
        super().setup()
        with STATE.lock:
            CONNECTIONS[0] += 1

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("standin: " + fmt % args + "\n")

    # --- plumbing -------------------------------------------------------------------------

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status, body=b"", content_type="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        if status in (204, 304) or status < 200:
            body = b""  # these statuses never carry a body (RFC 9110 §6.4.1)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def play(self, entry, default_body):
        """Answers with one scripted entry. Returns after the answer (or the closed socket)."""
        time.sleep(entry.get("delay_ms", 0) / 1000)
        if entry.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status = entry.get("status", 200)
        body = entry.get("body")
        if body is None:
            body = default_body(entry) if status == 200 else ""
        self.reply(status, body, headers=entry.get("headers"))

    def handle_any(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            return self.reply(400, {"error": "invalid_request", "error_description": "bad body framing"})
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        if path.startswith("/_control/"):
            return self.control(path, body)
        if path == "/connect/token":
            return self.token(body)
        if path.startswith("/public/"):
            return self.api(path[len("/public"):], query, body)
        if not self.bearer_ok():
            with STATE.lock:
                STATE.unauthorized += 1
            return self.reply(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        with STATE.lock:
            STATE.api_requests += 1
            entry = STATE.api_script.pop(0) if STATE.api_script else None
        if entry is not None:
            return self.play(entry, lambda e: "")
        return self.api(path, query, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any

    def bearer_ok(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        token = auth[len("Bearer "):]
        with STATE.lock:
            if token not in STATE.tokens or token in STATE.revoked:
                return False
            deadline = STATE.tokens[token]
        return deadline is None or time.monotonic() < deadline

    # --- token endpoint -----------------------------------------------------------------------

    def token(self, body):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        basic = self.basic_credentials()
        record = {"method": self.command, "path": self.path,
                  "headers": {k.lower(): v for k, v in self.headers.items()},
                  "form": form, "basic": basic}
        with STATE.lock:
            STATE.token_requests += 1
            STATE.token_log.append(record)
            entry = STATE.token_script.pop(0) if STATE.token_script else STATE.knobs["token_default"]
            delay = STATE.knobs["token_delay_ms"]
        time.sleep(delay / 1000)
        if entry is not None:
            return self.play(entry, lambda e: token_json(e.get("pad_bytes", 0)))
        if self.command != "POST":
            return self.reply(405, {"error": "invalid_request", "error_description": "use POST"})
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.reply(400, {"error": "invalid_request", "error_description": "form body expected"})
        if form.get("grant_type") != "client_credentials":
            return self.reply(400, {"error": "unsupported_grant_type"})
        client_id, secret = (basic["client_id"], basic["client_secret"]) if basic else (form.get("client_id"), form.get("client_secret"))
        if client_id not in CLIENTS or CLIENTS[client_id] != secret:
            return self.reply(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        self.reply(200, token_json())

    def basic_credentials(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            decoded = base64.b64decode(auth[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return {"client_id": None, "client_secret": None}
        user, _, password = decoded.partition(":")
        return {"client_id": urllib.parse.unquote_plus(user), "client_secret": urllib.parse.unquote_plus(password)}

    # --- API --------------------------------------------------------------------------------

    def api(self, path, query, body):
        params = dict(urllib.parse.parse_qsl(query))
        if path == "/echo":
            return self.reply(200, body, "application/octet-stream",
                              {"X-Echo-Method": self.command, "X-Echo-Query": query})
        if path == "/headers":
            return self.reply(200, {"headers": {k.lower(): v for k, v in self.headers.items()}})
        if path.startswith("/status/") and path[8:].isdigit():
            code = int(path[8:])
            return self.reply(code, {"status": code})
        if path.startswith("/delay/") and path[7:].isdigit():
            time.sleep(int(path[7:]) / 1000)
            return self.reply(200, {"delayed_ms": int(path[7:])})
        if path == "/redirect" and "to" in params:
            return self.reply(int(params.get("code", 302)), "", headers={"Location": params["to"]})
        if path == "/big":
            return self.reply(200, b"a" * int(params.get("bytes", "0")), "application/octet-stream")
        if path.lower() == "/v5.0/ocr/recognizeimage":
            return self.ocr(params, body)
        self.reply(404, {"error": "not_found", "path": path})

    def ocr(self, params, body):
        if self.command == "POST":
            try:
                request = json.loads(body)
                image = base64.b64decode(request["image"], validate=True)
                if not image:
                    raise ValueError("empty image")
            except (ValueError, KeyError, TypeError, binascii.Error) as e:
                return self.reply(400, {"error": "invalid_request", "error_description": f"image: {e}"})
            task = str(uuid.uuid4())
            with STATE.lock:
                STATE.tasks[task] = [0, len(image)]
            return self.reply(200, task, "text/plain")
        task = params.get("id")
        with STATE.lock:
            info = STATE.tasks.get(task)
            if info is not None:
                info[0] += 1
        if info is None:
            return self.reply(404, {"id": task, "taskStatus": "Error", "results": [], "error": {"messages": ["unknown task"]}})
        if info[0] < 2:
            return self.reply(200, {"id": task, "taskStatus": "Processing", "results": [], "error": None})
        text = base64.b64encode(OCR_TEXT.format(info[1]).encode()).decode()
        self.reply(200, {"id": task, "taskStatus": "Completed", "results": [{"type": "Text", "data": text}], "error": None})

    # --- control ------------------------------------------------------------------------------

    def control(self, path, body):
        if path == "/_control/stats":
            with STATE.lock:
                return self.reply(200, STATE.stats())
        if path == "/_control/reset":
            with STATE.lock:
                STATE.reset()
            return self.reply(200, {"ok": True})
        if path == "/_control/revoke":
            with STATE.lock:
                STATE.revoked.update(STATE.tokens)
            return self.reply(200, {"ok": True})
        if path == "/_control/shutdown":
            self.reply(200, {"ok": True})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return None
        if path == "/_control/config":
            try:
                knobs = json.loads(body or b"{}")
                if not isinstance(knobs, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as e:
                return self.reply(400, {"error": f"bad config: {e}"})
            with STATE.lock:
                for key, value in knobs.items():
                    if key == "token_script":
                        STATE.token_script = list(value)
                    elif key == "api_script":
                        STATE.api_script = list(value)
                    else:
                        STATE.knobs[key] = value
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "unknown control path"})


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--port-file")
    parser.add_argument("--idle-timeout", type=float, default=None,
                        help="close a keep-alive connection idle this many seconds (like nginx's keepalive_timeout)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()

    Handler.verbose = args.verbose
    Handler.timeout = args.idle_timeout
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"PORT {port}", flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(args.lifetime, stop)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()


if __name__ == "__main__":
    main()
