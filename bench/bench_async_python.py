"""Async Python side of the cloudauth benchmarks; run by bench/run.sh.

Compares, interleaved, in one process and one event loop: 64 requests in flight at all times
(64 worker coroutines, each sending GET /api/ping one after another, for a fixed time) with
  - cloudauth.AsyncSession.get(...);
  - aiohttp.ClientSession.get(...) with the same Authorization header;
  - httpx.AsyncClient.get(...) with the same Authorization header;
each over its own pool of kept-alive loopback connections to the bench's nginx.

Needs BENCH_BASE and BENCH_TOKEN (as bench.c), CLOUDAUTH_LIBRARY and the binding on the path,
aiohttp and httpx. Prints "R <key> <value>" lines; any status other than 200 or an unexpected
body aborts the run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Awaitable, Callable, Dict, List

import aiohttp
import httpx

import cloudauth

PING_BODY = b'{"ok":true}\n'
QUICK = os.environ.get("BENCH_QUICK") == "1"
IN_FLIGHT = 64


def fail(message: str) -> None:
    print(f"bench_async_python: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def report(key: str, values: List[float]) -> float:
    print(f"R {key}.rounds " + ",".join(f"{v:.6g}" for v in values))
    m = statistics.median(values)
    print(f"R {key} {m:.6g}", flush=True)
    return m


Get = Callable[[], Awaitable[None]]


async def run_round(get: Get, seconds: float, cpu: "List[float] | None" = None) -> float:
    """IN_FLIGHT workers send requests for ``seconds``; requests per second. (A fixed time,
    not a fixed count: httpx is an order of magnitude slower than the others.) Appends to
    ``cpu`` the process's CPU time per request in µs (every thread: the library's threads do
    cloudauth's I/O), a figure that a busy machine disturbs less than the wall clock."""
    done = 0
    c0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await get()
            done += 1

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    t1, c1 = time.perf_counter(), time.process_time()
    if cpu is not None:
        cpu.append((c1 - c0) / done * 1e6)
    return done / (t1 - t0)


async def main() -> None:
    base = os.environ["BENCH_BASE"]
    token = os.environ["BENCH_TOKEN"]
    url = base + "/api/ping"
    rounds = 3 if QUICK else 7
    seconds = 0.7 if QUICK else 2.0
    header = {"Authorization": "Bearer " + token}

    ca = cloudauth.AsyncSession(
        "bench-client",
        "bench-secret",
        token_url=base + "/connect/token",
        base_url=base,
        proxy="none",
    )
    if await ca.token() != token:
        fail("cloudauth got another token than nginx's")
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
    aio = aiohttp.ClientSession(connector=connector, headers=header, trust_env=False)
    hx = httpx.AsyncClient(
        headers=header,
        trust_env=False,
        limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT),
    )

    async def ca_get() -> None:
        r = await ca.get(url)
        if r.status != 200 or r.content != PING_BODY:
            fail(f"cloudauth GET {url}: status {r.status}, body {r.content[:80]!r}")

    async def aio_get() -> None:
        async with aio.get(url) as r:
            body = await r.read()
            if r.status != 200 or body != PING_BODY:
                fail(f"aiohttp GET {url}: status {r.status}, body {body[:80]!r}")

    async def hx_get() -> None:
        r = await hx.get(url)
        if r.status_code != 200 or r.content != PING_BODY:
            fail(f"httpx GET {url}: status {r.status_code}, body {r.content[:80]!r}")

    clients: Dict[str, Get] = {"cloudauth": ca_get, "aiohttp": aio_get, "httpx": hx_get}
    for get in clients.values():  # warm up: open the connections
        await run_round(get, 0.3)
    results: Dict[str, List[float]] = {name: [] for name in clients}
    cpu: Dict[str, List[float]] = {name: [] for name in clients}
    order = list(clients)
    for i in range(rounds):
        for name in order[i % 3 :] + order[: i % 3]:  # rotate who goes first
            results[name].append(await run_round(clients[name], seconds, cpu[name]))
        print(
            f"async python round {i + 1}: "
            + ", ".join(f"{name} {results[name][-1]:.0f} req/s" for name in order),
            file=sys.stderr,
        )
    medians = {name: report(f"pyasync.{name}.per_s", results[name]) for name in order}
    for name in order:
        report(f"pyasync.{name}.cpu_us", cpu[name])
    best = max(medians["aiohttp"], medians["httpx"])
    print(f"R pyasync.in_flight {IN_FLIGHT}")
    print(f"R pyasync.ratio {medians['cloudauth'] / best:.4g}")
    await ca.aclose()
    await aio.close()
    await hx.aclose()


if __name__ == "__main__":
    asyncio.run(main())
