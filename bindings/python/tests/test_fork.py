"""A session across fork(): multiprocessing pools with the 'fork' start method.

After a fork the child must not use anything the parent's library state holds (the thread's
runtime, its epoll instance, pooled keep-alive sockets, locks held by other threads): parent
and child would read each other's responses, or the child would hang. Every request here
carries a nonce that the stand-in's /echo sends back (in the body and in X-Echo-Query), so a
response that belongs to another process shows. Every wait is bounded: a hang is a failure.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import threading
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import cloudauth

from conftest import Standin, make_session

WORKERS = 3
TASKS = 12
REQUESTS_PER_TASK = 15
PARENT_MIN_REQUESTS = 60
POOL_TIMEOUT_S = 60.0  # for the whole pool's work; each request is bounded by timeout_ms too
WATCHDOG_S = 180.0  # if the parent itself hangs inside the library, end the run, loudly

# The session the pool's children inherit (set in the parent before the pool forks).
_inherited: Optional[cloudauth.Session] = None
_server_url = ""


def _echo(session: cloudauth.Session, tag: str) -> Tuple[str, int, str, str]:
    """One POST /echo with a fresh nonce; returns (nonce, status, body, echoed query)."""
    nonce = f"{tag}-{os.getpid()}-{uuid.uuid4().hex}"
    r = session.post("/echo?nonce=" + nonce, data=nonce)
    return nonce, r.status, r.content.decode("latin-1"), r.headers.get("x-echo-query", "")


def _mismatches(results: List[Tuple[str, int, str, str]]) -> List[str]:
    bad = []
    for nonce, status, body, query in results:
        if (status, body, query) != (200, nonce, "nonce=" + nonce):
            bad.append(f"sent {nonce}: got {status} body {body[:60]!r} query {query[:60]!r}")
    return bad


def _child_uses_inherited(task: int) -> Dict[str, Any]:
    assert _inherited is not None
    results = [_echo(_inherited, f"child{task}") for _ in range(REQUESTS_PER_TASK)]
    return {"pid": os.getpid(), "token": _inherited.token(), "results": results}


def _child_makes_a_new_session(task: int) -> Dict[str, Any]:
    with cloudauth.Session(
        "demo-client",
        "demo-secret",
        token_url=_server_url + "/connect/token",
        base_url=_server_url,
        proxy="none",
        timeout_ms=5000,
    ) as s:
        results = [_echo(s, f"new{task}") for _ in range(REQUESTS_PER_TASK)]
    return {"pid": os.getpid(), "results": results}


def _child_takes_the_token(_: int) -> Dict[str, Any]:
    assert _inherited is not None
    started = time.monotonic()
    token = _inherited.token()
    results = [_echo(_inherited, "held") for _ in range(3)]
    return {"pid": os.getpid(), "token": token, "seconds": time.monotonic() - started, "results": results}


@pytest.fixture
def watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def _run_pool(
    fn: Any, parent_work: Any, timeout: float = POOL_TIMEOUT_S
) -> Tuple[List[Dict[str, Any]], Any]:
    """Runs fn over TASKS in a fork pool while the parent calls parent_work() until the pool
    is done (and at least once); returns (children's results, parent's results)."""
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(WORKERS)
    try:
        pending = pool.map_async(fn, range(TASKS), chunksize=1)
        parent = parent_work(pending)
        try:
            children = pending.get(timeout=timeout)
        except multiprocessing.TimeoutError:
            pytest.fail(f"the fork children did not finish within {timeout:g} s (hung)")
        pool.close()
        return children, parent
    finally:
        pool.terminate()
        pool.join()


def _parent_echoes(session: cloudauth.Session) -> Any:
    def work(pending: Any) -> List[Tuple[str, int, str, str]]:
        results: List[Tuple[str, int, str, str]] = []
        deadline = time.monotonic() + POOL_TIMEOUT_S
        while (len(results) < PARENT_MIN_REQUESTS or not pending.ready()) and time.monotonic() < deadline:
            results.append(_echo(session, "parent"))
        return results

    return work


def test_parent_and_fork_children_each_get_their_own_responses(
    server: Standin, watchdog: None
) -> None:
    global _inherited
    s = make_session(server, timeout_ms=5000)
    try:
        # Used in the parent first: the token is cached and a keep-alive connection pooled.
        token = s.token()
        assert _mismatches([_echo(s, "before") for _ in range(3)]) == []
        _inherited = s
        children, parent = _run_pool(_child_uses_inherited, _parent_echoes(s))
    finally:
        _inherited = None
    assert len({c["pid"] for c in children}) > 1, "the work was spread over several children"
    mixed = _mismatches([r for c in children for r in c["results"]])
    assert mixed == [], f"{len(mixed)} child responses were not their own, e.g. {mixed[:3]}"
    mixed = _mismatches(parent)
    assert mixed == [], f"{len(mixed)} parent responses were not its own, e.g. {mixed[:3]}"
    # The token is only data: the children keep using the parent's, and nobody fetched again.
    assert {c["token"] for c in children} == {token}
    assert s.token() == token
    assert server.stats()["token_requests"] == 1
    s.close()


def test_a_new_session_in_a_fork_child_works(server: Standin, watchdog: None) -> None:
    global _server_url
    s = make_session(server, timeout_ms=5000)
    with s:
        s.token()
        assert _mismatches([_echo(s, "before")]) == []  # this thread's runtime exists now
        _server_url = server.url
        children, parent = _run_pool(_child_makes_a_new_session, _parent_echoes(s))
    assert _mismatches([r for c in children for r in c["results"]]) == []
    assert _mismatches(parent) == []
    assert server.stats()["token_requests"] == 1 + TASKS  # one per new session


def test_fork_while_another_thread_fetches_the_token(server: Standin, watchdog: None) -> None:
    global _inherited
    # The fetch in flight holds the session's single-flight state when the pool forks; the
    # children have no such thread and must not wait for it forever.
    server.configure(token_delay_ms=1500)
    s = make_session(server, timeout_ms=5000)
    fetched: Dict[str, str] = {}
    fetcher = threading.Thread(target=lambda: fetched.update(token=s.token()), daemon=True)
    try:
        _inherited = s
        fetcher.start()
        deadline = time.monotonic() + 10
        while server.stats()["token_requests"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.stats()["token_requests"] == 1, "the parent's fetch is in flight"
        # 1.5 s per child fetch, at most WORKERS at once: 20 s is ample.
        children, _ = _run_pool(_child_takes_the_token, lambda pending: None, timeout=20)
        fetcher.join(timeout=30)
        assert not fetcher.is_alive(), "the parent's own fetch finished"
    finally:
        _inherited = None
    assert all(c["token"] for c in children)
    assert _mismatches([r for c in children for r in c["results"]]) == []
    # Each child fetched on its own (bounded by the token delay, not by a lost lock holder).
    assert max(c["seconds"] for c in children) < 15
    assert fetched["token"] == s.token()
    s.close()
