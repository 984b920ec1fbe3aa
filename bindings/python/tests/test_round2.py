"""Issue 28's Python items against the stand-in: URLs in messages without user info, Ctrl-C
within ~100 ms of a blocking call whatever timeout= is, AsyncSession's params= and timeout=,
the "cloudauth" logger's NullHandler, and HttpxAuth resending a multipart upload."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Iterator

import httpx
import pytest

import cloudauth
from conftest import CLIENT_ID, CLIENT_SECRET, Standin


def test_http_error_messages_drop_user_info(server: Standin, session: cloudauth.Session) -> None:
    port = server.url.rsplit(":", 1)[1]
    r = session.get(f"http://user:hunter2@127.0.0.1:{port}/status/404?sig=s3")
    with pytest.raises(cloudauth.HTTPError) as e:
        r.raise_for_status()
    message = str(e.value)
    assert "hunter2" not in message and "user" not in message and "s3" not in message, message
    assert f"http://127.0.0.1:{port}/status/404" in message, message


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    # A test run started in the background by a non-interactive shell inherits SIGINT ignored
    # (POSIX job control); Python then never raises KeyboardInterrupt. Restore its handler.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_ctrl_c_interrupts_a_blocking_request_at_once(
    session: cloudauth.Session, timeout: Any
) -> None:
    session.token()  # the wait below is the request's
    timer = _interrupt_after(0.3)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        session.get("/delay/4000", timeout=timeout)
    late = time.monotonic() - started - 0.3
    timer.join()
    assert late < 0.1, f"KeyboardInterrupt arrived {late * 1000:.0f} ms after Ctrl-C"
    # The session stays usable.
    assert session.get("/headers").status == 200


def test_ctrl_c_interrupts_a_token_fetch_at_once(server: Standin) -> None:
    server.configure(token_script=[{"delay_ms": 4000}])
    with cloudauth.Session(
        CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, base_url=server.url, proxy="none"
    ) as s:
        timer = _interrupt_after(0.3)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            s.token()
        late = time.monotonic() - started - 0.3
        timer.join()
    assert late < 0.1, f"KeyboardInterrupt arrived {late * 1000:.0f} ms after Ctrl-C"


def test_async_session_methods_take_params_and_timeout(server: Standin) -> None:
    async def main() -> None:
        async with cloudauth.AsyncSession(
            CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, base_url=server.url, proxy="none"
        ) as s:
            for method in (s.post, s.put, s.patch):
                r = await method("/echo", params={"a": "1 2"}, data=b"x", timeout=10)
                assert (r.status, r.headers["x-echo-query"], r.content) == (200, "a=1+2", b"x")
            r = await s.get("/headers", params=[("q", "v")], timeout=10)
            assert r.status == 200
            r = await s.delete("/echo", params="z=1", timeout=10)
            assert r.headers["x-echo-query"] == "z=1"
            started = time.monotonic()
            with pytest.raises(cloudauth.Timeout) as e:
                await s.get("/delay/3000", timeout=0.2)
            assert time.monotonic() - started < 2
            assert "timeout=0.2" in str(e.value)

    asyncio.run(main())


def test_the_logger_is_silent_unless_configured(server: Standin) -> None:
    # A fresh interpreter without logging configuration: a 401 event (WARNING would reach
    # logging's last-resort handler on stderr) prints nothing.
    code = f"""
import cloudauth
with cloudauth.Session({CLIENT_ID!r}, {CLIENT_SECRET!r}, token_url={server.token_url!r},
                       base_url={server.url!r}, proxy="none") as s:
    s.token()
    try:
        cloudauth.Session({CLIENT_ID!r}, "wrong", token_url={server.token_url!r},
                          base_url={server.url!r}, proxy="none").token()
    except cloudauth.AuthRejected:
        pass
print("done")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "done"
    assert out.stderr == "", out.stderr


def test_httpx_auth_resends_a_multipart_upload_after_a_401(
    server: Standin, session: cloudauth.Session
) -> None:
    first = session.token()
    server.revoke()
    with httpx.Client(trust_env=False, timeout=10, auth=cloudauth.HttpxAuth(session)) as http:
        r = http.post(
            server.url + "/echo",
            files={"upload": ("a.bin", io.BytesIO(b"file-bytes"), "application/octet-stream")},
            data={"field": "v"},
        )
    assert r.status_code == 200
    assert b"file-bytes" in r.content and b"field" in r.content
    assert len(r.history) == 1 and r.history[0].status_code == 401
    assert session.token() != first
    assert server.stats()["token_requests"] == 2
