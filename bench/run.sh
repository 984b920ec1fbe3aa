#!/usr/bin/env bash
# cloudauth benchmarks: `make bench` (or bench/run.sh after `make build`).
#
# Starts a private nginx on a free loopback port as token endpoint and Bearer-checking API,
# builds the C benchmarks into bench/work/, runs every comparison (interleaved rounds, medians),
# then writes bench/results.md and bench/threads.svg and prints the table.
#
#   bench/run.sh           the full run (a few minutes)
#   bench/run.sh --quick   fewer rounds and iterations: a smoke test of the machinery; its
#                          report goes to bench/work/, not over the committed results
#   bench/run.sh --only token,callgrind,threads
#                          only the named parts (token callgrind seq floor bodies bigdown threads herd rss
#                          newthread async refresh cold cli python pyasync pystream node dotnet java fleet idp); prints their R lines
#                          (bench/work/results.txt) instead of writing a report
#
# Needs nginx (Debian nginx-light), libcurl's headers, cc and python3 (scripts/ensure-deps.sh
# bench installs them); the Python part makes its own venv in bench/work/venv with `requests`,
# `aiohttp` and `httpx`.
# Only 127.0.0.1 is ever contacted. bench/profile.sh profiles the hot paths with perf.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
LIB=$ROOT/target/release/libcloudauth.so
export BENCH_QUICK=0
ONLY=
case ${1:-} in
  --quick) BENCH_QUICK=1 ;;
  --only) ONLY=,${2:?--only needs a list such as token,callgrind},; ;;
esac
# wanted <part>: whether this run includes the part (every part unless --only)
wanted() { [[ -z $ONLY || $ONLY == *",$1,"* ]]; }
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

check_prerequisites
RESULTS=$WORK/results.txt
: >"$RESULTS"
echo "R machine.load_before $(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
build_bench

# Python: a venv of our own with requests, aiohttp and httpx; the binding comes from the source
# tree (installing it would run cargo) and loads the library built above.
VENV=$WORK/venv
if { wanted python || wanted pyasync || wanted pystream; } && ! "$VENV/bin/python" -c 'import requests, aiohttp, httpx' 2>/dev/null; then
  say "creating $VENV with requests, aiohttp and httpx"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q requests aiohttp httpx
fi
[[ -f $ROOT/bindings/python/src/cloudauth/__init__.py ]] ||
  die "the Python binding (bindings/python/src/cloudauth) is missing"

trap 'stop_nginx; stop_standin' EXIT
trap 'exit 130' INT TERM
start_nginx
start_standin

step() { # step <part> <title> <command...>: its R lines go to the results, progress to the terminal
  [[ $1 == check ]] || wanted "$1" || return 0
  say "-- $2"
  shift 2
  "$@" >>"$RESULTS" || die "step failed: $*"
}
step check "sanity check (200 with the token, 401 without)" "$WORK/bench" check
step token "1. cached token vs the C floor" "$WORK/bench" token
# Instructions per call under callgrind (~50x slower, so few calls: N and 2N, differenced).
CG_N=100000
if [[ $BENCH_QUICK == 1 ]]; then CG_N=20000; fi
step callgrind "1, 2, 7. callgrind: instructions per cached token call vs the C floor, per GET vs libcurl, per async GET vs curl multi" \
  env CALLGRIND_N=$CG_N "$BENCH/callgrind.sh"
# One request at a time is a ping-pong with nginx. On this kind of VM, waking the other, idle
# CPU costs tens of microseconds, so an unpinned run measures where the scheduler happened to put
# the client (8k or 28k req/s, bimodal). The sequential benches therefore run on CPU 0, with
# nginx's worker (worker_cpu_affinity): the time per request is then the client's CPU plus
# nginx's, and the comparison is stable. The threads bench is left to the scheduler.
PIN=(taskset -c 0)
step seq "2. sequential GETs: cloudauth vs libcurl (client and nginx on CPU 0)" "${PIN[@]}" "$WORK/bench" seq
# Issue 18 wants CPU per request unpinned too: the same loop where the scheduler puts it.
step seq "2. sequential GETs, unpinned: cloudauth vs libcurl" "$WORK/bench" sequnpinned
# Issue 27: the physical floor (a C client on a raw socket), pinned as above.
step floor "2. sequential GETs: cloudauth vs the raw-socket C floor (client and nginx on CPU 0)" "${PIN[@]}" "$WORK/bench" floor
# A body's throughput wants the client and nginx on a core each: unpinned, the client lands on
# nginx's CPU in some rounds and not in others (2.3 or 3.5 GB/s for the same code). Both
# clients run in one process, so both get CPU 1.
OTHER_CPU=(taskset -c "$(($(nproc) > 1 ? 1 : 0))")
step bodies "2. 16 MiB upload and download: cloudauth vs libcurl with callbacks (client on CPU 1, nginx on CPU 0)" "${OTHER_CPU[@]}" "$WORK/bench" bodies
step bigdown "2. a 1 GiB download streamed to a callback: peak RSS growth" "$WORK/bench" bigdown
step threads "3. concurrent GETs: 1, 2, 4, 8 threads" "$WORK/bench" threads
step herd "5. thundering herd: 64 threads, no token" "$WORK/bench" herd
step rss "6. RSS after 10,000 and 50,000 requests" "$WORK/bench" rss
step newthread "6. first request from a new thread" "$WORK/bench" newthread
step async "7. async: 8, 64, 256 requests in flight from one thread (caller-driven queue, callbacks) vs libcurl multi" "$WORK/bench" async
step refresh "8. session_token across refreshes, 500 ms token endpoint: background vs inline vs the floor" \
  "$WORK/bench" refresh
if wanted idp; then # keys for the private_key_jwt fetches, made fresh for each run
  openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/es256.pem" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rs256.pem" 2>/dev/null
fi
step idp "9. identity providers: token fetch private_key_jwt vs client_secret_post; DPoP vs Bearer GET (CPU 0)" \
  "${PIN[@]}" env BENCH_ES256_KEY="$WORK/es256.pem" BENCH_RS256_KEY="$WORK/rs256.pem" "$WORK/bench" idp
COLD_RUNS=11
if [[ $BENCH_QUICK == 1 ]]; then COLD_RUNS=3; fi
if wanted cold; then
  say "-- 6. cold start: dlopen + session_new + first token, $COLD_RUNS fresh processes"
  for _ in $(seq "$COLD_RUNS"); do "$WORK/cold" "$LIB" >>"$RESULTS" || die "cold start failed"; done
  say "-- 6. a process's first https connection (the trust store's first use) vs a second session's"
  for _ in $(seq "$COLD_RUNS"); do "$WORK/cold" "$LIB" tls >>"$RESULTS" || die "cold tls failed"; done
  # The same in instructions (callgrind; noise-free): the trust store's load against the rest of
  # the first handshake (which includes it).
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cold-tls.cg" "$WORK/cold" "$LIB" tls >/dev/null 2>"$WORK/cold-tls.cg.log" ||
    die "callgrind of the cold tls run failed: $(tail -3 "$WORK/cold-tls.cg.log")"
  callgrind_annotate --inclusive=yes "$WORK/cold-tls.cg" 2>/dev/null | awk '
    function n(s) { gsub(",", "", s); return s + 0 }
    /cloudauth::tls::roots::load \[/ { load += n($1) }
    /cloudauth::tls::roots::store \[/ { store += n($1) }
    /MidHandshake<IS> as core::future::future::Future>::poll \[/ { hs += n($1) }
    END { printf "R cold.tls.store_ir %d\nR cold.tls.handshake_ir %d\n", load + store, hs }' >>"$RESULTS"
fi
# Issue 27: the command-line tool, one process per token with the file cache warm, against curl
# posting to the same token endpoint (hyperfine: medians of many runs).
if wanted cli; then
  say "-- 6. cloudauth token (file cache warm) vs curl posting to the token endpoint, per process"
  CLI_DIR=$WORK/cli && rm -rf "$CLI_DIR" && mkdir -p "$CLI_DIR"
  CLI_RUNS=300
  if [[ $BENCH_QUICK == 1 ]]; then CLI_RUNS=30; fi
  env CLOUDAUTH_CLIENT_ID=bench-client CLOUDAUTH_CLIENT_SECRET=bench-secret \
    CLOUDAUTH_TOKEN_URL="$BENCH_BASE/connect/token" CLOUDAUTH_TOKEN_CACHE_DIR="$CLI_DIR" \
    hyperfine -N --style none --warmup 20 --runs "$CLI_RUNS" --export-json "$CLI_DIR/hf.json" \
    "$ROOT/target/release/cloudauth token" \
    "curl -sf -d grant_type=client_credentials -d client_id=bench-client -d client_secret=bench-secret $BENCH_BASE/connect/token" \
    >/dev/null 2>&1 || die "hyperfine (cloudauth token vs curl) failed"
  python3 - "$CLI_DIR/hf.json" >>"$RESULTS" <<'PY'
import json, sys
for name, r in zip(("token", "curl"), json.load(open(sys.argv[1]))["results"]):
    print(f"R cli.{name}.median_ms {r['median'] * 1e3:.4f}")
    print(f"R cli.{name}.cpu_ms {(r['user'] + r['system']) * 1e3:.4f}")
    print(f"R cli.{name}.runs {len(r['times'])}")
PY
fi
step python "4. Python: cloudauth.Session vs requests.Session (client and nginx on CPU 0)" \
  "${PIN[@]}" env CLOUDAUTH_LIBRARY="$LIB" PYTHONPATH="$ROOT/bindings/python/src" \
  "$VENV/bin/python" "$BENCH/bench_python.py"
# The event loop, the library's threads and nginx need the two CPUs: not pinned.
step pyasync "4. Python asyncio: AsyncSession vs aiohttp and httpx, 64 in flight" \
  env CLOUDAUTH_LIBRARY="$LIB" PYTHONPATH="$ROOT/bindings/python/src" \
  "$VENV/bin/python" "$BENCH/bench_async_python.py"
# Streamed bodies: 1 GiB down, 16 MiB up from a file (the library's runtime thread, the
# binding's worker thread and nginx: not pinned).
step pystream "4. Python streamed bodies: Session.stream / data=file vs requests and httpx" \
  env CLOUDAUTH_LIBRARY="$LIB" PYTHONPATH="$ROOT/bindings/python/src" \
  BENCH_BLOB_FILE="$WORK/nginx/html/api/blob" "$VENV/bin/python" "$BENCH/bench_python_stream.py"

# Node.js (bindings/node, bench/node/bench.mjs): session.request vs undici.request and fetch with
# a fixed Authorization header, and cloudauth.fetch vs fetch; sequential on CPU 0 with nginx,
# 64 in flight unpinned. Needs bindings/node/node_modules (tests/run/node.sh or npm ci there).
if wanted node && command -v node >/dev/null; then
  if [[ ! -d $ROOT/bindings/node/node_modules/undici ]]; then
    (cd "$ROOT/bindings/node" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  step node "4. Node.js: session.request vs undici.request and fetch, one at a time (CPU 0)" \
    "${PIN[@]}" env CLOUDAUTH_LIBRARY="$LIB" node "$BENCH/node/bench.mjs" seq
  step node "4. Node.js: session.request vs undici.request and fetch, 64 in flight" \
    env CLOUDAUTH_LIBRARY="$LIB" node "$BENCH/node/bench.mjs" conc
fi

# .NET on Mono: the handler's overhead per request (the binding is compiled from source here).
if wanted dotnet && command -v mcs >/dev/null && command -v mono >/dev/null; then
  mcs -nologo -target:library -out:"$WORK/CloudAuth.dll" -r:System.Net.Http.dll -nowarn:1591 \
    "$ROOT"/bindings/dotnet/src/*.cs
  mcs -nologo -out:"$WORK/BenchDotnet.exe" -r:System.Net.Http.dll -r:"$WORK/CloudAuth.dll" "$BENCH/BenchDotnet.cs"
  step dotnet "4. .NET: HttpClient with CloudAuthHandler vs a bare HttpClient" \
    env LD_LIBRARY_PATH="$ROOT/target/release" mono "$WORK/BenchDotnet.exe"
fi

# Java (bindings/java): Session.request vs java.net.http and OkHttp (client and nginx on CPU 0,
# as the other sequential benches), the OkHttp interceptor's own cost, the cached token.
if wanted java && command -v java >/dev/null && command -v mvn >/dev/null; then
  step java "4. Java: Session.request vs HttpClient and OkHttp; OkHttp interceptor overhead; cached token" \
    "${PIN[@]}" "$BENCH/java/run.sh"
fi

# Issue 10: 200 short-lived processes with the file cache, Redis, and memory only.
step fleet "7. fleet: 200 short-lived processes, file vs Redis vs memory" "$BENCH/fleet.sh"

# Footprint of the shared library.
strip -o "$WORK/libcloudauth.stripped.so" "$LIB"
{
  echo "R so.size_bytes $(stat -c %s "$LIB")"
  echo "R so.stripped_bytes $(stat -c %s "$WORK/libcloudauth.stripped.so")"
} >>"$RESULTS"

echo "R machine.load_after $(cut -d' ' -f1 /proc/loadavg)" >>"$RESULTS"
check_nginx_log
stop_nginx
stop_standin
trap - EXIT

if [[ -n $ONLY ]]; then
  cat "$RESULTS"
  exit 0
fi

# A quick run is a smoke test: its figures do not replace the committed results.
OUT=$BENCH
if [[ $BENCH_QUICK == 1 ]]; then OUT=$WORK; fi
python3 "$BENCH/report.py" "$RESULTS" "$OUT/results.md" "$OUT/threads.svg"
