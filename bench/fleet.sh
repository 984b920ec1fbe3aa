#!/usr/bin/env bash
# The fleet benchmark (issue 10): 200 short-lived processes, started in batches of 20 at once,
# each making a session and getting one token; with the file cache, with Redis, and with the
# in-memory cache only. Reports the token requests the endpoint saw and the wall time.
#
#   bench/fleet.sh            after `make build`; bench/run.sh calls it too (`make bench`)
#
# The token endpoint is the stand-in (tests/standin/server.py), which counts token requests,
# run twice: answering at once, and after 50 ms (FLEET_DELAY_MS), closer to a real endpoint
# (TLS, a database, a signature). Redis is a private redis-server on a free loopback port.
# The three caches run interleaved, FLEET_ROUNDS times (default 3; the report takes medians),
# because a shared 2-core machine is noisy. Prints "R fleet.d<delay>.<cache>.<what> <value>"
# lines on stdout (bench/report.py reads them), progress on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/bench/work/fleet
LIB=$ROOT/target/release/libcloudauth.so
PROCESSES=${FLEET_PROCESSES:-200}
BATCH=${FLEET_BATCH:-20}
ROUNDS=${FLEET_ROUNDS:-3}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then ROUNDS=1; fi
DELAYS=(0 "${FLEET_DELAY_MS:-50}")

say() { printf 'fleet: %s\n' "$*" >&2; }
die() { printf 'fleet: FAILED: %s\n' "$*" >&2; exit 1; }
[[ -f $LIB ]] || die "$LIB is missing: run 'make build' first"
command -v redis-server >/dev/null || die "redis-server is missing: run 'scripts/ensure-deps.sh bench'"
rm -rf "$WORK" && mkdir -p "$WORK/lib"
ln -sf "$LIB" "$WORK/lib/libcloudauth.so"
ln -sf "$LIB" "$WORK/lib/libcloudauth.so.0"
cc -O2 -Wall -Wextra -Werror -I"$ROOT/include" "$ROOT/bench/fleet.c" -o "$WORK/fleet" \
  -L"$WORK/lib" -Wl,-rpath,"$WORK/lib" -lcloudauth

STANDIN_PID="" REDIS_PID=""
cleanup() {
  [[ -n $STANDIN_PID ]] && kill "$STANDIN_PID" 2>/dev/null && wait "$STANDIN_PID" 2>/dev/null
  [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

python3 "$ROOT/tests/standin/server.py" --port 0 --lifetime 900 --port-file "$WORK/standin.port" \
  >/dev/null &
STANDIN_PID=$!
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS_PID=$!
for _ in $(seq 200); do
  [[ -s $WORK/standin.port ]] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.05
done
[[ -s $WORK/standin.port ]] || die "the stand-in did not start"
BASE=http://127.0.0.1:$(cat "$WORK/standin.port")
control() { # control <call> [json]: a POST to the stand-in's /_control/<call>
  python3 - "$BASE/_control/$1" "${2:-}" <<'PY'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req, timeout=10).read()
PY
}
token_requests() {
  python3 -c 'import json, sys, urllib.request; print(json.load(urllib.request.urlopen(sys.argv[1], timeout=10))["token_requests"])' \
    "$BASE/_control/stats"
}
now_ms() { date +%s%3N; }

run() { # run <delay_ms> <cache>
  local delay=$1 cache=$2 start end pids batch i
  control reset
  control config "{\"token_delay_ms\": $delay}"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  rm -rf "$WORK/cache"
  export FLEET_TOKEN_URL=$BASE/connect/token FLEET_CACHE=$cache
  export FLEET_DIR=$WORK/cache FLEET_REDIS=redis://127.0.0.1:$REDIS_PORT/0
  start=$(now_ms)
  for ((batch = 0; batch < PROCESSES / BATCH; batch++)); do
    pids=()
    for ((i = 0; i < BATCH; i++)); do "$WORK/fleet" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || die "a $cache process failed"; done
  done
  end=$(now_ms)
  local requests
  requests=$(token_requests)
  say "endpoint delay ${delay} ms, $cache: $requests token requests, $((end - start)) ms for $PROCESSES processes"
  echo "R fleet.d$delay.$cache.token_requests $requests"
  echo "R fleet.d$delay.$cache.wall_ms $((end - start))"
}

say "$PROCESSES processes in batches of $BATCH, per cache, $ROUNDS rounds"
echo "R fleet.processes $PROCESSES"
echo "R fleet.batch $BATCH"
echo "R fleet.delay_ms ${DELAYS[1]}"
for delay in "${DELAYS[@]}"; do
  for ((round = 0; round < ROUNDS; round++)); do
    for cache in memory file redis; do run "$delay" "$cache"; done
  done
done
