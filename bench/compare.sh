#!/usr/bin/env bash
# Before/after: runs bench.c modes alternately with this tree's library and another build of
# it (say, main's, built with CARGO_TARGET_DIR=/tmp/base), against one private nginx, and
# prints each figure's median per library over the runs.
#
#   bench/compare.sh OTHER_LIB REPS MODE...     e.g. bench/compare.sh /tmp/base/release/libcloudauth.so 5 threads seq
#
# MODE is a bench.c mode (token seq threads rss newthread async ...) or "cold" (bench/work/cold,
# five processes a run). seq runs on CPU 0 with nginx's worker, as in run.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
LIB=$ROOT/target/release/libcloudauth.so
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
(($# >= 3)) || die "usage: bench/compare.sh OTHER_LIB REPS MODE..."
OTHER=$(realpath "$1")
REPS=$2
shift 2
[[ -f $OTHER ]] || die "$OTHER is missing"
check_prerequisites
build_bench
# The bench binary finds the library through its soname; LD_LIBRARY_PATH points it at OTHER.
OTHER_DIR=$WORK/compare-lib
mkdir -p "$OTHER_DIR"
ln -sf "$OTHER" "$OTHER_DIR/libcloudauth.so.0"
OUT=$WORK/compare.txt
: >"$OUT"
trap stop_nginx EXIT
trap 'exit 130' INT TERM
start_nginx

for rep in $(seq "$REPS"); do
  for mode in "$@"; do
    for which in this other; do
      say "-- run $rep: $mode with $which"
      lib=$LIB env=()
      if [[ $which == other ]]; then lib=$OTHER env=(LD_LIBRARY_PATH="$OTHER_DIR"); fi
      if [[ $mode == cold ]]; then
        for _ in 1 2 3 4 5; do "$WORK/cold" "$lib"; done
      elif [[ $mode == seq ]]; then
        env "${env[@]}" taskset -c 0 "$WORK/bench" seq
      else
        env "${env[@]}" "$WORK/bench" "$mode"
      fi 2>/dev/null | grep '^R ' | grep -v '\.rounds ' | sed "s/^R /$which /" >>"$OUT"
    done
  done
done
check_nginx_log

python3 - "$OUT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    which, key, value = line.split()[:3]
    try:
        runs[key, which].append(float(value))
    except ValueError:
        pass
keys = sorted({k for k, _ in runs})
print(f"{'figure':40s} {'this tree':>12s} {'other':>12s}   (medians over runs; every run: {sys.argv[1]})")
for k in keys:
    a, b = runs.get((k, "this"), []), runs.get((k, "other"), [])
    med = lambda v: f"{statistics.median(v):12.4g}" if v else f"{'-':>12s}"
    print(f"{k:40s} {med(a)} {med(b)}")
PY
