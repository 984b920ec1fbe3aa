"""One session shared by many threads; closing while another thread is inside a call."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List

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
    outcome: dict = {}

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
    t.join()
    assert outcome == {"status": 200}
    assert s.closed
    try:
        s.get("/headers")
    except cloudauth.ClosedError:
        pass
    else:
        raise AssertionError("a closed session accepted a request")


def test_concurrent_close_and_use_never_crash(make: SessionFactory, server: Standin) -> None:
    for _ in range(5):
        s = make()
        barrier = threading.Barrier(THREADS + 1)
        results: List[str] = []
        lock = threading.Lock()

        def worker() -> None:
            barrier.wait()
            for _ in range(20):
                try:
                    s.get("/headers")
                    what = "ok"
                except cloudauth.ClosedError:
                    what = "closed"
                with lock:
                    results.append(what)

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
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
