"""AsyncSession against the stand-in: basics, concurrency, cancellation, a loop that never
blocks, and aclose with operations in flight. Each test runs its own loop (asyncio.run)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, List, TypeVar

import pytest

import cloudauth
from conftest import CLIENT_ID, CLIENT_SECRET, Standin

T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro_fn(), timeout)

    return asyncio.run(bounded())


def make_async(server: Standin, **options: Any) -> cloudauth.AsyncSession:
    settings: dict = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_url": server.token_url,
        "base_url": server.url,
        "proxy": "none",
    }
    settings.update(options)
    return cloudauth.AsyncSession(**settings)


class Heartbeat:
    """Ticks every 10 ms on the loop; `max_gap` is the longest the loop was unavailable."""

    def __init__(self) -> None:
        self.max_gap = 0.0
        self.ticks = 0
        self._task: "asyncio.Task[None] | None" = None

    async def _beat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            self.ticks += 1
            last = now

    def __enter__(self) -> "Heartbeat":
        self._task = asyncio.get_running_loop().create_task(self._beat())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_basics(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server) as s:
            token = await s.token()
            assert token and token == await s.token()  # the second from the cache
            r = await s.get("/headers")
            assert isinstance(r, cloudauth.Response) and r.status == 200
            assert r.json()["headers"]["authorization"] == "Bearer " + token
            echo = await s.post("/echo", json={"a": [1, 2]}, headers={"X-Test": "yes"})
            assert echo.content == b'{"a":[1,2]}' and echo.headers["x-echo-method"] == "POST"
            put = await s.request("PUT", "/echo", data=b"\x00raw")
            assert put.content == b"\x00raw"
            assert (await s.delete("/echo")).headers["x-echo-method"] == "DELETE"
            assert (await s.get("/status/404")).status == 404
            stats = s.stats()
            assert (stats.token_requests, stats.api_requests) == (1, 5)
        assert s.closed
        with pytest.raises(cloudauth.ClosedError):
            await s.get("/headers")
        with pytest.raises(cloudauth.ClosedError):
            await s.token()

    run(main)


def test_errors_raise_the_library_exceptions(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server, client_secret="wrong") as bad:
            with pytest.raises(cloudauth.AuthRejected):
                await bad.token()
            with pytest.raises(cloudauth.AuthRejected):
                await bad.get("/headers")
        async with make_async(server, timeout_ms=300) as s:
            with pytest.raises(cloudauth.Timeout):
                await s.get("/delay/3000")
            with pytest.raises(cloudauth.InvalidArgument):  # a start error: raised at once
                await s.get("/headers", headers={"X-Bad": "a\r\nb"})
            with pytest.raises(cloudauth.InsecureUrl):
                await s.get("http://192.0.2.1/api")
            assert (await s.get("/headers")).status == 200

    run(main)


def test_revoked_token_is_replaced_once(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server) as s:
            await s.get("/headers")
            server.revoke()
            assert (await s.get("/headers")).status == 200
            assert s.stats().unauthorized_resends == 1
        assert server.stats()["token_requests"] == 2

    run(main)


def test_hundred_concurrent_requests_finish_together(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server) as s:
            await s.token()
            start = time.monotonic()
            responses = await asyncio.gather(*(s.get("/delay/500") for _ in range(100)))
            elapsed = time.monotonic() - start
            assert [r.status for r in responses] == [200] * 100
            # One after another would take 50 s; together, a little over 0.5 s (a loaded
            # machine adds seconds, not tens of them).
            assert elapsed < 10.0, f"100 requests of 500 ms took {elapsed:.2f} s"
            assert s.stats().api_requests == 100

    run(main)


def test_first_token_fetch_never_blocks_the_loop(server: Standin) -> None:
    server.configure(token_delay_ms=1000)

    async def main() -> None:
        async with make_async(server) as s:
            with Heartbeat() as beat:
                start = time.monotonic()
                token, response = await asyncio.gather(s.token(), s.get("/headers"))
                elapsed = time.monotonic() - start
            assert token and response.status == 200
            assert elapsed >= 0.9
            # A loop blocked by the fetch would miss a whole second; a busy machine only
            # delays some ticks.
            assert beat.ticks >= 10, beat.ticks
            assert beat.max_gap < 0.5, f"the loop stalled {beat.max_gap * 1000:.0f} ms"
            assert server.stats()["token_requests"] == 1  # one fetch for both

    run(main)


def test_cancelling_a_task_during_a_slow_token_fetch(server: Standin) -> None:
    server.configure(token_delay_ms=1500)

    async def main() -> None:
        async with make_async(server) as s:
            for coro in (s.get("/headers"), s.token()):
                task = asyncio.ensure_future(coro)
                await asyncio.sleep(0.2)
                assert not task.done()
                start = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # At once: well before the 1.5 s fetch ends.
                assert time.monotonic() - start < 0.5
            # Still usable: the fetch the cancelled calls started goes on and serves this
            # (one token request), without a fetch of its own.
            start = time.monotonic()
            assert (await s.get("/headers")).status == 200
            assert time.monotonic() - start < 3.0
            assert server.stats()["token_requests"] == 1
            # The cancelled operations' completions have all come back.
            await asyncio.sleep(0.05)
            assert not s._ops.keys

    run(main)


def test_cancelling_a_slow_request(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server) as s:
            await s.token()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.get("/delay/5000"), 0.2)
            assert (await s.get("/headers")).status == 200

    start = time.monotonic()
    run(main)
    assert time.monotonic() - start < 4.0  # the slow request's 5 s were not waited for


def test_aclose_with_operations_in_flight(server: Standin) -> None:
    async def main() -> None:
        s = make_async(server)
        await s.token()
        tasks = [asyncio.ensure_future(s.get("/delay/5000")) for _ in range(10)]
        tasks.append(asyncio.ensure_future(s.get("/headers")))
        await asyncio.sleep(0.2)  # /headers is done by now, the delays are in flight
        start = time.monotonic()
        await s.aclose()
        assert time.monotonic() - start < 3.0  # not the 5 s of the requests in flight
        assert all(t.done() for t in tasks)  # aclose returns when all have finished
        assert (await tasks[-1]).status == 200
        for t in tasks[:-1]:
            with pytest.raises(cloudauth.ClosedError, match="closed while"):
                t.result()
        await s.aclose()  # idempotent
        with pytest.raises(cloudauth.ClosedError):
            await s.get("/headers")

    run(main)


def test_from_env_and_events(server: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDAUTH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("CLOUDAUTH_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("CLOUDAUTH_TOKEN_URL", server.token_url)
    events: List[cloudauth.Event] = []

    async def main() -> None:
        async with cloudauth.AsyncSession.from_env(
            base_url=server.url, proxy="none", on_event=events.append
        ) as s:
            assert (await s.get("/headers")).status == 200
            s.set_credentials(CLIENT_ID, CLIENT_SECRET)
            s.invalidate()
            await s.token()
            assert isinstance(s.session, cloudauth.Session)
            assert s.session.token() == await s.token()  # one handle, one token

    run(main)
    assert [(e.kind, e.reason) for e in events] == [
        ("token_fetched", "first_use"),
        ("token_fetched", "credentials_changed"),
    ]


def test_operations_left_when_the_loop_ends(server: Standin) -> None:
    # asyncio.run cancels what is left and closes its loop; the completions that arrive after
    # that are dropped (their responses freed), and the session works from another loop.
    s = make_async(server)

    async def leave_requests_behind() -> None:
        for _ in range(20):
            asyncio.ensure_future(s.get("/delay/300"))
        await asyncio.sleep(0.05)

    asyncio.run(leave_requests_behind())
    time.sleep(0.5)  # the cancelled operations complete on the library's threads

    async def again() -> None:
        assert (await s.get("/headers")).status == 200
        await s.aclose()

    run(again)


_EXIT_PROBE = """
import asyncio, sys, cloudauth
url = sys.argv[1]
events = []

async def main():
    s = cloudauth.AsyncSession("%s", "%s", token_url=url + "/connect/token", base_url=url,
                               proxy="none", on_event=events.append)
    tasks = [asyncio.ensure_future(s.get("/delay/%%d" %% (5 * i))) for i in range(60)]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    s.invalidate()
    asyncio.ensure_future(s.token())  # a fetch and its event in flight too
    print("probe: exiting", flush=True)

asyncio.run(main())
"""


def test_exit_with_operations_in_flight_is_clean(server: Standin) -> None:
    """Completions and events that arrive while the interpreter shuts down run no Python
    (they come through queues), so the process exits with 0: through ctypes callbacks on
    library threads it crashed (double free, abort) or hung in most runs."""
    import subprocess
    import sys

    code = _EXIT_PROBE % (CLIENT_ID, CLIENT_SECRET)
    for round in range(5):
        proc = subprocess.run(
            [sys.executable, "-c", code, server.url],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, f"round {round}: rc {proc.returncode}: {proc.stderr[-500:]}"
        assert "probe: exiting" in proc.stdout
