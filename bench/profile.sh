#!/usr/bin/env bash
# Where the time goes: perf profiles of cloudauth's hot paths against the bench's private nginx.
#
#   bench/profile.sh    (after `make build`; needs perf: linux-perf)
#
# Records, with call graphs, (1) cached-token reads on one thread and on two threads sharing a
# session, (2) sequential authorized GETs with cloudauth and, for comparison, with libcurl.
# Writes the top symbols of each to bench/work/profile/*.txt and prints their heads.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
LIB=$ROOT/target/release/libcloudauth.so
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"

check_prerequisites
build_bench
trap stop_nginx EXIT
trap 'exit 130' INT TERM
start_nginx
OUT=$WORK/profile
rm -rf "$OUT" && mkdir -p "$OUT"

report() { # report <data> <perf report options...>: one line per row, long names cut
  local data=$1
  shift
  perf report -i "$data" --stdio -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' |
    sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-150 || true
}

profile() { # profile <name> <command...>
  local name=$1
  shift
  say "-- perf: $name ($*)"
  perf record -q -F 2999 -g -o "$OUT/$name.data" "$@" 2>&1 >/dev/null |
    grep -v '^\[ perf record' >&2 || true
  {
    echo "== time by binary (self)"
    report "$OUT/$name.data" --no-children --sort dso --percent-limit 1
    echo "== top symbols (self)"
    report "$OUT/$name.data" --no-children --sort dso,symbol --percent-limit 0.7
    echo "== top symbols (with callees)"
    report "$OUT/$name.data" --children --sort symbol --percent-limit 4
  } >"$OUT/$name.txt"
  awk '/== top symbols \(with/ { exit } NR <= 30' "$OUT/$name.txt" >&2
}

# As in run.sh, the sequential GETs run on CPU 0 with nginx's worker.
profile token-1thread "$WORK/bench" loop-token 1 20000000
profile token-2threads "$WORK/bench" loop-token 2 10000000
profile get-cloudauth taskset -c 0 "$WORK/bench" loop-get 40000
profile get-curl taskset -c 0 "$WORK/bench" loop-curl 40000
check_nginx_log
say "profiles in $OUT (perf report -i $OUT/<name>.data for the call graphs)"
