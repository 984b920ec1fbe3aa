#!/usr/bin/env python3
"""Self-test of the stand-in (tests/standin/server.py) against tests/standin/PROTOCOL.md.

    python3 tests/standin/test_server.py [-v]

Stdlib only: starts the server as a subprocess and talks to it with http.client.
"""

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from urllib.parse import quote_plus, urlencode

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
WITH_SERVER = os.path.join(HERE, "with_server.sh")
ID, SECRET = "demo-client", "demo-secret"
ODD_ID, ODD_SECRET = "odd+id:%", "s3cr+t:with%odd chars&="
FORM = "application/x-www-form-urlencoded"


def start_server(*args):
    """Starts server.py; returns (process, port) once it has said `PORT <n>`."""
    proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the stand-in said {line!r}")
    return proc, int(line.split()[1])


def stop_server(proc):
    proc.kill()
    proc.wait()
    proc.stdout.close()


class Response:
    def __init__(self, r):
        self.status = r.status
        self.headers = r.headers
        self.body = r.read()

    def json(self):
        return json.loads(self.body)


class StandInTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.port = start_server("--lifetime", "300")

    @classmethod
    def tearDownClass(cls):
        stop_server(cls.proc)

    def setUp(self):
        self.assertEqual(self.call("POST", "/_control/reset").status, 200)

    # -- helpers

    def connect(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        self.addCleanup(conn.close)
        return conn

    def call(self, method, path, body=None, headers=None, conn=None):
        conn = conn or self.connect()
        conn.request(method, path, body=body, headers=headers or {})
        return Response(conn.getresponse())

    def config(self, **knobs):
        r = self.call("POST", "/_control/config", json.dumps(knobs), {"Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r.body)

    def stats(self):
        return self.call("GET", "/_control/stats").json()

    def token_call(self, fields=None, headers=None, conn=None):
        fields = {"grant_type": "client_credentials", "client_id": ID, "client_secret": SECRET} if fields is None else fields
        return self.call("POST", "/connect/token", urlencode(fields), {"Content-Type": FORM, **(headers or {})}, conn)

    def token(self):
        r = self.token_call()
        self.assertEqual(r.status, 200, r.body)
        return r.json()["access_token"]

    def api(self, method, path, token, body=None, conn=None):
        return self.call(method, path, body, {"Authorization": f"Bearer {token}"}, conn)

    # -- token endpoint

    def test_token_success_with_client_secret_post(self):
        r = self.token_call({"grant_type": "client_credentials", "client_id": ID, "client_secret": SECRET,
                             "scope": "ocr read"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "application/json")
        self.assertEqual(r.headers["Cache-Control"], "no-store")
        answer = r.json()
        self.assertEqual(answer["expires_in"], 3600)
        self.assertEqual(answer["token_type"], "Bearer")
        self.assertEqual(answer["access_token"].count("."), 2, "JWT-shaped")
        self.assertNotEqual(self.token(), answer["access_token"], "unique per request")
        last = self.stats()["token_log"][0]
        self.assertEqual(last["method"], "POST")
        self.assertEqual(last["path"], "/connect/token")
        self.assertEqual(last["headers"]["content-type"], FORM)
        self.assertEqual(last["form"], {"grant_type": "client_credentials", "client_id": ID,
                                        "client_secret": SECRET, "scope": "ocr read"})
        self.assertIsNone(last["basic"])

    def test_odd_credentials_in_the_form(self):
        r = self.token_call({"grant_type": "client_credentials", "client_id": ODD_ID, "client_secret": ODD_SECRET})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.stats()["last_token_request"]["form"]["client_secret"], ODD_SECRET)

    def test_odd_credentials_with_client_secret_basic(self):
        pair = f"{quote_plus(ODD_ID)}:{quote_plus(ODD_SECRET)}"
        basic = "Basic " + base64.b64encode(pair.encode()).decode()
        r = self.token_call({"grant_type": "client_credentials"}, {"Authorization": basic})
        self.assertEqual(r.status, 200, r.body)
        token = r.json()["access_token"]
        self.assertEqual(self.api("GET", "/echo", token).status, 200, "a Basic-issued token works")
        last = self.stats()["last_token_request"]
        self.assertEqual(last["basic"], {"client_id": ODD_ID, "client_secret": ODD_SECRET})
        self.assertNotIn("client_secret", last["form"])

    def test_wrong_or_missing_credentials_are_401_invalid_client(self):
        expected = {"error": "invalid_client", "error_description": "Client authentication failed"}
        r = self.token_call({"grant_type": "client_credentials", "client_id": ID, "client_secret": "nope"})
        self.assertEqual((r.status, r.json()), (401, expected))
        r = self.token_call({"grant_type": "client_credentials"})
        self.assertEqual((r.status, r.json()), (401, expected))
        wrong = "Basic " + base64.b64encode(f"{ID}:nope".encode()).decode()
        r = self.token_call({"grant_type": "client_credentials"}, {"Authorization": wrong})
        self.assertEqual((r.status, r.json()), (401, expected))
        self.assertIn("Basic", r.headers["WWW-Authenticate"])
        r = self.token_call({"grant_type": "client_credentials"}, {"Authorization": "Basic %%%"})
        self.assertEqual(r.status, 401)
        stats = self.stats()
        self.assertEqual(stats["last_token_request"]["basic"], {"client_id": None, "client_secret": None})
        self.assertEqual(stats["token_requests"], 4)

    def test_wrong_grant_or_content_type_is_400(self):
        r = self.token_call({"grant_type": "password", "client_id": ID, "client_secret": SECRET})
        self.assertEqual((r.status, r.json()["error"]), (400, "unsupported_grant_type"))
        body = urlencode({"grant_type": "client_credentials", "client_id": ID, "client_secret": SECRET})
        r = self.call("POST", "/connect/token", body, {"Content-Type": "text/plain"})
        self.assertEqual((r.status, r.json()["error"]), (400, "unsupported_grant_type"))

    # -- Bearer check

    def test_echo_needs_a_bearer_token_and_echoes_bytes(self):
        r = self.call("POST", "/echo", b"x")
        self.assertEqual((r.status, r.json()), (401, {"error": "invalid_token"}))
        self.assertEqual(r.headers["WWW-Authenticate"], 'Bearer error="invalid_token"')
        self.assertEqual(self.api("GET", "/echo", "made-up").status, 401)
        body = bytes(range(256)) * 64
        r = self.api("PUT", "/echo?x=1&y=%20", self.token(), body)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, body)
        self.assertEqual(r.headers["Content-Type"], "application/octet-stream")
        self.assertEqual(r.headers["X-Echo-Method"], "PUT")
        self.assertEqual(r.headers["X-Echo-Query"], "x=1&y=%20")
        stats = self.stats()
        self.assertEqual((stats["unauthorized"], stats["api_requests"]), (2, 1))

    def test_chunked_request_body(self):
        conn = self.connect()
        conn.request("POST", "/echo", body=iter([b"abc", b"", b"defgh"]),
                     headers={"Authorization": f"Bearer {self.token()}"}, encode_chunked=True)
        self.assertEqual(Response(conn.getresponse()).body, b"abcdefgh")

    def test_revoke(self):
        token = self.token()
        self.assertEqual(self.api("GET", "/headers", token).status, 200)
        self.assertEqual(self.call("POST", "/_control/revoke").status, 200)
        self.assertEqual(self.api("GET", "/headers", token).status, 401)
        self.assertEqual(self.api("GET", "/headers", self.token()).status, 200, "new tokens work")

    def test_token_expiry_for_numeric_expires_in(self):
        self.config(token_expires_in=0.3)
        token = self.token()
        self.assertEqual(self.api("GET", "/echo", token).status, 200)
        time.sleep(0.4)
        self.assertEqual(self.api("GET", "/echo", token).status, 401)

    # -- scripts

    def test_token_script_status_retry_after_close_and_pad(self):
        self.config(token_script=[
            {"status": 429, "headers": {"Retry-After": "1"}},
            {"close": True},
            {"status": 200, "pad_bytes": 5000},
            {"status": 400, "body": '{"error":"invalid_scope"}'},
        ])
        r = self.token_call()
        self.assertEqual((r.status, r.body), (429, b""))
        self.assertEqual(r.headers["Retry-After"], "1")
        conn = self.connect()
        conn.request("POST", "/connect/token", "grant_type=client_credentials", {"Content-Type": FORM})
        with self.assertRaises(http.client.RemoteDisconnected):
            conn.getresponse()
        r = self.token_call()
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(len(r.body), 5000)
        self.assertLess(len(r.body), 5100)
        padded = r.json()
        self.assertEqual(self.api("GET", "/echo", padded["access_token"]).status, 200, "a padded token is real")
        self.assertEqual(set(padded), {"access_token", "expires_in", "token_type", "pad"})
        r = self.token_call()
        self.assertEqual((r.status, r.body), (400, b'{"error":"invalid_scope"}'))
        self.assertEqual(self.token_call().status, 200, "normal behaviour resumes")
        self.assertEqual(self.stats()["token_requests"], 5)

    def test_api_script_is_consumed_after_the_bearer_check(self):
        self.config(api_script=[{"status": 503, "body": "busy", "headers": {"Retry-After": "2"}}, {"close": True}])
        token = self.token()
        self.assertEqual(self.call("GET", "/echo").status, 401, "no token: the script waits")
        r = self.api("GET", "/echo", token)
        self.assertEqual((r.status, r.body, r.headers["Retry-After"]), (503, b"busy", "2"))
        with self.assertRaises(http.client.RemoteDisconnected):
            self.api("GET", "/echo", token)
        self.assertEqual(self.api("POST", "/echo", token, b"back").body, b"back")

    def test_token_default_until_null(self):
        self.config(token_default={"status": 503, "body": '{"error":"temporarily_unavailable"}'})
        for _ in range(3):
            self.assertEqual(self.token_call().status, 503)
        self.config(token_default=None)
        self.assertEqual(self.token_call().status, 200)

    def test_token_delay(self):
        self.config(token_delay_ms=300)
        started = time.monotonic()
        self.token()
        self.assertGreaterEqual(time.monotonic() - started, 0.3)

    def test_expires_in_and_token_type_knobs(self):
        self.config(token_expires_in="omit", token_type="omit")
        self.assertEqual(set(json.loads(self.token_call().body)), {"access_token"})
        self.config(token_expires_in="2", token_type="bearer")
        answer = self.token_call().json()
        self.assertEqual((answer["expires_in"], answer["token_type"]), ("2", "bearer"))

    def test_bad_config_is_400_with_a_message(self):
        for body in (b"{not json", b"[1]", b'{"no_such_knob": 1}', b'{"token_script": [{"stauts": 500}]}',
                     b'{"api_script": {"status": 500}}', b'{"token_delay_ms": -1}', b"\xff\xfe"):
            r = self.call("POST", "/_control/config", body)
            self.assertEqual(r.status, 400, body)
            self.assertTrue(r.json()["message"], body)
        self.assertEqual(self.token_call().status, 200, "nothing was applied")

    # -- API routes

    def test_ocr_flow(self):
        token = self.token()
        image = base64.b64encode(b"\x89PNG fake image").decode()
        r = self.api("POST", "/v5.0/ocr/RecognizeImage", token, json.dumps({"image": image, "settings": {}}))
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/plain"))
        task = str(uuid.UUID(r.body.decode()))
        first = self.api("GET", f"/v5.0/ocr/RecognizeImage?id={task}", token).json()
        self.assertEqual((first["id"], first["taskStatus"], first["results"]), (task, "Processing", []))
        done = self.api("GET", f"/v5.0/ocr/RecognizeImage?id={task}", token).json()
        self.assertEqual(done["taskStatus"], "Completed")
        self.assertEqual((first["responseStatusCode"], done["responseStatusCode"]), ("Ok", "Ok"))
        self.assertIsNone(done["error"])
        self.assertEqual(done["results"][0]["type"], "Text")
        text = base64.b64decode(done["results"][0]["data"]).decode()
        self.assertEqual(text, "Hello from the cloudauth stand-in (15 image bytes)")
        self.assertEqual(self.api("GET", f"/v5.0/ocr/RecognizeImage?id={uuid.uuid4()}", token).status, 404)
        for bad in ("{}", '{"image": "not base64!"}', "nope", '{"image": ""}'):
            self.assertEqual(self.api("POST", "/v5.0/ocr/RecognizeImage", token, bad).status, 400, bad)

    def test_words_info(self):
        token = self.token()
        r = self.api("GET", "/v4.0/words/info", token)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["Name"], "cloudauth stand-in Words")
        self.assertEqual(self.api("GET", "/v4.0/words/info", None).status, 401)
        self.assertEqual(self.api("POST", "/v4.0/words/info", token, "x").status, 405)

    def test_redirect(self):
        token = self.token()
        r = self.api("GET", "/redirect?to=http%3A%2F%2Flocalhost%3A1%2Fx%3Fa%3D1", token)
        self.assertEqual((r.status, r.headers["Location"]), (302, "http://localhost:1/x?a=1"))
        r = self.api("GET", "/redirect?to=/public/headers&code=307", token)
        self.assertEqual((r.status, r.headers["Location"]), (307, "/public/headers"))
        self.assertEqual(self.api("GET", "/redirect?to=/x&code=200", token).status, 400)
        self.assertEqual(self.call("GET", "/redirect?to=/x").status, 401)

    def test_big(self):
        r = self.api("GET", "/big?bytes=300000", self.token())
        self.assertEqual((r.status, r.headers["Content-Length"]), (200, "300000"))
        self.assertEqual(r.body, b"a" * 300000)

    def test_status_delay_and_headers(self):
        token = self.token()
        r = self.api("GET", "/status/418", token)
        self.assertEqual((r.status, r.json()), (418, {"status": 418}))
        r = self.api("GET", "/status/204", token)
        self.assertEqual((r.status, r.body, r.headers["Content-Length"]), (204, b"", None))
        started = time.monotonic()
        r = self.api("GET", "/delay/250", token)
        self.assertEqual(r.json(), {"delayed_ms": 250})
        self.assertGreaterEqual(time.monotonic() - started, 0.25)
        seen = self.call("GET", "/headers", headers={"Authorization": f"Bearer {token}", "X-Mixed-Case": "v"}).json()
        self.assertEqual(seen["headers"]["x-mixed-case"], "v")
        self.assertEqual(seen["headers"]["authorization"], f"Bearer {token}")
        public = self.call("GET", "/public/headers", headers={"X-Only": "1"})
        self.assertEqual((public.status, public.json()["headers"]["x-only"]), (200, "1"))

    # -- stats and connections

    def test_stats_counters_and_log_cap(self):
        token = self.token()
        conn = self.connect()
        for _ in range(54):
            self.assertEqual(self.token_call(conn=conn).status, 200)
        self.api("GET", "/echo", token)
        self.api("GET", "/echo", "bad")
        self.call("GET", "/public/headers")
        stats = self.stats()
        self.assertEqual(stats["token_requests"], 55)
        self.assertEqual(stats["api_requests"], 1, "Bearer-checked requests that passed")
        self.assertEqual(stats["unauthorized"], 1)
        self.assertEqual(len(stats["token_log"]), 50)
        self.assertEqual(stats["token_log"][-1], stats["last_token_request"])
        self.call("POST", "/_control/reset")
        stats = self.stats()
        self.assertEqual((stats["token_requests"], stats["last_token_request"], stats["token_log"]), (0, None, []))
        self.assertEqual(self.api("GET", "/echo", token).status, 401, "reset forgets issued tokens")

    def test_api_log_records_headers_of_checked_requests(self):
        token = self.token()
        self.api("GET", "/echo?n=1", token)
        self.call("GET", "/headers", headers={"X-Mark": "no-token"})
        self.call("GET", "/public/headers")
        log = self.stats()["api_log"]
        self.assertEqual([(e["method"], e["path"], e["authorized"]) for e in log],
                         [("GET", "/echo?n=1", True), ("GET", "/headers", False)], "not /public/*")
        self.assertEqual(log[0]["headers"]["authorization"], f"Bearer {token}")
        self.assertNotIn("authorization", log[1]["headers"])
        self.assertEqual(log[1]["headers"]["x-mark"], "no-token")
        for _ in range(52):
            self.api("GET", "/echo", "bad")
        self.assertEqual(len(self.stats()["api_log"]), 50)
        self.call("POST", "/_control/reset")
        self.assertEqual(self.stats()["api_log"], [])

    def test_keep_alive_two_requests_one_connection(self):
        conn = self.connect()
        token = self.token_call(conn=conn).json()["access_token"]
        self.assertEqual(self.api("POST", "/echo", token, b"1", conn).body, b"1")
        stats = self.call("GET", "/_control/stats", conn=conn).json()
        self.assertEqual(stats["connections"], 1, "setUp's reset zeroed the count after its own connection")
        self.call("GET", "/public/headers")
        self.assertEqual(self.stats()["connections"], 3, "one more each for the two new connections")

    def test_connection_close_is_honoured(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /public/headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
        self.assertIn(b"Connection: close", data)

    def test_malformed_input_does_not_hurt_the_server(self):
        for raw in (b"\x00\xff garbage\r\n\r\n", b"G ET /echo HTTP/1.1\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                    b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(raw)
                answer = s.recv(4096)
            self.assertTrue(answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0], (raw, answer))
        self.assertEqual(self.token_call().status, 200, "still serving")


class LifecycleTest(unittest.TestCase):
    def test_port_file_and_lifetime(self):
        with tempfile.TemporaryDirectory() as tmp:
            port_file = os.path.join(tmp, "port")
            proc, port = start_server("--lifetime", "1", "--port-file", port_file)
            try:
                with open(port_file) as f:
                    self.assertEqual(int(f.read()), port)
                self.assertEqual(proc.wait(timeout=5), 0, "stopped by itself")
            finally:
                stop_server(proc)

    def test_shutdown_endpoint(self):
        proc, port = start_server("--lifetime", "60")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/_control/shutdown")
            self.assertEqual(conn.getresponse().status, 200)
            self.assertEqual(proc.wait(timeout=5), 0)
        finally:
            stop_server(proc)

    def test_idle_timeout_closes_idle_connections(self):
        proc, port = start_server("--lifetime", "60", "--idle-timeout", "0.2")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /public/headers HTTP/1.1\r\nHost: x\r\n\r\n")
                r = http.client.HTTPResponse(s)
                r.begin()
                self.assertEqual((r.status, r.will_close), (200, False))
                r.read()  # the whole body, by its Content-Length
                started = time.monotonic()
                self.assertEqual(s.recv(4096), b"", "the server closed the idle connection")
                self.assertLess(time.monotonic() - started, 2)
        finally:
            stop_server(proc)

    def test_with_server_sh(self):
        probe = ("import os, urllib.request, sys; u = os.environ['STANDIN_URL'];"
                 "assert u == 'http://127.0.0.1:' + os.environ['STANDIN_PORT'];"
                 "urllib.request.urlopen(u + '/public/headers', timeout=5); sys.exit(7)")
        done = subprocess.run([WITH_SERVER, sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 7, done.stderr)
        self.assertEqual(done.stdout, "", "the server's PORT line is not mixed into the output")


if __name__ == "__main__":
    unittest.main()
