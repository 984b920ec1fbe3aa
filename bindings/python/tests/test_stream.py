"""Streamed responses (Session.stream, request(stream=True), AsyncSession.stream) against the
stand-in: the head before the body, pieces pulled with bounded memory, stopping early, and the
failures that end a body half-way raised in the reader's thread."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
import tracemalloc
from typing import List

import pytest

import cloudauth
from cloudauth._stream import _CAPACITY

from conftest import SessionFactory, Standin

MIB = 1 << 20


def test_a_64_mib_body_is_pulled_in_pieces_holding_a_few_at_a_time(make: SessionFactory) -> None:
    s = make(max_response_bytes=128 * MIB)
    s.token()
    tracemalloc.start()
    try:
        with s.stream("GET", "/big", params={"bytes": 64 * MIB}) as r:
            exchange = r._exchange
            # The head is here while the body is still on its way (held back by the reader).
            assert r.status == 200 and r.headers["content-length"] == str(64 * MIB)
            # A reader that is slow to start: the download waits for it (unheld, the whole
            # body would be here within this time).
            time.sleep(0.3)
            assert not exchange.done and exchange.high_water <= _CAPACITY
            total, count, biggest = 0, 0, 0
            for piece in r.iter_bytes():
                if count == 0:
                    assert not exchange.done  # the first piece came before the whole body
                assert piece == b"a" * len(piece)
                total += len(piece)
                count += 1
                biggest = max(biggest, len(piece))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * MIB and count > 8
    assert exchange.high_water <= _CAPACITY
    # What Python held at its peak: the queued pieces and the one being read, not the body.
    assert peak < min(8 * MIB, (_CAPACITY + 3) * biggest + MIB), (peak, biggest)
    assert r.closed


def test_request_stream_true_chunk_sizes_and_content(session: cloudauth.Session) -> None:
    r = session.request("GET", "/big", params={"bytes": 10_007}, stream=True)
    assert isinstance(r, cloudauth.StreamedResponse)
    sizes = [len(p) for p in r.iter_content(1000)]
    assert sizes == [1000] * 10 + [7]
    r.close()
    with pytest.raises(cloudauth.ClosedError):
        next(r.iter_bytes())

    with session.stream("GET", "/status/404") as r:  # any status, its body still to read
        assert r.status == 404 and not r.ok
        assert r.json() == {"status": 404}
        assert list(r.iter_bytes(4)) == [b'{"st', b'atus', b'": 4', b"04}"]  # content again
        with pytest.raises(cloudauth.HTTPError):
            r.raise_for_status()


def _session_still_works(s: cloudauth.Session) -> None:
    r = s.post("/echo", data=b"after")
    assert (r.status, r.content) == (200, b"after")


def test_closing_early_stops_the_request(make: SessionFactory, server: Standin) -> None:
    s = make(max_response_bytes=1 << 30)
    r = s.stream("GET", "/big", params={"bytes": 1 << 30})
    first = next(r.iter_bytes())
    assert first
    started = time.monotonic()
    r.close()
    assert r._exchange.done and time.monotonic() - started < 2
    assert isinstance(r._exchange.error, cloudauth.Cancelled)
    with pytest.raises(cloudauth.ClosedError):
        r.read()
    _session_still_works(s)


def test_a_dropped_response_stops_the_request(make: SessionFactory) -> None:
    s = make(max_response_bytes=1 << 30)
    r = s.stream("GET", "/big", params={"bytes": 1 << 30})
    pieces = r.iter_bytes()
    next(pieces)
    exchange = r._exchange
    del r, pieces
    gc.collect()
    exchange._thread.join(5)
    assert exchange.done and isinstance(exchange.error, cloudauth.Cancelled)
    _session_still_works(s)


def test_an_exception_in_the_reader_stops_the_request(make: SessionFactory) -> None:
    s = make(max_response_bytes=1 << 30)
    with pytest.raises(ZeroDivisionError):
        with s.stream("GET", "/big", params={"bytes": 1 << 30}) as r:
            for _ in r.iter_bytes():
                1 / 0
    assert r._exchange.done
    _session_still_works(s)


def test_the_cap_and_timeouts_end_the_body_in_the_readers_thread(make: SessionFactory) -> None:
    # The cap: the head comes, then the failure, raised from the iteration.
    s = make(max_response_bytes=100_000)
    with s.stream("GET", "/big", params={"bytes": 3_000_000}) as r:
        assert r.status == 200
        with pytest.raises(cloudauth.TooLarge, match="cap of 100000"):
            for _ in r.iter_bytes():
                pass
    _session_still_works(s)

    # timeout= bounds the whole exchange, reading included: a slow reader passes it.
    s = make(max_response_bytes=1 << 30)
    started = time.monotonic()
    with pytest.raises(cloudauth.Timeout, match="timeout=0.3 s"):
        with s.stream("GET", "/big", params={"bytes": 1 << 30}, timeout=0.3) as r:
            for _ in r.iter_bytes():
                time.sleep(0.05)
    assert time.monotonic() - started < 2
    _session_still_works(s)

    # The session's timeout_ms does too (the library's own deadline, callbacks included).
    s = make(max_response_bytes=1 << 30, timeout_ms=300)
    started = time.monotonic()
    with pytest.raises(cloudauth.Timeout):
        with s.stream("GET", "/big", params={"bytes": 1 << 30}) as r:
            for _ in r.iter_bytes():
                time.sleep(0.05)
    assert time.monotonic() - started < 3
    _session_still_works(s)


def test_a_failure_before_the_head_is_raised_by_stream(make: SessionFactory) -> None:
    s = make(timeout_ms=300)
    with pytest.raises(cloudauth.Timeout):
        s.stream("GET", "/delay/2000")
    with pytest.raises(cloudauth.Timeout, match="timeout=0.2 s"):
        make().stream("GET", "/delay/600", timeout=0.2)


def test_closing_the_session_stops_a_stream_nobody_reads(make: SessionFactory) -> None:
    s = make(max_response_bytes=1 << 30)
    r = s.stream("GET", "/big", params={"bytes": 1 << 30})
    started = time.monotonic()
    s.close()  # would wait for the worker forever if the stream were not stopped
    assert time.monotonic() - started < 2
    with pytest.raises(cloudauth.ClosedError):
        for _ in r.iter_bytes():
            pass


def test_async_stream(make: SessionFactory, server: Standin) -> None:
    async def main() -> None:
        async with cloudauth.AsyncSession(
            "demo-client",
            "demo-secret",
            token_url=server.token_url,
            base_url=server.url,
            proxy="none",
            max_response_bytes=1 << 30,
        ) as a:
            async with a.stream("GET", "/big", params={"bytes": 3_000_017}) as r:
                assert r.status == 200
                sizes: List[int] = []
                async for piece in r.aiter_bytes(1 << 20):
                    sizes.append(len(piece))
                    await asyncio.sleep(0)  # the loop stays free while pieces come
            assert sizes == [1 << 20, 1 << 20, 3_000_017 - (2 << 20)]

            # Leaving early stops the request; the session goes on.
            async with a.stream("GET", "/big", params={"bytes": 1 << 30}) as r:
                async for piece in r.aiter_bytes():
                    break
            assert r._exchange.done

            r = await a.stream("POST", "/echo", data=b"whole")
            assert await r.aread() == b"whole" and r.content == b"whole"
            await r.aclose()

            # a timeout while waiting for the head, without blocking the loop
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            ticker = asyncio.ensure_future(tick())
            with pytest.raises(cloudauth.Timeout):
                await a.stream("GET", "/delay/500", timeout=0.2)
            ticker.cancel()
            assert ticks > 5

            # aclose() with a stream still being read by another task: both end.
            r = await a.stream("GET", "/big", params={"bytes": 1 << 30})

            async def reader() -> None:
                async for _ in r.aiter_bytes():
                    await asyncio.sleep(0.01)

            task = asyncio.ensure_future(reader())
            await asyncio.sleep(0.05)
            await asyncio.wait_for(a.aclose(), 5)
            with pytest.raises(cloudauth.ClosedError):
                await asyncio.wait_for(task, 5)

    asyncio.run(main())


def test_a_process_exits_with_a_stream_left_open(server: Standin) -> None:
    program = f"""
import cloudauth
s = cloudauth.Session("demo-client", "demo-secret", token_url={server.token_url!r},
                      base_url={server.url!r}, proxy="none", max_response_bytes=1 << 30)
r = s.stream("GET", "/big?bytes=1073741824")
assert next(r.iter_bytes())
print("left open", flush=True)
"""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=20
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "left open\n", "")
    assert time.monotonic() - started < 5
