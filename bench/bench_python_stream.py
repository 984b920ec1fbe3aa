"""Python streamed bodies; run by bench/run.sh (part "pystream").

Compares, interleaved, in one process, against loopback nginx:
  - a 1 GiB download (/api/big) read piece by piece: cloudauth.Session.stream().iter_bytes()
    vs requests (stream=True, iter_content(1 MiB): its fastest chunk size here) and
    httpx.Client.stream().iter_bytes(), each with the same Authorization header;
  - a 16 MiB upload (/api/upload) from an open file: Session.post(data=file) vs
    requests.post(data=file) and httpx.Client.post(content=file);
  - Session.download (no worker thread, pieces written on the calling thread) as the
    binding's own reference for what the worker and its queue cost;
  - the growth of the peak RSS over the first 1 GiB stream (the process's first big body).

Needs BENCH_BASE, BENCH_TOKEN, BENCH_BLOB_FILE (nginx's 16 MiB /api/blob file), CLOUDAUTH_LIBRARY
and the binding on the path. Prints "R <key> <value>" lines.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import cloudauth
import httpx
import requests

QUICK = os.environ.get("BENCH_QUICK") == "1"
MIB = 1 << 20
BIG = 1 << 30


def fail(message: str) -> None:
    print(f"bench_python_stream: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def timed(fn: Callable[[], int], size: int) -> Tuple[float, float]:
    """MiB/s and process CPU µs per MiB of one run of ``fn`` (which returns the bytes moved)."""
    w0, c0 = time.perf_counter(), time.process_time()
    moved = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    if moved != size:
        fail(f"moved {moved} bytes, not {size}")
    return size / MIB / wall, cpu * 1e6 / (size / MIB)


def main() -> None:
    base = os.environ["BENCH_BASE"]
    token = os.environ["BENCH_TOKEN"]
    blob_file = os.environ["BENCH_BLOB_FILE"]
    blob_size = os.path.getsize(blob_file)
    big_url, upload_url = base + "/api/big", base + "/api/upload"
    rounds = 1 if QUICK else 3

    session = cloudauth.Session(
        "bench-client", "bench-secret", token_url=base + "/connect/token", base_url=base,
        proxy="none", max_response_bytes=BIG, timeout_ms=120_000,
    )
    if session.token() != token:
        fail("cloudauth got another token than nginx's")
    auth = {"Authorization": "Bearer " + token}
    rq = requests.Session()
    rq.trust_env = False  # loopback only, no proxy from the environment
    rq.headers.update(auth)
    hx = httpx.Client(headers=auth, trust_env=False, timeout=120)

    def ca_down() -> int:
        with session.stream("GET", big_url) as r:
            if r.status != 200:
                fail(f"cloudauth GET /api/big: {r.status}")
            return sum(len(p) for p in r.iter_bytes())

    class Null:
        moved = 0

        def write(self, piece: bytes) -> None:
            self.moved += len(piece)

    def dl_down() -> int:
        """The binding's reference: Session.download, pieces written on the calling thread."""
        out = Null()
        if session.download("GET", big_url, out).status != 200:
            fail("cloudauth download /api/big refused")
        return out.moved

    def rq_down() -> int:
        with rq.get(big_url, stream=True) as r:
            if r.status_code != 200:
                fail(f"requests GET /api/big: {r.status_code}")
            return sum(len(p) for p in r.iter_content(chunk_size=MIB))

    def hx_down() -> int:
        with hx.stream("GET", big_url) as r:
            if r.status_code != 200:
                fail(f"httpx GET /api/big: {r.status_code}")
            return sum(len(p) for p in r.iter_bytes())

    def upload(send: Callable[[object], int]) -> Callable[[], int]:
        def run() -> int:
            with open(blob_file, "rb") as f:
                if send(f) != 200:
                    fail("upload refused")
            return blob_size

        return run

    ca_up = upload(lambda f: session.post(upload_url, data=f).status)  # type: ignore[arg-type]
    rq_up = upload(lambda f: rq.post(upload_url, data=f).status_code)
    hx_up = upload(lambda f: hx.post(upload_url, content=f).status_code)  # type: ignore[arg-type]

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ca_down()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"R pystream.peak_before_kib {before}\nR pystream.peak_after_kib {after}")

    cases: Dict[str, List[Tuple[str, Callable[[], int]]]] = {
        "down": [
            ("cloudauth", ca_down),
            ("requests", rq_down),
            ("httpx", hx_down),
            ("download", dl_down),
        ],
        "up": [("cloudauth", ca_up), ("requests", rq_up), ("httpx", hx_up)],
    }
    for way, clients in cases.items():
        size = BIG if way == "down" else blob_size
        for _, fn in clients:  # warm-up: connections, buffers
            if way == "up":
                timed(fn, size)
        got: Dict[str, List[Tuple[float, float]]] = {name: [] for name, _ in clients}
        for i in range(rounds):
            for name, fn in clients[:: 1 if i % 2 == 0 else -1]:
                got[name].append(timed(fn, size))
        for name, runs in got.items():
            mib_s = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"R pystream.{way}.{name}.mib_s {mib_s:.4g}")
            print(f"R pystream.{way}.{name}.cpu_us_per_mib {cpu:.4g}")
            print(f"pystream {way} {name}: {mib_s:.0f} MiB/s, {cpu:.0f} µs CPU/MiB", file=sys.stderr)
    print(f"R pystream.up.mib {blob_size / MIB:.4g}")
    session.close()
    rq.close()
    hx.close()


if __name__ == "__main__":
    main()
