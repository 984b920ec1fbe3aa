#!/usr/bin/env bash
# Instructions per sequential authorized GET (bench.c's loop-get on one thread), counted by
# callgrind with N and 2N requests differenced, for this tree's library and another build
# (say, main's), against the bench's private nginx.
#   bench/callgrind_get.sh OTHER_LIB [N]    e.g. bench/callgrind_get.sh /work/main/target/release/libcloudauth.so
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work
LIB=$ROOT/target/release/libcloudauth.so
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
(($# >= 1)) || die "usage: bench/callgrind_get.sh OTHER_LIB [N]"
OTHER=$(realpath "$1")
N=${2:-2000}
check_prerequisites
build_bench
trap stop_nginx EXIT
start_nginx
OTHER_DIR=$WORK/callgrind-get-lib
mkdir -p "$OTHER_DIR"
ln -sf "$OTHER" "$OTHER_DIR/libcloudauth.so.0"
total() { awk '/Collected :/ {print $NF}' "$1" | tail -1; }
for which in this other; do
  for k in 1 2; do
    env=()
    [[ $which == other ]] && env=(LD_LIBRARY_PATH=$OTHER_DIR)
    env "${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-get.$which.$k.out" \
      "$WORK/bench" loop-get 1 $((k * N)) >/dev/null 2>"$WORK/cg-get.$which.$k.log"
  done
  a=$(total "$WORK/cg-get.$which.1.log")
  b=$(total "$WORK/cg-get.$which.2.log")
  echo "R callgrind.get.$which.ir_per_call $(((b - a) / N))"
done
