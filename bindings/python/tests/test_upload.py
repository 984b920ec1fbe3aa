"""Request bodies pulled while they are sent (data= a binary file or an iterator of bytes,
cloudauth_session_request_stream_body) against the stand-in: lengths and chunking, the rewind
before a resend, no resend without one, and sources that fail."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest

import cloudauth

from conftest import SessionFactory, Standin

PAYLOAD = bytes(range(256)) * 4099  # about 1 MiB, not a multiple of any buffer size


def _echo_log(server: Standin) -> List[Dict[str, Any]]:
    """The Bearer-checked requests the stand-in saw for /echo, oldest first."""
    return [e for e in server.stats()["api_log"] if e["path"].startswith("/echo")]


def test_a_seekable_file_is_sent_with_its_length_from_where_it_stands(
    session: cloudauth.Session, server: Standin
) -> None:
    f = io.BytesIO(b"skip" + PAYLOAD)
    f.seek(4)
    r = session.post("/echo", data=f)
    assert (r.status, r.content) == (200, PAYLOAD)
    headers = _echo_log(server)[-1]["headers"]
    assert headers["content-length"] == str(len(PAYLOAD))
    assert "transfer-encoding" not in headers


def test_a_seekable_file_is_rewound_and_resent_after_a_401(
    session: cloudauth.Session, server: Standin, tmp_path: Any
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(PAYLOAD)
    session.token()
    server.revoke()  # the token held is now refused: a 401, a new token, the resend
    with open(path, "rb") as f:
        r = session.put("/echo", data=f)
    assert (r.status, r.content) == (200, PAYLOAD)  # the whole file again, from its start
    log = _echo_log(server)
    assert [e["authorized"] for e in log] == [False, True]
    assert [e["headers"]["content-length"] for e in log] == [str(len(PAYLOAD))] * 2
    assert server.stats()["unauthorized"] == 1


def test_a_seekable_file_is_rewound_and_resent_after_a_307(
    session: cloudauth.Session, server: Standin
) -> None:
    r = session.post("/redirect", params={"to": "/echo", "code": "307"}, data=io.BytesIO(PAYLOAD))
    assert (r.status, r.content) == (200, PAYLOAD)
    log = server.stats()["api_log"]
    assert [e["path"].split("?")[0] for e in log] == ["/redirect", "/echo"]
    assert [e["headers"]["content-length"] for e in log] == [str(len(PAYLOAD))] * 2


def _pieces() -> Iterator[bytes]:
    yield b""  # an empty piece is not the end
    for i in range(0, len(PAYLOAD), 100_000):
        yield PAYLOAD[i : i + 100_000]


def test_a_generator_is_sent_chunked(session: cloudauth.Session, server: Standin) -> None:
    r = session.post("/echo", data=_pieces())
    assert (r.status, r.content) == (200, PAYLOAD)
    headers = _echo_log(server)[-1]["headers"]
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers


def test_a_generator_is_sent_once_and_its_401_is_the_answer(
    session: cloudauth.Session, server: Standin
) -> None:
    session.token()
    server.revoke()
    r = session.post("/echo", data=_pieces())
    assert r.status == 401  # not resent: the body cannot go again
    assert len(_echo_log(server)) == 1 and server.stats()["unauthorized"] == 1
    # The rejected token was dropped all the same: the next request gets a new one.
    assert session.get("/echo").status == 200
    assert server.stats()["token_requests"] == 2


class _Pipe(io.RawIOBase):
    """A binary file that cannot seek (as a pipe or a socket's makefile)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._data.readinto(b)


def test_a_file_that_cannot_seek_is_sent_chunked_and_a_307_is_the_answer(
    session: cloudauth.Session, server: Standin
) -> None:
    r = session.post("/echo", data=_Pipe(PAYLOAD))
    assert (r.status, r.content) == (200, PAYLOAD)
    assert _echo_log(server)[-1]["headers"]["transfer-encoding"] == "chunked"

    rd, wr = os.pipe()  # a real pipe too
    os.write(wr, b"through a pipe")
    os.close(wr)
    with os.fdopen(rd, "rb") as f:
        assert session.post("/echo", data=f).content == b"through a pipe"

    seen = len(server.stats()["api_log"])
    r = session.post("/redirect", params={"to": "/echo", "code": "307"}, data=_Pipe(PAYLOAD))
    assert r.status == 307 and r.headers["location"] == "/echo"
    log = server.stats()["api_log"][seen:]
    assert [e["path"].split("?")[0] for e in log] == ["/redirect"]  # not followed


def test_a_source_that_fails_fails_the_request_with_its_exception(
    session: cloudauth.Session,
) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            self.calls += 1
            if self.calls > 2:
                raise OSError(5, "Input/output error")
            b[:1000] = b"x" * 1000
            return 1000

    with pytest.raises(OSError, match="Input/output error"):
        session.post("/echo", data=Broken())

    def bad_items() -> Iterator[Any]:
        yield b"fine"
        yield "text"  # not bytes

    with pytest.raises(TypeError, match="must yield bytes, not str"):
        session.post("/echo", data=bad_items())
    with pytest.raises(TypeError, match="binary mode"):
        session.post("/echo", data=io.StringIO("text"))
    with pytest.raises(TypeError, match="data or json"):
        session.post("/echo", data=io.BytesIO(b"x"), json={})

    # A file that shrinks after its length was taken: the library says the body ended early.
    class Shrinking(io.BytesIO):
        def readinto(self, b: Any) -> int:
            return 0

    with pytest.raises(cloudauth.InvalidArgument):
        session.post("/echo", data=Shrinking(b"12345"))
    assert session.post("/echo", data=b"still works").content == b"still works"


def test_a_slow_source_past_timeout(session: cloudauth.Session) -> None:
    def slow() -> Iterator[bytes]:
        while True:
            time.sleep(0.05)
            yield b"x"

    started = time.monotonic()
    with pytest.raises(cloudauth.Timeout, match="timeout=0.3 s"):
        session.post("/echo", data=slow(), timeout=0.3)
    assert time.monotonic() - started < 2


def test_upload_and_streamed_answer_together(session: cloudauth.Session) -> None:
    out = io.BytesIO()
    r = session.download("POST", "/echo", out, data=_pieces())
    assert r.status == 200 and out.getvalue() == PAYLOAD
    with session.stream("POST", "/echo", data=io.BytesIO(PAYLOAD)) as s:
        assert b"".join(s.iter_bytes()) == PAYLOAD


def test_async_uploads(server: Standin) -> None:
    async def main() -> None:
        async with cloudauth.AsyncSession(
            "demo-client", "demo-secret", token_url=server.token_url, base_url=server.url,
            proxy="none",
        ) as a:
            await a.token()
            server.revoke()
            r = await a.post("/echo", data=io.BytesIO(PAYLOAD))  # rewound after the 401
            assert (r.status, r.content) == (200, PAYLOAD)
            r = await a.post("/echo", data=_pieces())
            assert (r.status, r.content) == (200, PAYLOAD)
            async with a.stream("PUT", "/echo", data=_pieces()) as s:
                assert b"".join([p async for p in s.aiter_bytes()]) == PAYLOAD

    asyncio.run(main())


def test_uploads_from_another_thread_are_made_on_that_thread(
    session: cloudauth.Session, server: Standin
) -> None:
    # Off the main thread and without timeout= the call is made right there, no worker.
    threads: List[str] = []

    def pieces() -> Iterator[bytes]:
        threads.append(threading.current_thread().name)
        yield from _pieces()

    results: List[Any] = []

    def run() -> None:
        try:
            session.token()
            server.revoke()
            results.append(session.post("/echo", data=io.BytesIO(PAYLOAD)))  # rewound after a 401
            results.append(session.post("/echo", data=pieces()))
        except BaseException as e:  # noqa: BLE001 - checked below
            results.append(e)

    t = threading.Thread(target=run, name="uploader")
    t.start()
    t.join(30)
    assert [(r.status, r.content) for r in results] == [(200, PAYLOAD)] * 2
    assert threads == ["uploader"]
    assert server.stats()["unauthorized"] == 1
