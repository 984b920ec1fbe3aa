"""Python side of the cloudauth benchmarks; run by bench/run.sh.

Compares, interleaved, in one process:
  - cloudauth.Session.request("GET", ...) vs requests.Session().get(...) with the same
    Authorization header, both over one kept-alive loopback connection;
  - cloudauth.Session.token() per call vs reading a plain attribute.

Needs BENCH_BASE and BENCH_TOKEN (as bench.c), CLOUDAUTH_LIBRARY and the binding on the path.
Prints "R <key> <value>" lines; any status other than 200 or unexpected body aborts the run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import cloudauth
import requests

PING_BODY = b'{"ok":true}\n'
QUICK = os.environ.get("BENCH_QUICK") == "1"


def fail(message: str) -> None:
    print(f"bench_python: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def report(key: str, values: list) -> float:
    print(f"R {key}.rounds " + ",".join(f"{v:.6g}" for v in values))
    m = statistics.median(values)
    print(f"R {key} {m:.6g}", flush=True)
    return m


def main() -> None:
    base = os.environ["BENCH_BASE"]
    token = os.environ["BENCH_TOKEN"]
    url = base + "/api/ping"
    rounds = 3 if QUICK else 7
    n_req = 500 if QUICK else 2000
    n_tok = 20000 if QUICK else 200000

    session = cloudauth.Session(
        "bench-client",
        "bench-secret",
        token_url=base + "/connect/token",
        base_url=base,
        proxy="none",
    )
    if session.token() != token:
        fail("cloudauth got another token than nginx's")
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment: loopback only
    http.headers["Authorization"] = "Bearer " + token

    def ca_round(n: int) -> float:
        req = session.request
        t0 = time.perf_counter()
        for _ in range(n):
            r = req("GET", url)
            if r.status != 200 or r.content != PING_BODY:
                fail(f"cloudauth GET {url}: status {r.status}, body {r.content[:80]!r}")
        return n / (time.perf_counter() - t0)

    def rq_round(n: int) -> float:
        get = http.get
        t0 = time.perf_counter()
        for _ in range(n):
            r = get(url)
            if r.status_code != 200 or r.content != PING_BODY:
                fail(f"requests GET {url}: status {r.status_code}, body {r.content[:80]!r}")
        return n / (time.perf_counter() - t0)

    ca_round(100)
    rq_round(100)
    ca, rq = [], []
    for i in range(rounds):
        for turn in ((ca_round, ca), (rq_round, rq))[:: 1 if i % 2 == 0 else -1]:
            turn[1].append(turn[0](n_req))
        print(
            f"python round {i + 1}: cloudauth {ca[-1]:.0f} req/s, requests {rq[-1]:.0f} req/s",
            file=sys.stderr,
        )
    m_ca = report("py.cloudauth.per_s", ca)
    m_rq = report("py.requests.per_s", rq)
    print(f"R py.ratio {m_ca / m_rq:.4g}")

    class Holder:
        def __init__(self, value: str) -> None:
            self.token = value

    holder = Holder(token)

    def tok_round(n: int) -> float:
        get = session.token
        t0 = time.perf_counter_ns()
        for _ in range(n):
            t = get()
        ns = (time.perf_counter_ns() - t0) / n
        if t != token:
            fail("Session.token() returned another token")
        return ns

    def attr_round(n: int) -> float:
        h = holder
        t0 = time.perf_counter_ns()
        for _ in range(n):
            t = h.token
        ns = (time.perf_counter_ns() - t0) / n
        if t != token:
            fail("attribute read returned another token")
        return ns

    tok, attr = [], []
    for i in range(rounds):
        for fn, out in ((tok_round, tok), (attr_round, attr))[:: 1 if i % 2 == 0 else -1]:
            out.append(fn(n_tok))
    m_tok = report("py.token.ns", tok)
    m_attr = report("py.attr.ns", attr)
    print(f"R py.token_ratio {m_tok / m_attr:.4g}")
    print(
        f"python token(): {m_tok:.0f} ns/call, attribute read {m_attr:.1f} ns", file=sys.stderr
    )
    session.close()
    http.close()


if __name__ == "__main__":
    main()
