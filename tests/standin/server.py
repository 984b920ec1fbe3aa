#!/usr/bin/env python3
"""The local stand-in for the Aspose Cloud API: an OAuth2 token endpoint plus a Bearer-checked API.

The contract (paths, knobs, scripts, stats) is tests/standin/PROTOCOL.md; this file implements it.
Python 3.11, standard library only. Binds 127.0.0.1 only and stops by itself after --lifetime s.

    python3 tests/standin/server.py [--port 0] [--lifetime 600] [--port-file PATH]
                                    [--idle-timeout S] [--verbose]
"""

import argparse
import base64
import binascii
import collections
import copy
import json
import os
import random
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote_plus, urlsplit

CLIENTS = {"demo-client": "demo-secret", "odd+id:%": "s3cr+t:with%odd chars&="}
DEFAULT_KNOBS = {
    "token_expires_in": 3600,
    "token_type": "Bearer",
    "token_delay_ms": 0,
    "token_script": [],
    "api_script": [],
    "token_default": None,
    "clients": None,  # {id: secret} replacing CLIENTS (secret rotation tests); null = CLIENTS
    "token_refresh_in": None,  # a value for a "refresh_in" field in token answers
    "token_fail_ratio": 0,  # this share of token requests answers 503 (soak tests)
    "api_revoke_ratio": 0,  # this share of API requests revokes the token it carries (401)
    "api_revoke_gap_ms": 0,  # after a random revocation, none for this long
    "random_seed": None,  # seeds the two ratios' random choices
}
ENTRY_FIELDS = {"status", "headers", "body", "delay_ms", "pad_bytes", "close"}
TOKEN_LOG_SIZE = 50
API_LOG_SIZE = 50
MAX_REQUEST_BODY = 256 << 20
MAX_BIG_BYTES = 1 << 30
IO_TIMEOUT_S = 60.0  # per socket operation once a request has started
OCR_TEXT = "Hello from the cloudauth stand-in ({n} image bytes)"


class BadRequest(Exception):
    """A request the server answers with an error status and then closes the connection."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


# ---- state ---------------------------------------------------------------------------------------


class State:
    """Everything mutable. Every access holds `lock`; nothing sleeps or does I/O while holding it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.knobs = copy.deepcopy(DEFAULT_KNOBS)
        self.token_requests = 0
        self.api_requests = 0
        self.unauthorized = 0
        self.connections = 0
        self.tokens = {}  # access token -> monotonic deadline, or None if it never expires
        self.tasks = {}  # OCR task id -> {"bytes": n, "polls": k}
        self.token_log = collections.deque(maxlen=TOKEN_LOG_SIZE)
        self.api_log = collections.deque(maxlen=API_LOG_SIZE)
        self.random = random.Random()
        self.used_tokens = set()  # tokens that passed the Bearer check at least once
        self.no_revoke_until = 0.0

    def stats(self):
        return {
            "token_requests": self.token_requests,
            "api_requests": self.api_requests,
            "unauthorized": self.unauthorized,
            "connections": self.connections,
            "last_token_request": self.token_log[-1] if self.token_log else None,
            "token_log": list(self.token_log),
            "api_log": list(self.api_log),
        }

    def token_is_valid(self, token):
        if token not in self.tokens:
            return False
        deadline = self.tokens[token]
        return deadline is None or time.monotonic() < deadline


# ---- pure helpers --------------------------------------------------------------------------------


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_access_token(client_id):
    """A JWT-shaped string, unique per call (the stand-in never checks the signature)."""
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": "cloudauth-standin", "sub": client_id, "jti": str(uuid.uuid4()), "iat": int(time.time())}
    parts = [json.dumps(header).encode(), json.dumps(payload).encode(), secrets.token_bytes(32)]
    return ".".join(b64url(p) for p in parts)


def lifetime_seconds(expires_in):
    """Seconds a token lives given the expires_in value sent, or None if it is not numeric."""
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, (int, float)):
        return float(expires_in)
    if isinstance(expires_in, str):
        try:
            return float(expires_in.strip())
        except ValueError:
            return None
    return None


def decode_basic(value):
    """`Basic base64(urlenc(id):urlenc(secret))` -> {"client_id", "client_secret"}; None if the
    header is not Basic at all; both fields None if it is Basic but malformed."""
    scheme, _, b64 = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(b64.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raw = ""
    client_id, sep, secret = raw.partition(":")
    if not sep:
        return {"client_id": None, "client_secret": None}
    return {"client_id": unquote_plus(client_id), "client_secret": unquote_plus(secret)}


def parse_form(body):
    """Decoded form fields; the first value wins for a repeated name."""
    form = {}
    for key, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        form.setdefault(key, value)
    return form


def header_safe(text):
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in text and "\n" not in text


def check_entry(entry, where):
    """Raises ValueError with a readable message if `entry` is not a valid script entry."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: an entry must be a JSON object, got {json.dumps(entry)}")
    unknown = set(entry) - ENTRY_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(ENTRY_FIELDS)}")
    status = entry.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ValueError(f"{where}: status must be an integer 200..599")
    headers = entry.get("headers", {})
    if not isinstance(headers, dict):
        raise ValueError(f"{where}: headers must be an object")
    for name, value in headers.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"{where}: header {name!r} must have a string or number value")
        if not name or ":" in name or " " in name or not header_safe(name) or not header_safe(str(value)):
            raise ValueError(f"{where}: header {name!r} is not a valid header line")
    for field in ("delay_ms", "pad_bytes"):
        value = entry.get(field, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{where}: {field} must be a number >= 0")
    if not isinstance(entry.get("close", False), bool):
        raise ValueError(f"{where}: close must be true or false")


def check_knobs(knobs):
    """Raises ValueError with a readable message if `knobs` is not a valid /_control/config body."""
    if not isinstance(knobs, dict):
        raise ValueError("the config body must be a JSON object")
    unknown = set(knobs) - set(DEFAULT_KNOBS)
    if unknown:
        raise ValueError(f"unknown knob(s) {sorted(unknown)}; known: {sorted(DEFAULT_KNOBS)}")
    delay = knobs.get("token_delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError("token_delay_ms must be a number >= 0")
    for name in ("token_script", "api_script"):
        script = knobs.get(name, [])
        if not isinstance(script, list):
            raise ValueError(f"{name} must be a list of entries")
        for i, entry in enumerate(script):
            check_entry(entry, f"{name}[{i}]")
    if knobs.get("token_default") is not None:
        check_entry(knobs["token_default"], "token_default")
    clients = knobs.get("clients")
    if clients is not None and (
        not isinstance(clients, dict) or not all(isinstance(v, str) for v in clients.values())
    ):
        raise ValueError("clients must be an object of client_id -> client_secret strings, or null")
    for name in ("token_fail_ratio", "api_revoke_ratio"):
        ratio = knobs.get(name, 0)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ValueError(f"{name} must be a number from 0 to 1")


def entry_body(entry):
    body = entry.get("body", "")
    return body.encode("utf-8") if isinstance(body, str) else json.dumps(body).encode("utf-8")


# ---- the handler ---------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudauth-standin/1.0"
    default_request_version = "HTTP/1.1"  # even a garbled request line gets a status line back
    disable_nagle_algorithm = True  # small responses go out at once, not after a delayed ACK

    # -- plumbing

    def __getattr__(self, name):
        # BaseHTTPRequestHandler calls do_<METHOD>; route every method (GET, POST, PURGE...) here.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def version_string(self):
        return self.server_version

    @property
    def state(self):
        return self.server.state

    def handle_one_request(self):
        # Waiting for the next request on a kept-alive connection: the idle timeout applies.
        self.connection.settimeout(self.server.idle_timeout)
        super().handle_one_request()

    def parse_request(self):
        # A request has started: a generous per-operation timeout instead.
        self.connection.settimeout(IO_TIMEOUT_S)
        return super().parse_request()

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"standin: {self.address_string()} {format % args}\n")

    def dispatch(self):
        self.responded = False
        try:
            try:
                body = self.read_body()
            except BadRequest as e:
                self.close_connection = True
                self.send_json(e.status, {"error": "invalid_request", "message": str(e)})
                return
            url = urlsplit(self.path)
            if url.path == "/connect/token":
                self.token_endpoint(body)
            elif url.path.startswith("/_control/"):
                self.control(url.path, body)
            else:
                self.api(url.path, url.query, body)
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
        except Exception:  # a bug here must not take the server down
            self.close_connection = True
            if self.server.verbose:
                traceback.print_exc()
            if not self.responded:
                try:
                    self.send_json(500, {"error": "server_error", "message": traceback.format_exc(limit=1)})
                except OSError:
                    pass

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.strip().isdigit():
            raise BadRequest(400, f"bad Content-Length {length!r}")
        n = int(length)
        if n > MAX_REQUEST_BODY:
            raise BadRequest(413, f"request body over {MAX_REQUEST_BODY} bytes")
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionError("client closed mid-body")
        return data

    def read_chunked(self):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionError("client closed mid-body")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest(400, f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BODY:
                raise BadRequest(413, f"request body over {MAX_REQUEST_BODY} bytes")
            data = self.rfile.read(size)
            if len(data) < size:
                raise ConnectionError("client closed mid-body")
            chunks.append(data)
            self.rfile.readline(1024)  # the CRLF after the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers, ignored
        return b"".join(chunks)

    def request_headers(self):
        seen = {}
        for name, value in self.headers.items():
            key = name.lower()
            seen[key] = f"{seen[key]}, {value}" if key in seen else value
        return seen

    # -- answering

    def respond(self, status, body=b"", content_type="application/json", headers=()):
        """Sends one whole response. Always with Content-Length (unless the status has no body)."""
        headers = [(str(k), str(v)) for k, v in (headers.items() if isinstance(headers, dict) else headers)]
        names = {k.lower() for k, _ in headers}
        bodyless = status in (204, 304) or status < 200
        self.send_response(status)
        if content_type and not bodyless and "content-type" not in names:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        if "content-length" in names:
            self.close_connection = True  # a scripted length may lie; don't reuse the connection
        elif not bodyless:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection and "connection" not in names:
            self.send_header("Connection", "close")
        self.end_headers()
        self.responded = True
        if self.command != "HEAD" and not bodyless and body:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        self.respond(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def drop(self):
        """Closes the connection without writing a byte (script entries with close: true)."""
        self.close_connection = True
        self.responded = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def method_not_allowed(self, allowed):
        self.send_json(405, {"error": "method_not_allowed", "message": f"use {allowed}"}, {"Allow": allowed})

    # -- token endpoint

    def token_endpoint(self, body):
        headers = self.request_headers()
        form = parse_form(body)
        basic = decode_basic(headers.get("authorization", ""))
        log = {"method": self.command, "path": self.path, "headers": headers, "form": form, "basic": basic}
        with self.state.lock:
            self.state.token_requests += 1
            self.state.token_log.append(log)
            knobs = self.state.knobs
            entry = knobs["token_script"].pop(0) if knobs["token_script"] else knobs["token_default"]
            if entry is None and self.state.random.random() < knobs["token_fail_ratio"]:
                entry = {"status": 503, "body": {"error": "temporarily_unavailable"}}
            delay_ms = knobs["token_delay_ms"]
        time.sleep((delay_ms + (entry or {}).get("delay_ms", 0)) / 1000)
        if entry is not None:
            self.scripted_token(entry, form.get("client_id") or (basic or {}).get("client_id") or "")
        else:
            self.normal_token(headers, form, basic)

    def scripted_token(self, entry, client_id):
        if entry.get("close"):
            return self.drop()
        status = entry.get("status", 200)
        if "body" in entry:
            body = entry_body(entry)
        elif status == 200 or entry.get("pad_bytes"):
            body = self.issue_token(client_id, entry.get("pad_bytes", 0))
        else:
            body = b""
        self.respond(status, body, "application/json", entry.get("headers", {}))

    def normal_token(self, headers, form, basic):
        if self.command != "POST":
            return self.method_not_allowed("POST")
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return self.token_error(400, "unsupported_grant_type", "Content-Type must be application/x-www-form-urlencoded")
        if form.get("grant_type") != "client_credentials":
            return self.token_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
        creds = basic if basic is not None else form
        client_id, secret = creds.get("client_id"), creds.get("client_secret")
        with self.state.lock:
            clients = self.state.knobs["clients"] or CLIENTS
        if client_id not in clients or not secrets.compare_digest(clients[client_id], secret or ""):
            challenge = {"WWW-Authenticate": 'Basic realm="cloudauth-standin"'} if "authorization" in headers else {}
            return self.token_error(401, "invalid_client", "Client authentication failed", challenge)
        self.respond(200, self.issue_token(client_id), "application/json", self.no_store())

    def token_error(self, status, error, description, headers=None):
        body = {"error": error, "error_description": description}
        self.send_json(status, body, {**self.no_store(), **(headers or {})})

    @staticmethod
    def no_store():
        return {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def issue_token(self, client_id, pad_bytes=0):
        """Registers a new access token and returns the token response body."""
        token = new_access_token(client_id)
        with self.state.lock:
            expires_in = self.state.knobs["token_expires_in"]
            token_type = self.state.knobs["token_type"]
            seconds = lifetime_seconds(expires_in)
            self.state.tokens[token] = None if seconds is None else time.monotonic() + seconds
        answer = {"access_token": token}
        if self.state.knobs["token_refresh_in"] is not None:
            answer["refresh_in"] = self.state.knobs["token_refresh_in"]
        if expires_in != "omit":
            answer["expires_in"] = expires_in
        if token_type != "omit":
            answer["token_type"] = token_type
        body = json.dumps(answer)
        if pad_bytes:
            answer["pad"] = ""
            body = json.dumps(answer)
            answer["pad"] = "x" * max(0, int(pad_bytes) - len(body))
            body = json.dumps(answer)
        return body.encode("utf-8")

    # -- API

    def api(self, path, query, body):
        if path.startswith("/public/"):  # the same routes, no Bearer check, not counted
            return self.route(path.removeprefix("/public"), query, body)
        # Logged with its headers, so that a test can tell which origin ever saw a token.
        log = {"method": self.command, "path": self.path, "headers": self.request_headers()}
        with self.state.lock:
            token = self.bearer_token()
            authorized = self.state.token_is_valid(token)
            # Only a token that has worked before is revoked, so a resend with a fresh one passes.
            if (authorized and token in self.state.used_tokens
                    and time.monotonic() >= self.state.no_revoke_until
                    and self.state.random.random() < self.state.knobs["api_revoke_ratio"]):
                self.state.tokens.pop(token, None)
                self.state.no_revoke_until = time.monotonic() + self.state.knobs["api_revoke_gap_ms"] / 1000
                authorized = False
            if authorized:
                self.state.used_tokens.add(token)
            log["authorized"] = authorized
            self.state.api_log.append(log)
            if authorized:
                self.state.api_requests += 1
            else:
                self.state.unauthorized += 1
            script = self.state.knobs["api_script"]
            entry = script.pop(0) if authorized and script else None
        if not authorized:
            body = {"error": "invalid_token"}
            return self.send_json(401, body, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if entry is not None:
            return self.scripted_api(entry)
        self.route(path, query, body)

    def bearer_token(self):
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def scripted_api(self, entry):
        time.sleep(entry.get("delay_ms", 0) / 1000)
        if entry.get("close"):
            return self.drop()
        if "body" in entry:
            body = entry_body(entry)
        else:
            body = b"a" * int(entry.get("pad_bytes", 0))
        self.respond(entry.get("status", 200), body, "application/json", entry.get("headers", {}))

    def route(self, path, query, body):
        params = dict(parse_qsl(query, keep_blank_values=True))
        reading = self.command in ("GET", "HEAD")
        if path == "/echo":
            headers = {"X-Echo-Method": self.command, "X-Echo-Query": query}
            self.respond(200, body, "application/octet-stream", headers)
        elif path == "/headers":
            if not reading:
                return self.method_not_allowed("GET")
            self.send_json(200, {"headers": self.request_headers()})
        elif path.startswith("/status/"):
            self.status_route(path.removeprefix("/status/"))
        elif path.startswith("/delay/"):
            self.delay_route(path.removeprefix("/delay/"))
        elif path == "/redirect":
            self.redirect_route(params)
        elif path == "/big":
            self.big_route(params)
        elif path.lower() == "/v5.0/ocr/recognizeimage":
            if self.command == "POST":
                self.ocr_submit(body)
            elif reading:
                self.ocr_poll(params)
            else:
                self.method_not_allowed("GET, POST")
        elif path.lower() == "/v4.0/words/info":
            # The one Words route the Node SDK bridge test calls (asposewordscloud's getInfo).
            if not reading:
                return self.method_not_allowed("GET")
            info = {"Name": "cloudauth stand-in Words", "Version": "24.12", "AdditionalInfo": []}
            self.send_json(200, info)
        else:
            self.send_json(404, {"error": "not_found", "message": f"no route for {path}"})

    def status_route(self, code):
        if not code.isdigit() or not 200 <= int(code) <= 599:
            return self.send_json(400, {"error": "invalid_request", "message": "status must be 200..599"})
        self.send_json(int(code), {"status": int(code)})

    def delay_route(self, ms):
        if not ms.isdigit() or int(ms) > 600_000:
            return self.send_json(400, {"error": "invalid_request", "message": "delay must be 0..600000 ms"})
        time.sleep(int(ms) / 1000)
        self.send_json(200, {"delayed_ms": int(ms)})

    def redirect_route(self, params):
        code = params.get("code", "302")
        if code not in ("301", "302", "303", "307", "308") or not params.get("to"):
            message = "need to=<url> and code one of 301, 302, 303, 307, 308"
            return self.send_json(400, {"error": "invalid_request", "message": message})
        if not header_safe(params["to"]):
            return self.send_json(400, {"error": "invalid_request", "message": "to is not a valid URL"})
        self.send_json(int(code), {"location": params["to"]}, {"Location": params["to"]})

    def big_route(self, params):
        n = params.get("bytes", "")
        if not n.isdigit() or int(n) > MAX_BIG_BYTES:
            return self.send_json(400, {"error": "invalid_request", "message": f"bytes must be 0..{MAX_BIG_BYTES}"})
        n = int(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        self.responded = True
        if self.command == "HEAD":
            return
        chunk = b"a" * (1 << 20)
        while n > 0:
            self.wfile.write(chunk[: min(n, len(chunk))])
            n -= len(chunk)

    def ocr_submit(self, body):
        try:
            request = json.loads(body)
            image = base64.b64decode(request["image"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            message = 'the body must be JSON {"image": <base64>, "settings": {...}}'
            return self.send_json(400, {"error": "invalid_request", "message": message})
        if not image:
            return self.send_json(400, {"error": "invalid_request", "message": "the image is empty"})
        task_id = str(uuid.uuid4())
        with self.state.lock:
            self.state.tasks[task_id] = {"bytes": len(image), "polls": 0}
        self.respond(200, task_id.encode("ascii"), "text/plain")

    def ocr_poll(self, params):
        task_id = params.get("id")
        if not task_id:
            return self.send_json(400, {"error": "invalid_request", "message": "need id=<task id>"})
        with self.state.lock:
            task = self.state.tasks.get(task_id)
            if task is not None:
                task["polls"] += 1
                task = dict(task)
        if task is None:
            error = {"messages": [f"no task {task_id}"]}
            return self.send_json(404, {"id": task_id, "responseStatusCode": "TaskNotFound",
                                        "taskStatus": "Error", "results": [], "error": error})
        # Every field the real API sends and the official SDKs read (their examples assert
        # responseStatusCode == "Ok").
        answer = {"id": task_id, "responseStatusCode": "Ok", "taskStatus": "Processing",
                  "results": [], "error": None}
        if task["polls"] > 1:
            text = OCR_TEXT.format(n=task["bytes"]).encode("utf-8")
            answer["taskStatus"] = "Completed"
            answer["results"] = [{"type": "Text", "data": base64.b64encode(text).decode("ascii")}]
        self.send_json(200, answer)

    # -- control

    def control(self, path, body):
        routes = {
            "/_control/reset": ("POST", self.control_reset),
            "/_control/config": ("POST", self.control_config),
            "/_control/revoke": ("POST", self.control_revoke),
            "/_control/stats": ("GET", self.control_stats),
            "/_control/shutdown": ("POST", self.control_shutdown),
        }
        if path not in routes:
            return self.send_json(404, {"error": "not_found", "message": f"no control call {path}"})
        method, action = routes[path]
        if self.command != method and not (method == "GET" and self.command == "HEAD"):
            return self.method_not_allowed(method)
        action(body)

    def control_reset(self, _body):
        with self.state.lock:
            self.state.reset()
        self.send_json(200, {"ok": True})

    def control_config(self, body):
        try:
            knobs = json.loads(body.decode("utf-8"))
            check_knobs(knobs)
        except (ValueError, UnicodeDecodeError) as e:
            return self.send_json(400, {"error": "invalid_config", "message": str(e)})
        with self.state.lock:
            self.state.knobs.update(copy.deepcopy(knobs))
            if knobs.get("random_seed") is not None:
                self.state.random.seed(knobs["random_seed"])
            current = copy.deepcopy(self.state.knobs)
        self.send_json(200, {"ok": True, "knobs": current})

    def control_revoke(self, _body):
        with self.state.lock:
            revoked = len(self.state.tokens)
            self.state.tokens.clear()
        self.send_json(200, {"ok": True, "revoked": revoked})

    def control_stats(self, _body):
        with self.state.lock:
            stats = copy.deepcopy(self.state.stats())
        self.send_json(200, stats)

    def control_shutdown(self, _body):
        self.close_connection = True
        self.send_json(200, {"ok": True})
        self.server.stop.set()


# ---- the server ----------------------------------------------------------------------------------


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port, idle_timeout, verbose):
        self.state = State()
        self.stop = threading.Event()
        self.idle_timeout = idle_timeout if idle_timeout > 0 else None
        self.verbose = verbose
        super().__init__(("127.0.0.1", port), Handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup of the address; skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request, client_address):
        with self.state.lock:
            self.state.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def write_port_file(path, port):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)  # readers never see a half-written file


def main(argv=None):
    parser = argparse.ArgumentParser(description="Local stand-in for the Aspose Cloud API (see PROTOCOL.md).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--lifetime", type=float, default=600, help="seconds before the server stops by itself")
    parser.add_argument("--port-file", help="also write the port to this file")
    parser.add_argument("--idle-timeout", type=float, default=0,
                        help="close a kept-alive connection idle this many seconds (0: never)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    if args.lifetime <= 0:
        parser.error("--lifetime must be > 0")

    server = StandInServer(args.port, args.idle_timeout, args.verbose)
    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"PORT {port}", flush=True)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: server.stop.set())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    if not server.stop.wait(args.lifetime) and args.verbose:
        sys.stderr.write(f"standin: lifetime of {args.lifetime:g} s is over\n")
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
