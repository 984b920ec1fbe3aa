"""A session across fork(): multiprocessing pools with the 'fork' start method.

After a fork the child must not use anything the parent's library state holds (the thread's
runtime, its epoll instance, pooled keep-alive sockets, locks held by other threads): parent
and child would read each other's responses, or the child would hang. Every request here
carries a nonce that the stand-in's /echo sends back (in the body and in X-Echo-Query), so a
response that belongs to another process shows.

Each scenario runs in a process of its own (this file run as a script), so that a hang inside
the library, where Python cannot interrupt it, fails the test instead of stopping the run: the
test kills the scenario's whole process group after SCENARIO_TIMEOUT_S and shows its output,
with the Python stacks that faulthandler printed just before.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import signal
import subprocess
import sys
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import cloudauth

from conftest import Standin, make_session

WORKERS = 3
TASKS = 12
REQUESTS_PER_TASK = 15
PARENT_MIN_REQUESTS = 60
POOL_TIMEOUT_S = 40.0  # for the whole pool's work; each request is bounded by timeout_ms too
SCENARIO_TIMEOUT_S = 120.0  # a whole scenario, parent included

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


def _die_with_the_parent() -> None:
    """Pool initializer: a child that hangs in the library must not outlive a parent that gave
    up on it (it would keep the test run's output pipe open). Linux: PR_SET_PDEATHSIG."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _run_pool(
    fn: Any, parent_work: Any, timeout: float = POOL_TIMEOUT_S
) -> Tuple[List[Dict[str, Any]], Any]:
    """Runs fn over TASKS in a fork pool while the parent calls parent_work() until the pool
    is done (and at least once); returns (children's results, parent's results)."""
    ctx = multiprocessing.get_context("fork")
    pool = ctx.Pool(WORKERS, initializer=_die_with_the_parent)
    try:
        pending = pool.map_async(fn, range(TASKS), chunksize=1)
        parent = parent_work(pending)
        try:
            children = pending.get(timeout=timeout)
        except multiprocessing.TimeoutError:
            raise AssertionError(f"the fork children did not finish within {timeout:g} s (hung)") from None
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


def inherited_session(server: Standin) -> None:
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


def new_session_in_the_child(server: Standin) -> None:
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


def fork_during_a_token_fetch(server: Standin) -> None:
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


def async_sessions_in_a_fork_child(server: Standin) -> None:
    # The completion queues are per process: the child's loops and its events thread make
    # their own (the parent's are refused there), the parent's keep working.
    import asyncio

    def make_async(**options: Any) -> cloudauth.AsyncSession:
        return cloudauth.AsyncSession(
            "demo-client", "demo-secret", token_url=server.token_url, base_url=server.url,
            proxy="none", **options
        )

    async def gets(s: cloudauth.AsyncSession, n: int) -> List[int]:
        return [r.status for r in await asyncio.gather(*(s.get("/headers") for _ in range(n)))]

    inherited = make_async()
    assert asyncio.run(gets(inherited, 3)) == [200] * 3  # the parent's loop queue exists
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            events: List[cloudauth.Event] = []
            mine = make_async(on_event=events.append)
            ok = asyncio.run(gets(inherited, 5)) == [200] * 5
            ok = ok and asyncio.run(gets(mine, 5)) == [200] * 5
            mine.session.close()  # delivers the queued events first
            ok = ok and [e.kind for e in events] == ["token_fetched"]
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the child did not finish within 30 s")
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    assert asyncio.run(gets(inherited, 3)) == [200] * 3


SCENARIOS: Dict[str, Callable[[Standin], None]] = {
    f.__name__: f
    for f in (
        inherited_session,
        new_session_in_the_child,
        fork_during_a_token_fetch,
        async_sessions_in_a_fork_child,
    )
}


def _run_scenario(name: str, server: Standin) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), name, server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the pool's children are in it too
    )
    try:
        out, _ = proc.communicate(timeout=SCENARIO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(
            f"{name}: no end within {SCENARIO_TIMEOUT_S:g} s (hung); its output:\n{out[-6000:]}"
        ) from None
    assert proc.returncode == 0, f"{name} failed (exit {proc.returncode}):\n{out[-6000:]}"


def test_parent_and_fork_children_each_get_their_own_responses(server: Standin) -> None:
    _run_scenario("inherited_session", server)


def test_a_new_session_in_a_fork_child_works(server: Standin) -> None:
    _run_scenario("new_session_in_the_child", server)


def test_fork_while_another_thread_fetches_the_token(server: Standin) -> None:
    _run_scenario("fork_during_a_token_fetch", server)


def test_async_sessions_in_a_fork_child(server: Standin) -> None:
    _run_scenario("async_sessions_in_a_fork_child", server)


if __name__ == "__main__":
    # python test_fork.py SCENARIO STANDIN_URL (the tests above run it so). Stacks go to
    # stderr shortly before the test gives up, to show where a hang is.
    faulthandler.dump_traceback_later(SCENARIO_TIMEOUT_S - 15, exit=True)
    SCENARIOS[sys.argv[1]](Standin(sys.argv[2]))
    print(f"{sys.argv[1]}: ok")
