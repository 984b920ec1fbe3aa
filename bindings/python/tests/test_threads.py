"""One session shared by many threads; closing while another thread is inside a call."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

import cloudauth

from conftest import SessionFactory, Standin

THREADS = 8


def test_eight_threads_cause_one_token_request(make: SessionFactory, server: Standin) -> None:
    # A slow token endpoint keeps every thread waiting on the same fetch.
    server.configure(token_delay_ms=300)
    s = make()
    barrier = threading.Barrier(THREADS)

    def worker(_: int) -> str:
        barrier.wait()
        return s.token()

    with ThreadPoolExecutor(THREADS) as pool:
        tokens = list(pool.map(worker, range(THREADS)))
    assert len(tokens) == THREADS and len(set(tokens)) == 1
    assert server.stats()["token_requests"] == 1


def test_eight_threads_requesting_share_one_token(make: SessionFactory, server: Standin) -> None:
    server.configure(token_delay_ms=200)
    s = make()
    barrier = threading.Barrier(THREADS)

    def worker(i: int) -> List[str]:
        barrier.wait()
        seen = []
        for j in range(5):
            r = s.post("/echo", data=f"{i}-{j}".encode())
            assert r.status == 200 and r.content == f"{i}-{j}".encode()
            seen.append(s.get("/headers").json()["headers"]["authorization"])
        return seen

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    assert {a for seen in results for a in seen} == {"Bearer " + s.token()}
    stats = server.stats()
    assert stats["token_requests"] == 1
    assert stats["api_requests"] == THREADS * 10


def test_close_waits_for_a_call_in_progress(make: SessionFactory, server: Standin) -> None:
    s = make()
    s.token()
    outcome: Dict[str, Any] = {}

    c_call_returned = threading.Event()

    class WatchedLibrary:
        """The real library, noting when cloudauth_session_request has returned."""

        def __init__(self, lib: Any) -> None:
            self._lib = lib

        def __getattr__(self, name: str) -> Any:
            return getattr(self._lib, name)

        def cloudauth_session_request(self, *args: Any) -> Any:
            try:
                return self._lib.cloudauth_session_request(*args)
            finally:
                c_call_returned.set()

    s._lib = WatchedLibrary(s._lib)  # type: ignore[assignment]

    def slow() -> None:
        try:
            outcome["status"] = s.get("/delay/1000").status
        except BaseException as e:
            outcome["error"] = e

    t = threading.Thread(target=slow)
    t.start()
    # Wait until the request has reached the server: the thread is then inside the C call.
    for _ in range(1000):
        if server.stats()["api_requests"] >= 1:
            break
        time.sleep(0.01)
    assert server.stats()["api_requests"] >= 1
    s.close()  # must not free the session under the running request
    assert c_call_returned.is_set(), "close() returned while a C call was using the session"
    t.join()
    assert outcome == {"status": 200}
    assert s.closed
    try:
        s.get("/headers")
    except cloudauth.ClosedError:
        pass
    else:
        raise AssertionError("a closed session accepted a request")


def _use_until_closed(s: cloudauth.Session, barrier: threading.Barrier, results: List[str]) -> None:
    barrier.wait()
    for _ in range(20):
        try:
            s.get("/headers")
            results.append("ok")
        except cloudauth.ClosedError:
            results.append("closed")


def test_concurrent_close_and_use_never_crash(make: SessionFactory, server: Standin) -> None:
    for _ in range(5):
        s = make()
        barrier = threading.Barrier(THREADS + 1)
        results: List[str] = []  # list.append is atomic
        threads = [
            threading.Thread(target=_use_until_closed, args=(s, barrier, results))
            for _ in range(THREADS)
        ]
        for t in threads:
            t.start()
        barrier.wait()
        s.close()
        s.close()
        for t in threads:
            t.join()
        assert len(results) == THREADS * 20
        assert set(results) <= {"ok", "closed"}
        try:
            s.get("/headers")
        except cloudauth.ClosedError:
            pass
        else:
            raise AssertionError("a closed session accepted a request")
