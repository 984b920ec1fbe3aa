"""Turns the "R <key> <value>" lines of a bench run into a table, results.md and threads.svg.

    python3 bench/report.py bench/work/results.txt bench/results.md bench/threads.svg

No dependencies beyond the standard library (the plot is hand-written SVG).
"""

from __future__ import annotations

import ctypes
import datetime
import os
import platform
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

THREADS = (1, 2, 4, 8)


def load(path: str) -> Dict[str, List[str]]:
    values: Dict[str, List[str]] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "R":
                values.setdefault(parts[1], []).append(parts[2])
    return values


class Results:
    def __init__(self, raw: Dict[str, List[str]]) -> None:
        self.raw = raw

    def num(self, key: str) -> float:
        """The value of key; the median when several processes reported it (cold starts)."""
        if key not in self.raw:
            sys.exit(f"report: FAILED: no result '{key}' (did a step fail?)")
        return statistics.median(float(v) for v in self.raw[key])

    def count(self, key: str) -> int:
        return len(self.raw.get(key, []))

    def rounds(self, key: str) -> str:
        return self.raw.get(key + ".rounds", [""])[0]


def sh(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip()
    except OSError:
        return "?"


def machine(r: Results) -> List[Tuple[str, str]]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release",
                       "libcloudauth.so")
    try:
        version = ctypes.CDLL(lib).cloudauth_version
        version.restype = ctypes.c_char_p
        ca_version = version().decode()
    except OSError:
        ca_version = "?"
    return [
        ("CPUs (nproc)", sh("nproc")),
        ("CPU model", model),
        ("memory", mem),
        ("kernel", platform.release()),
        ("OS", sh("sh", "-c", ". /etc/os-release && echo $PRETTY_NAME")),
        ("cloudauth", ca_version + " (target/release, --release profile)"),
        ("libcurl", sh("curl-config", "--version")),
        ("nginx", sh("/usr/sbin/nginx", "-v").replace("nginx version: ", "")),
        ("compiler", sh("cc", "--version").splitlines()[0] if sh("cc", "--version") else "?"),
        ("Python", platform.python_version()),
        ("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
        ("load average (1 min) before / after the run",
         f"{r.num('machine.load_before'):.2f} / {r.num('machine.load_after'):.2f}"
         if r.count("machine.load_before") and r.count("machine.load_after") else "?"),
    ]


def fmt(x: float, unit: str = "") -> str:
    if x >= 100000:
        s = f"{x:,.0f}"
    elif x >= 100:
        s = f"{x:,.0f}"
    elif x >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return f"{s} {unit}".strip()


def verdict(ok: Optional[bool], goal: str) -> str:
    if ok is None:
        return "not measurable" if "not measurable" in goal else "—"
    return "**met**" if ok else "**MISSED**"


def build_rows(r: Results) -> List[Tuple[str, str, str, str, str, Optional[bool]]]:
    """(measure, cloudauth, baseline, ratio, goal, met)"""
    rows = []
    tok, floor = r.num("token.cloudauth.ns"), r.num("token.floor.ns")
    rows.append((
        f"1. cached token, 1 thread ({int(r.num('token.len'))}-byte token), ns/call",
        fmt(tok, "ns"), f"{fmt(floor, 'ns')} (C floor: mutex + clock_gettime + memcpy)",
        f"{tok / floor:.2f}×", "≤ 2× the floor", tok / floor <= 2.0,
    ))
    if r.count("callgrind.token.ir_per_call"):
        ci, fi = r.num("callgrind.token.ir_per_call"), r.num("callgrind.floor.ir_per_call")
        rows.append((
            "1. cached token, 1 thread, instructions per call (callgrind, N and 2N calls differenced)",
            f"{ci:.0f} instr ({fmt(tok, 'ns')})", f"{fi:.0f} instr ({fmt(floor, 'ns')}) (C floor)",
            f"{ci / fi:.2f}×", "≤ 1.0× the floor", ci / fi <= 1.0,
        ))
    s_ca, s_fl = r.num("token.cloudauth.2t_scaling"), r.num("token.floor.2t_scaling")
    s_pr = r.num("token.private.2t_scaling")
    eff = r.num("token.cloudauth.2t_efficiency")
    # The goal is absolute; but when the VM itself did not give two threads 1.5× (its vCPUs
    # are shared with the host), no code could meet it in that run: say so rather than "missed".
    ok2: Optional[bool] = True if s_ca >= 1.5 else (None if s_pr < 1.5 else False)
    rows.append((
        "1. cached token, 2 threads on one session: calls/s over 1 thread's",
        f"{s_ca:.2f}× ({eff:.0%} of the machine's ceiling, per round)",
        f"floor (one mutex) {s_fl:.2f}×; the same loop sharing nothing {s_pr:.2f}× (this machine's ceiling in this run)",
        f"{s_ca:.2f}×", "≥ 1.5×" + ("" if ok2 is not None else
                                  f" — not measurable in this run: the machine's ceiling was {s_pr:.2f}×"),
        ok2,
    ))
    ca, cu = r.num("seq.cloudauth.per_s"), r.num("seq.curl.per_s")
    rows.append((
        f"2. sequential GETs, one kept-alive connection ({int(r.num('seq.n')):,}/round; client on nginx's CPU), req/s",
        f"{fmt(ca, 'req/s')} ({r.num('seq.cloudauth.cpu_us'):.1f} µs CPU/req)",
        f"{fmt(cu, 'req/s')} ({r.num('seq.curl.cpu_us'):.1f} µs CPU/req) (libcurl, reused easy handle)",
        f"{ca / cu:.2f}×", "≥ 0.9× libcurl", ca / cu >= 0.9,
    ))
    # Issue 18, goal 1: instructions and CPU per request at or below libcurl's.
    if r.count("callgrind.get.ir_per_call"):
        gi, ki = r.num("callgrind.get.ir_per_call"), r.num("callgrind.curl.ir_per_call")
        rows.append((
            "2. sequential GETs, client instructions per request (callgrind, N and 2N requests differenced; nginx not counted)",
            f"{gi:,.0f} instr", f"{ki:,.0f} instr (libcurl, reused easy handle)",
            f"{gi / ki:.2f}×", "≤ 1.00× libcurl", gi / ki <= 1.0,
        ))
    for prefix, where in (("seq", "pinned: client on nginx's CPU"), ("sequnpinned", "unpinned")):
        if not r.count(f"{prefix}.cloudauth.cpu_us"):
            continue
        a, b = r.num(f"{prefix}.cloudauth.cpu_us"), r.num(f"{prefix}.curl.cpu_us")
        rows.append((
            f"2. sequential GETs, client CPU per request ({where}), µs",
            f"{a:.1f} µs ({fmt(r.num(f'{prefix}.cloudauth.per_s'), 'req/s')})",
            f"{b:.1f} µs ({fmt(r.num(f'{prefix}.curl.per_s'), 'req/s')}) (libcurl)",
            f"{a / b:.2f}×", "≤ 1.00× libcurl", a / b <= 1.0,
        ))
    # Issue 27: the physical floor, a C client writing a prepared request on a raw socket.
    if r.count("floor.cpu_ratio"):
        a, b = r.num("floor.cloudauth.cpu_us"), r.num("floor.raw.cpu_us")
        rows.append((
            "2. sequential GETs vs the physical floor (a C client: one send of a prepared request, blocking "
            "recv, minimal parsing; same nginx, one kept-alive connection each, client on nginx's CPU), "
            "client CPU per request",
            f"{a:.2f} µs ({fmt(r.num('floor.cloudauth.per_s'), 'req/s')})",
            f"{b:.2f} µs ({fmt(r.num('floor.raw.per_s'), 'req/s')}) (raw-socket floor)",
            f"{r.num('floor.cpu_ratio'):.2f}× (median of per-round ratios; rounds {r.rounds('floor.cpu_ratio')})",
            "≤ 1.5× the floor", r.num("floor.cpu_ratio") <= 1.5,
        ))
    if r.count("callgrind.raw.ir_per_call"):
        gi, fi = r.num("callgrind.get.ir_per_call"), r.num("callgrind.raw.ir_per_call")
        rows.append((
            "2. sequential GETs, client instructions per request vs the raw-socket floor (callgrind; user space only)",
            f"{gi:,.0f} instr", f"{fi:,.0f} instr (raw-socket floor)", f"{gi / fi:.1f}×", "(reported)", None,
        ))
    if r.count("bodies.mib"):
        mib = int(r.num("bodies.mib"))
        streamed = r.count("bodies.down.stream.mib_s") > 0
        up_streamed = r.count("bodies.up.stream.mib_s") > 0
        cases = (("up", "stream", "upload (POST, the body from a read callback)", up_streamed),
                 ("up", "cloudauth", "upload (POST, the body from one buffer)", not up_streamed),
                 ("down", "stream" if streamed else "cloudauth",
                  "download (GET" + (", streamed to a write callback)" if streamed else ")"), True),
                 ("down", "cloudauth", "download (GET, the whole body in the response)", False))
        for way, ours, what, goal in cases:
            if not r.count(f"bodies.{way}.{ours}.mib_s") or (not goal and ours == "cloudauth" and way == "down" and not streamed):
                continue
            a, b = r.num(f"bodies.{way}.{ours}.mib_s"), r.num(f"bodies.{way}.curl.mib_s")
            ac, bc = r.num(f"bodies.{way}.{ours}.cpu_us_per_mib"), r.num(f"bodies.{way}.curl.cpu_us_per_mib")
            rows.append((
                f"2. {mib} MiB {what} over loopback nginx, one kept-alive connection: throughput (process CPU per MiB)",
                f"{fmt(a, 'MiB/s')} ({ac:.0f} µs/MiB)",
                f"{fmt(b, 'MiB/s')} ({bc:.0f} µs/MiB) (libcurl: {'read' if way == 'up' else 'write'} callback, largest buffers)",
                f"{a / b:.2f}× (CPU {ac / bc:.2f}×)",
                "≥ 1.0× libcurl's throughput, ≤ 1.0× its CPU" if goal else "(reported)",
                (a / b >= 1.0 and ac / bc <= 1.0) if goal else None,
            ))
    if r.count("bigdown.peak_after_kib"):
        growth = r.num("bigdown.peak_after_kib") - r.num("bigdown.peak_before_kib")
        rows.append((
            "2. 1 GiB download streamed to a write callback (cloudauth_session_request_stream): growth of the peak RSS",
            f"{growth / 1024:+.1f} MiB ({fmt(r.num('bigdown.mib_s'), 'MiB/s')}, {r.num('bigdown.cpu_us_per_mib'):.0f} µs CPU/MiB)",
            f"peak {r.num('bigdown.peak_before_kib') / 1024:.1f} MiB before", "", "≤ 16 MiB", growth <= 16 * 1024,
        ))
    for t in THREADS:
        a, b = r.num(f"threads.{t}.cloudauth.per_s"), r.num(f"threads.{t}.curl.per_s")
        if not r.count(f"threads.{t}.cloudauth.cpu_us"):
            rows.append((
                f"3. concurrent GETs, {t} thread{'s' if t > 1 else ''} (one shared session / one curl handle each), req/s",
                fmt(a, "req/s"), f"{fmt(b, 'req/s')} (libcurl)", f"{a / b:.2f}×", "(reported)", None,
            ))
            continue
        # Issue 18, goal 3: CPU per request (req/s swings with the machine's load); and, where
        # measured, instructions, which the machine's load does not move.
        if r.count(f"callgrind.get.{t}.ir_per_call"):
            gi, ki = r.num(f"callgrind.get.{t}.ir_per_call"), r.num(f"callgrind.curl.{t}.ir_per_call")
            rows.append((
                f"3. concurrent GETs, {t} threads, client instructions per request (callgrind)",
                f"{gi:,.0f} instr", f"{ki:,.0f} instr (libcurl)", f"{gi / ki:.2f}×", "(reported)", None,
            ))
        ac, bc = r.num(f"threads.{t}.cloudauth.cpu_us"), r.num(f"threads.{t}.curl.cpu_us")
        rows.append((
            f"3. concurrent GETs, {t} thread{'s' if t > 1 else ''} (one shared session / one curl handle each), client CPU per request",
            f"{ac:.1f} µs ({fmt(a, 'req/s')})", f"{bc:.1f} µs ({fmt(b, 'req/s')}) (libcurl)",
            f"{ac / bc:.2f}× (req/s {a / b:.2f}×)", "CPU/req ≤ 1.00× libcurl", ac / bc <= 1.0,
        ))
    pa, pr = r.num("py.cloudauth.per_s"), r.num("py.requests.per_s")
    rows.append((
        "4. Python: Session.request vs requests.Session, req/s",
        fmt(pa, "req/s"), f"{fmt(pr, 'req/s')} (requests)", f"{pa / pr:.2f}×",
        "≥ 2× requests", pa / pr >= 2.0,
    ))
    pt, pat = r.num("py.token.ns"), r.num("py.attr.ns")
    rows.append((
        "4. Python: Session.token() vs a plain attribute read, ns/call",
        fmt(pt, "ns"), f"{fmt(pat, 'ns')} (attribute)", f"{pt / pat:.0f}×", "(reported)", None,
    ))
    ya, yo, yx = (r.num(f"pyasync.{n}.per_s") for n in ("cloudauth", "aiohttp", "httpx"))
    best_name, best = ("aiohttp", yo) if yo >= yx else ("httpx", yx)
    rows.append((
        f"4. Python asyncio, {int(r.num('pyasync.in_flight'))} requests in flight: AsyncSession vs the faster of aiohttp.ClientSession / httpx.AsyncClient, req/s",
        f"{fmt(ya, 'req/s')} ({r.num('pyasync.cloudauth.cpu_us'):.0f} µs CPU/req)",
        f"aiohttp {fmt(yo, 'req/s')} ({r.num('pyasync.aiohttp.cpu_us'):.0f} µs CPU/req), "
        f"httpx {fmt(yx, 'req/s')} ({r.num('pyasync.httpx.cpu_us'):.0f} µs CPU/req)",
        f"{ya / best:.2f}× {best_name}", "≥ 1.5× the faster", ya / best >= 1.5,
    ))
    if r.count("pystream.down.cloudauth.mib_s"):
        for way, what in (("down", "1 GiB download read piece by piece (Session.stream().iter_bytes())"),
                          ("up", f"{r.num('pystream.up.mib'):.0f} MiB upload from an open file (data=file)")):
            a, ac = r.num(f"pystream.{way}.cloudauth.mib_s"), r.num(f"pystream.{way}.cloudauth.cpu_us_per_mib")
            bn = max(("requests", "httpx"), key=lambda n: r.num(f"pystream.{way}.{n}.mib_s"))
            b, bc = r.num(f"pystream.{way}.{bn}.mib_s"), r.num(f"pystream.{way}.{bn}.cpu_us_per_mib")
            rows.append((
                f"4. Python: {what} vs the faster of requests / httpx, over loopback nginx: throughput (process CPU per MiB)",
                f"{fmt(a, 'MiB/s')} ({ac:.0f} µs/MiB)", f"{fmt(b, 'MiB/s')} ({bc:.0f} µs/MiB) ({bn})",
                f"{a / b:.2f}× (CPU {ac / bc:.2f}×)", "(reported)", None,
            ))
        growth = r.num("pystream.peak_after_kib") - r.num("pystream.peak_before_kib")
        rows.append((
            "4. Python: growth of the peak RSS over a 1 GiB Session.stream() download",
            f"{growth / 1024:+.1f} MiB", f"peak {r.num('pystream.peak_before_kib') / 1024:.1f} MiB before",
            "", "≤ 16 MiB", growth <= 16 * 1024,
        ))
    if "dotnet.handler.us_per_req" in r.raw:
        dh, db = r.num("dotnet.handler.us_per_req"), r.num("dotnet.bare.us_per_req")
        rows.append((
            "4. .NET on Mono: HttpClient + CloudAuthHandler vs a bare HttpClient with a fixed Bearer header, sequential GETs, µs/request",
            f"{dh:.0f} µs", f"{db:.0f} µs (bare HttpClient)",
            f"+{dh - db:.0f} µs/request ({dh / db:.2f}×)", "(reported: the handler's overhead)", None,
        ))
    # Issue 18, goal 4: the handler's own cost, no network (both clients over a canned handler).
    if r.count("dotnet.canned.overhead_us"):
        ch, cb, co = (r.num(f"dotnet.canned.{k}") for k in ("handler.us_per_req", "bare.us_per_req", "overhead_us"))
        rows.append((
            "4. .NET handler overhead: HttpClient + CloudAuthHandler vs HttpClient setting a fixed Bearer header, "
            "both over a handler that answers at once (no network), cached token, µs/request",
            f"{ch:.2f} µs", f"{cb:.2f} µs (bare HttpClient)",
            f"+{co:.2f} µs/request (median of per-round differences)", "≤ 5 µs", co <= 5.0,
        ))
    # Node.js (bindings/node, bench/node/bench.mjs): ran in every full bench, shown since this stop.
    for mode, what in (("seq", "one at a time (client and nginx on CPU 0)"), ("conc", "64 in flight")):
        if not r.count(f"node.{mode}.cloudauth.per_s"):
            continue
        c, u, f = (r.num(f"node.{mode}.{k}.per_s") for k in ("cloudauth", "undici", "fetch"))
        cc, uc = r.num(f"node.{mode}.cloudauth.cpu_us"), r.num(f"node.{mode}.undici.cpu_us")
        rows.append((
            f"4. Node.js: session.request vs undici.request / fetch with a fixed Authorization header, GETs {what}, req/s (CPU per request)",
            f"{fmt(c, 'req/s')} ({cc:.0f} µs)", f"undici {fmt(u, 'req/s')} ({uc:.0f} µs), fetch {fmt(f, 'req/s')}",
            f"{c / u:.2f}× undici", "≥ 1.0× undici", c / u >= 1.0,
        ))
    # Java (bindings/java, bench/java/BenchJava.java).
    if r.count("java.seq.session.per_s"):
        js, jh, jo = (r.num(f"java.seq.{k}.per_s") for k in ("session", "httpclient", "okhttp"))
        best_name, best = ("OkHttp", jo) if jo >= jh else ("java.net.http", jh)
        rows.append((
            "4. Java: Session.request vs java.net.http.HttpClient / OkHttp with a fixed Authorization header, "
            "sequential GETs (client and nginx on CPU 0), req/s",
            fmt(js, "req/s"), f"HttpClient {fmt(jh, 'req/s')}, OkHttp {fmt(jo, 'req/s')}",
            f"{js / best:.2f}× {best_name}", "≥ 1.0× the faster", js / best >= 1.0,
        ))
        ji, jf, jd = (r.num(f"java.okhttp.canned.{k}") for k in ("interceptor.us_per_req", "fixed.us_per_req", "overhead_us"))
        rows.append((
            "4. Java OkHttp interceptor overhead: CloudAuthInterceptor vs an interceptor setting a fixed Bearer header, "
            "both over an interceptor that answers at once (no network), cached token, µs/request",
            f"{ji:.2f} µs", f"{jf:.2f} µs (fixed header)",
            f"+{jd:.2f} µs/request (median of per-round differences)", "≤ 2 µs", jd <= 2.0,
        ))
        rows.append((
            "4. Java Session.token() on a cached token (JNA, JDK 11-21), ns/call",
            f"{r.num('java.token.ns_per_call'):.0f} ns", f"{r.num('java.field.ns_per_read'):.1f} ns (a plain field read)",
            "", "(reported)", None,
        ))
        if r.count("java.token.ffm.ns_per_call"):
            rows.append((
                "4. Java Session.token() on a cached token (FFM, JDK 22+), ns/call",
                f"{r.num('java.token.ffm.ns_per_call'):.0f} ns",
                f"{r.num('java.field.ffm.ns_per_read'):.1f} ns (a plain field read)", "", "(reported)", None,
            ))
    if r.count("java.bodies.down.session.mib_per_s"):
        mib = int(r.num("java.bodies.mib"))
        for way, what in (("down", "download to a discarding sink"), ("up", "upload from a one-shot InputStream")):
            js, jh, jo = (r.num(f"java.bodies.{way}.{k}.mib_per_s") for k in ("session", "httpclient", "okhttp"))
            best_name, best = ("OkHttp", jo) if jo >= jh else ("java.net.http", jh)
            rows.append((
                f"4. Java streamed {what} ({mib} MiB, JNA callbacks): Session.{'download' if way == 'down' else 'upload'} "
                "vs java.net.http / OkHttp with a fixed Authorization header, 64 KiB pieces, MiB/s",
                fmt(js, "MiB/s"), f"HttpClient {fmt(jh, 'MiB/s')}, OkHttp {fmt(jo, 'MiB/s')}",
                f"{js / best:.2f}× {best_name}", "≥ 1.0× the faster", js / best >= 1.0,
            ))
    herd_max = r.num("herd.token_requests_max")
    rows.append((
        f"5. thundering herd: {int(r.num('herd.threads'))} threads, no usable token; token requests per round (max over {len(r.rounds('herd.token_requests').split(','))} rounds)",
        f"{herd_max:.0f}", "", "", "exactly 1", herd_max == 1,
    ))
    rows.append((
        "5. thundering herd: wait per thread, p50 / p99",
        f"{fmt(r.num('herd.wait_p50_us'), 'µs')} / {fmt(r.num('herd.wait_p99_us'), 'µs')}",
        "", "", "(reported)", None,
    ))
    rows.append((
        "6. libcloudauth.so size, stripped (unstripped)",
        f"{r.num('so.stripped_bytes') / 1048576:.2f} MiB ({r.num('so.size_bytes') / 1048576:.2f} MiB)",
        "", "", "(reported)", None,
    ))
    a, b = r.num("rss.first_kib"), r.num("rss.second_kib")
    n1, n2 = int(r.num("rss.first_n")), int(r.num("rss.second_n"))
    growth = b - a
    rows.append((
        f"6. RSS of a process with one session, after {n1:,} / {n2:,} requests",
        f"{a / 1024:.1f} MiB / {b / 1024:.1f} MiB (growth {growth:+.0f} KiB)",
        f"{r.num('rss.start_kib') / 1024:.1f} MiB before the first request", "",
        "no growth (≤ 256 KiB)", growth <= 256,
    ))
    rows.append((
        "6. first request from a thread new to the session (its runtime, client, connection), median",
        f"{r.num('newthread.first_ms'):.2f} ms",
        f"its second request {r.num('newthread.second_ms') * 1000:.0f} µs", "", "(reported)", None,
    ))
    rows.append((
        f"6. cold start: dlopen + session_new + first token from loopback (median of {r.count('cold.total_ms')} processes)",
        f"{r.num('cold.total_ms'):.2f} ms",
        f"dlopen {r.num('cold.dlopen_ms'):.2f} + session_new {r.num('cold.session_new_ms'):.2f} + first token {r.num('cold.first_token_ms'):.2f} ms",
        "", "≤ 2 ms", r.num("cold.total_ms") <= 2.0,
    ))
    rows.append((
        f"6. cold start: session_new alone (median of {r.count('cold.session_new_ms')} processes)",
        f"{r.num('cold.session_new_ms'):.3f} ms", "", "", "≤ 0.5 ms", r.num("cold.session_new_ms") <= 0.5,
    ))
    if r.count("cold.tls.first.request_ms"):
        first, second = r.num("cold.tls.first.request_ms"), r.num("cold.tls.second.request_ms")
        store, hs = r.num("cold.tls.store_ir"), r.num("cold.tls.handshake_ir")
        rows.append((
            "6. a process's first https request (trust store loaded, full handshake) vs a second session's "
            "first (full handshake only), median of fresh processes; instructions (callgrind) of the trust "
            "store's load vs the rest of the first handshake",
            f"{first:.2f} ms; trust store {store / 1e6:.2f} M instr",
            f"{second:.2f} ms; handshake without it {(hs - store) / 1e6:.2f} M instr",
            f"store {store / max(hs - store, 1):.2f}× a handshake",
            "(reported; was 19.4 M instr, in session_new)", None,
        ))
    if r.count("cli.token.median_ms"):
        a, b = r.num("cli.token.median_ms"), r.num("cli.curl.median_ms")
        rows.append((
            f"6. `cloudauth token`, file cache warm, one process per token (median of {int(r.num('cli.token.runs'))} runs, hyperfine)",
            f"{a:.2f} ms ({r.num('cli.token.cpu_ms'):.2f} ms CPU)",
            f"{b:.2f} ms ({r.num('cli.curl.cpu_ms'):.2f} ms CPU) (curl posting to the same token endpoint)",
            f"{a / b:.2f}×", "≤ 5 ms", a <= 5.0,
        ))
    if "fleet.processes" in r.raw:
        n, batch = int(r.num("fleet.processes")), int(r.num("fleet.batch"))
        for delay in ("0", r.raw["fleet.delay_ms"][0]):
            k = f"fleet.d{delay}"
            mem = r.num(f"{k}.memory.wall_ms")
            for cache in ("file", "redis"):
                wall, req = r.num(f"{k}.{cache}.wall_ms"), r.num(f"{k}.{cache}.token_requests")
                rows.append((
                    f"7. fleet: {n} processes (batches of {batch}), token endpoint answering in "
                    f"{delay} ms: {cache} cache vs memory only",
                    f"{req:.0f} token request(s), {wall:.0f} ms",
                    f"{r.num(f'{k}.memory.token_requests'):.0f} requests, {mem:.0f} ms",
                    f"{wall / mem:.2f}x",
                    "1 request" + (", faster than memory" if cache == "file" else ""),
                    req == 1 and (cache != "file" or wall < mem),
                ))
    a, b = r.num("async.cloudauth.per_s"), r.num("async.curl.per_s")
    rows.append((
        f"7. async GETs, {int(r.num('async.inflight'))} in flight from one thread ({int(r.num('async.n')):,}/round), callbacks on library threads, req/s",
        f"{fmt(a, 'req/s')} (cloudauth_session_request_async)"
        + (f" ({r.num('async.cloudauth.cpu_us'):.0f} µs CPU/req)" if r.count("async.cloudauth.cpu_us") else ""),
        f"{fmt(b, 'req/s')} (libcurl multi, {int(r.num('async.inflight'))} easy handles)",
        f"{a / b:.2f}×", "≥ 0.9× libcurl multi", a / b >= 0.9,
    ))
    # Issue 18, goal 2: the caller-driven queue at or above curl multi at 8, 64 and 256.
    for n in (8, 64, 256):
        if not r.count(f"async.{n}.driven.per_s"):
            continue
        a, b = r.num(f"async.{n}.driven.per_s"), r.num(f"async.{n}.curl.per_s")
        ac, bc = r.num(f"async.{n}.driven.cpu_us"), r.num(f"async.{n}.curl.cpu_us")
        rows.append((
            f"7. async GETs, {n} in flight from one thread: caller-driven queue (cloudauth_queue_new_caller_driven) vs libcurl multi, req/s (process CPU per request)",
            f"{fmt(a, 'req/s')} ({ac:.1f} µs CPU/req)",
            f"{fmt(b, 'req/s')} ({bc:.1f} µs CPU/req) (libcurl multi, {n} easy handles)",
            f"{a / b:.2f}× (CPU {ac / bc:.2f}×)", "≥ 1.00× libcurl multi", a / b >= 1.0,
        ))
        if r.count(f"callgrind.driven.{n}.ir_per_call"):
            di, mi = r.num(f"callgrind.driven.{n}.ir_per_call"), r.num(f"callgrind.multi.{n}.ir_per_call")
            rows.append((
                f"7. async GETs, {n} in flight: client instructions per request (callgrind, N and 2N differenced)",
                f"{di:,.0f} instr", f"{mi:,.0f} instr (libcurl multi)", f"{di / mi:.2f}×", "(reported)", None,
            ))

    def pcts(key: str) -> str:
        return " / ".join(fmt(r.num(f"{key}.{p}_ns"), "ns") if r.num(f"{key}.{p}_ns") < 1e4
                          else fmt(r.num(f"{key}.{p}_ns") / 1e3, "µs") if r.num(f"{key}.{p}_ns") < 1e7
                          else fmt(r.num(f"{key}.{p}_ns") / 1e6, "ms")
                          for p in ("p50", "p99", "max"))

    life, secs = r.num("refresh.lifetime_s"), r.num("refresh.seconds")
    rounds = int(r.num("refresh.rounds"))
    what = (f"8. session_token across refreshes: 500 ms token endpoint, {life:g} s tokens, "
            f"{secs / life:g} lifetimes × {rounds} rounds per mode, one call per "
            f"{r.num('refresh.cadence_us'):g} µs; p50 / p99 / max")
    rows.append((
        what + ", every call",
        f"background {pcts('refresh.background.all')}",
        f"inline {pcts('refresh.inline.all')}; C floor {pcts('refresh.floor_bg.all')}",
        "", "(reported)", None,
    ))
    cached_p50 = r.num("refresh.inline.quiet.p50_ns")
    bg_max, fl_max = r.num("refresh.background.quiet.max_ns"), max(
        r.num("refresh.floor_bg.quiet.max_ns"), r.num("refresh.floor_inline.quiet.max_ns"))
    # The goal is absolute; but when the C floor itself, in the same loop, had a call slower than
    # 10x the cached p50 (the VM's interrupts and steal time), no code could meet it in that run.
    ok8: Optional[bool] = True if bg_max <= 10 * cached_p50 else (None if fl_max > 10 * cached_p50 else False)
    rows.append((
        "8. the same, calls during which the thread was not switched out (preempted calls: "
        f"background {int(r.num('refresh.background.preempted'))}, inline {int(r.num('refresh.inline.preempted'))}, "
        f"floor {int(r.num('refresh.floor_bg.preempted') + r.num('refresh.floor_inline.preempted'))})",
        f"background {pcts('refresh.background.quiet')}",
        f"inline {pcts('refresh.inline.quiet')}; C floor {pcts('refresh.floor_bg.quiet')}",
        f"max {bg_max / cached_p50:.0f}× the cached p50",
        "background max ≤ 10× the cached p50 (inline's)" + ("" if ok8 is not None else
            f" — not measurable in this run: the C floor's own max was {fl_max / 1e3:.0f} µs "
            f"= {fl_max / cached_p50:.0f}× the cached p50"),
        ok8,
    ))
    slept_bg, slept_in = r.num("refresh.background.slept"), r.num("refresh.inline.slept")
    rows.append((
        "8. calls that slept in the library (waited on a lock or the network: a voluntary context switch)",
        f"background {slept_bg:.0f} of {r.num('refresh.background.all.calls'):,.0f}",
        f"inline {slept_in:.0f} (one per refresh: the caller fetches); "
        f"background refreshes per round {r.rounds('refresh.background.background_refreshes')}",
        "", "0 in background mode", slept_bg == 0,
    ))
    if r.count("idp.get.dpop.us"):
        post = r.num("idp.fetch.post.us")
        for alg in ("es256", "rs256"):
            jwt = r.num(f"idp.fetch.pkjwt_{alg}.us")
            rows.append((
                f"9. token fetch from nginx, private_key_jwt ({alg.upper()} key file read and signed "
                "per fetch) vs client_secret_post, µs per fetch (once per token lifetime)",
                fmt(jwt, "µs"), f"{fmt(post, 'µs')} (client_secret_post)", f"+{jwt - post:.0f} µs",
                "(reported)", None,
            ))
        extra = r.num("idp.get.dpop_extra.us")
        if r.count("idp.get.dpop_extra.cpu_us"):
            # Issue 27: judged on the client's own CPU (nginx's share of the larger request and the
            # shared machine's noise stay out); the wall-clock difference is shown beside it.
            cpu = r.num("idp.get.dpop_extra.cpu_us")
            rows.append((
                "9. sequential GET with dpop=true (ES256 proof per request) vs Bearer: client CPU per request "
                "(client on nginx's CPU)",
                f"{r.num('idp.get.dpop.cpu_us'):.1f} µs (+{cpu:.1f} µs CPU, median of per-round differences; "
                f"wall +{extra:.1f} µs)",
                f"{r.num('idp.get.bearer.cpu_us'):.1f} µs (Bearer)", "", "proof adds ≤ 25 µs", cpu <= 25,
            ))
        else:
            rows.append((
                "9. sequential GET with dpop=true (ES256 proof per request) vs Bearer, µs per request "
                "(client on nginx's CPU)",
                f"{fmt(r.num('idp.get.dpop.us'), 'µs')} (+{extra:.1f} µs, median of per-round differences)",
                f"{fmt(r.num('idp.get.bearer.us'), 'µs')} (Bearer)", "", "proof adds ≤ 25 µs", extra <= 25,
            ))
    if r.count("callgrind.dpop.ir_per_call"):
        di, gi = r.num("callgrind.dpop.ir_per_call"), r.num("callgrind.get.ir_per_call")
        rows.append((
            "9. GET with a DPoP proof vs a Bearer GET, client instructions per request (callgrind)",
            f"{di:,.0f} instr", f"{gi:,.0f} instr (Bearer)", f"+{di - gi:,.0f} instr", "(reported)", None,
        ))
    return rows


def svg_plot(r: Results, path: str) -> None:
    ca = [r.num(f"threads.{t}.cloudauth.per_s") for t in THREADS]
    cu = [r.num(f"threads.{t}.curl.per_s") for t in THREADS]
    w, h, left, right, top, bottom = 640, 400, 80, 30, 60, 60
    pw, ph = w - left - right, h - top - bottom
    ymax = max(ca + cu) * 1.15
    step = 10 ** len(str(int(ymax / 5))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if ymax / (step * m) <= 6:
            step *= m
            break
    ymax = step * (int(ymax / step) + 1)

    def x(i: int) -> float:
        return left + pw * i / (len(THREADS) - 1)

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="15">'
        "Authorized GETs to local nginx: req/s vs client threads (median of rounds)</text>",
        f'<text x="{w / 2}" y="42" text-anchor="middle" font-size="11" fill="#555">'
        f"{os.cpu_count()} CPUs; nginx: 1 worker on CPU 0; clients and nginx share the CPUs</text>",
    ]
    v = 0.0
    while v <= ymax + 1e-9:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.0f}</text>')
        v += step
    for i, t in enumerate(THREADS):
        out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top}" y2="{top + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(i):.1f}" y="{top + ph + 18}" text-anchor="middle">{t}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="black"/>')
    out.append(f'<text x="{left + pw / 2}" y="{h - 15}" text-anchor="middle">threads</text>')
    out.append(f'<text transform="translate(18 {top + ph / 2}) rotate(-90)" text-anchor="middle">requests per second</text>')
    for name, series, colour, dash in (
        ("cloudauth (one shared session)", ca, "#1f77b4", ""),
        ("libcurl (one easy handle per thread)", cu, "#d62728", ' stroke-dasharray="6 4"'),
    ):
        pts = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(series))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>')
        for i, v in enumerate(series):
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"/>')
    lx, ly = left + 15, top + 10
    for k, (name, colour, dash) in enumerate((
        ("cloudauth (one shared session)", "#1f77b4", ""),
        ("libcurl (one easy handle per thread)", "#d62728", ' stroke-dasharray="6 4"'),
    )):
        yy = ly + 18 * k
        out.append(f'<line x1="{lx}" x2="{lx + 30}" y1="{yy}" y2="{yy}" stroke="{colour}" stroke-width="2.5"{dash}/>')
        out.append(f'<text x="{lx + 38}" y="{yy + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: report.py results.txt results.md threads.svg")
    src, md_path, svg_path = sys.argv[1:]
    r = Results(load(src))
    rows = build_rows(r)
    mach = machine(r)

    goals = [row for row in rows if row[5] is not None or "not measurable" in row[4]]
    met = sum(1 for row in goals if row[5])
    unmeasured = sum(1 for row in goals if row[5] is None)
    summary = f"Goals: {met} of {len(goals)} met" + (
        f", {unmeasured} not measurable in this run" if unmeasured else "") + "."

    # Terminal table.
    print()
    print("cloudauth benchmarks (medians of interleaved rounds)")
    width = max(len(row[0]) for row in rows)
    for measure, ca, base, ratio, goal, ok in rows:
        mark = "" if ok is None else ("  [met]" if ok else "  [MISSED]")
        has_goal = ok is not None or "not measurable" in goal
        print(f"  {measure:<{width}}  {ca}" + (f"  vs {base}" if base else "") +
              (f"  = {ratio}" if ratio else "") + (f"  goal {goal}{mark}" if has_goal else ""))
    print(f"\n  {summary}\n")
    for k, v in mach:
        print(f"  {k}: {v}")

    lines = [
        "# cloudauth benchmarks",
        "",
        "Generated by `make bench` (`bench/run.sh`); do not edit by hand. Every figure is the median",
        "of several interleaved rounds run in one process (or one script run), against a private",
        "nginx on 127.0.0.1 (1 worker, keep-alive, access log off) that serves the token endpoint",
        "and a Bearer-checking API. Every response's status (200) and body are checked.",
        "",
        f"**{summary}**",
        "",
        "| measure | cloudauth | baseline | ratio | goal | |",
        "|---|---|---|---|---|---|",
    ]
    for measure, ca, base, ratio, goal, ok in rows:
        lines.append(f"| {measure} | {ca} | {base} | {ratio} | {goal} | {verdict(ok, goal)} |")
    lines += [
        "",
        "![req/s vs threads](threads.svg)",
        "",
        "## Rounds",
        "",
        "Every round's value, in run order, for the medians above:",
        "",
        "```",
    ]
    for key in sorted(r.raw):
        if key.endswith(".rounds"):
            lines.append(f"{key[: -len('.rounds')]}: {r.raw[key][0]}")
    lines += ["```", ""]
    cg = os.path.join(os.path.dirname(os.path.abspath(src)), "callgrind")
    if os.path.exists(os.path.join(cg, "token.per_call.txt")):
        lines += [
            "## Instructions per call, by function (callgrind)",
            "",
            "`bench/callgrind.sh`: each function's instructions in a run of 2N calls minus a run of",
            "N calls, over N (setup cancels out); the benchmark loop's own check is `worker`.",
            "",
        ]
        for which, title in (("token", "cloudauth_session_token (cached)"), ("floor", "C floor"),
                             ("get", "cloudauth_session_request, sequential GET (top 40)"),
                             ("curl", "libcurl, sequential GET (top 40; its own symbols are stripped)")):
            path = os.path.join(cg, f"{which}.per_call.txt")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                text = "\n".join(f.read().rstrip().splitlines()[:40])
            lines += [f"{title}:", "", "```", text, "```", ""]
    lines += [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in mach]
    lines += [
        "",
        "## What is measured",
        "",
        "1. `cloudauth_session_token` on a cached token vs a plain-C floor doing the same work",
        "   (pthread mutex lock, `clock_gettime(CLOCK_MONOTONIC)`, compare, `memcpy` of a token of",
        "   the same length, unlock), both called in a loop; then two threads on one session (and",
        "   on one floor mutex) and their combined calls/s over one thread's. The same loop on",
        "   thread-private data shows how far this (virtual) machine lets two threads scale at",
        "   that moment: it varies from run to run, which is why every round measures it.",
        "   `bench/callgrind.sh` also counts the client's instructions per sequential GET",
        "   (cloudauth vs libcurl) and per async GET (caller-driven queue vs curl multi, at 8, 64",
        "   and 256 in flight): user-space instructions of the client process only, nginx apart.",
        "2. Sequential `GET /api/ping` over one kept-alive connection: `cloudauth_session_request`",
        "   (response body in memory) vs libcurl with one reused easy handle, the same Bearer",
        "   header and the body appended to a buffer. The client runs on CPU 0 with nginx's worker:",
        "   on this VM a wake-up of the other, idle CPU costs tens of µs, and an unpinned run is",
        "   bimodal (8k or 28k req/s) by where the scheduler put the client. CPU/req is the client",
        "   thread's user + system time per request (kernel loopback work included). The same",
        "   loop runs once more unpinned (`sequnpinned`), for CPU per request where the scheduler",
        "   puts the client.",
        "3. The same GETs from 1, 2, 4 and 8 threads: one cloudauth session shared by all (each",
        "   thread has its own runtime and connection) vs one curl easy handle per thread; each",
        "   thread warms up (connects) before the clock starts. nginx has one worker on CPU 0 and",
        "   the clients share the cores with it; with 1 thread the scheduler decides whether the",
        "   client sits on nginx's CPU, which makes that point noisier than section 2. CPU/req is",
        "   the client threads' CPU time in their timed loops over the requests they made.",
        "4. The Python binding (ctypes) vs `requests.Session` with the same header, on CPU 0 as",
        "   in 2; and `Session.token()` vs reading an attribute. Then asyncio, unpinned, in one",
        "   loop: 64 worker coroutines keep 64 GETs in flight with `AsyncSession.get`, with",
        "   `aiohttp.ClientSession` and with `httpx.AsyncClient` (same Bearer header, pools of 64",
        "   kept-alive connections), rounds interleaved; CPU/req is the whole process's CPU time",
        "   (every thread) per request, less disturbed by a busy machine than req/s.",
        "5. 64 threads call `cloudauth_session_token` at once after `cloudauth_session_invalidate`;",
        "   nginx logs `/connect/token` requests to a file of their own, whose new lines are counted.",
        "6. The stripped size of `libcloudauth.so`; VmRSS of one process holding one session after",
        "   the given numbers of requests; the time of the first request from a thread that had",
        "   not used the session (threads one after another); the time from before `dlopen` to the",
        "   first token in fresh processes.",
        "7. `cloudauth_session_request_async` with 64 requests in flight, started from one thread:",
        "   the callbacks (on library threads) check and free each response and hand the completion",
        "   back to that thread, which starts the next request. Against it, libcurl's multi",
        "   interface driven by one thread (`curl_multi_perform` + `curl_multi_poll`) with 64 easy",
        "   handles, each re-added when done. Both warm up their 64 connections first; same URL,",
        "   same Bearer header; not pinned (the library threads and nginx share both CPUs).",
        "   Then, at 8, 64 and 256 in flight, a caller-driven queue (`cloudauth_queue_new_caller_driven`:",
        "   the operations run on the waiting thread, inside `cloudauth_queue_wait`, as",
        "   `curl_multi_perform` runs libcurl's) against curl multi with as many easy handles;",
        "   rounds interleaved in rotating order; CPU/req is the whole process's CPU time.",
        "8. `cloudauth_session_token` timed call by call, one call every 20 µs for several token",
        "   lifetimes, against `tests/standin/server.py` (loopback) answering token requests in",
        "   500 ms with short-lived tokens; one session in `refresh_mode=background`, one in",
        "   `inline`, interleaved rounds. Each tick also times the C floor of section 1 on a token",
        "   that never expires: what the machine does to a ~80 ns call (interrupts, steal time).",
        "   `getrusage(RUSAGE_THREAD)` around each call sorts out the calls during which the",
        "   thread slept (a voluntary switch: it waited on a lock or the network) or was preempted",
        "   (an involuntary one: another process ran; on a shared 2-CPU machine that puts",
        "   milliseconds into whichever call it hits). The refresh point is half a short token's",
        "   lifetime (refresh_skew_s is capped at half), measured from when the token request was",
        "   sent, so with 4 s tokens a refresh is in flight a quarter of the time; those calls take",
        "   the refresh-window path (one mutex), which is what p99 shows.",
        "",
        "nginx is set up with `client_header_buffer_size 4k`: a request with a ~1 KiB JWT is just",
        "over the default 1k, past which nginx does an extra recv, an ioctl and a copy per request,",
        "so whichever client's headers crossed the line first would lose by that alone. libcurl",
        "sends a User-Agent like cloudauth does, so both requests have the same shape and size.",
        "",
        "Where the time goes: `bench/profile.sh` records perf profiles of the cached-token path",
        "and of sequential GETs (cloudauth and libcurl) into `bench/work/profile/`.",
        "",
        "Reproduce: `make bench` (or `make build && bench/run.sh`).",
        "",
    ]
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    svg_plot(r, svg_path)
    print(f"\nwrote {md_path} and {svg_path}")


if __name__ == "__main__":
    main()
