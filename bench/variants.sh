#!/usr/bin/env bash
# What each transport change bought: builds the library as it was at several revisions of this
# repository (sources from `git archive`, one shared target dir under bench/work/variants) and
# runs the same C benchmarks against each, with the same nginx, in one script run:
# sequential GETs vs libcurl, concurrent GETs at 1/2/4/8 threads, the first request from a new
# thread, and the cold start. Prints one table (bench/variants.md keeps the last one).
#
#   bench/variants.sh                  the revisions listed below
#   bench/variants.sh REV=LABEL ...    others
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
WORK=$BENCH/work/variants
LIB=$ROOT/target/release/libcloudauth.so
export BENCH_QUICK=0
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

variants=("$@")
if ((${#variants[@]} == 0)); then
  variants=(
    "710950f=reqwest::blocking (a runtime thread per client)"
    "1bc0367=async reqwest, block_on on the caller's thread"
    "cff445b=+ TLS roots loaded once, one rustls config per session"
    "3d1dbb9=+ closed-connection check only after 100 ms idle (dropped)"
  )
fi

check_prerequisites
mkdir -p "$WORK"
for v in "${variants[@]}"; do
  rev=${v%%=*}
  dir=$WORK/src-$rev
  if [[ ! -f $WORK/lib-$rev/libcloudauth.so ]]; then
    say "building $rev (${v#*=})"
    rm -rf "$dir" && mkdir -p "$dir"
    git -C "$ROOT" archive "$rev" | tar -x -C "$dir"
    CARGO_TARGET_DIR=$WORK/target cargo build --release --quiet --manifest-path "$dir/Cargo.toml"
    mkdir -p "$WORK/lib-$rev"
    cp "$WORK/target/release/libcloudauth.so" "$WORK/lib-$rev/libcloudauth.so"
    ln -sf libcloudauth.so "$WORK/lib-$rev/libcloudauth.so.0"
  fi
done

build_bench
trap stop_nginx EXIT
start_nginx
out=$WORK/results.txt
: >"$out"
# Interleaved: every variant once per pass, three passes.
for pass in 1 2 3; do
  for v in "${variants[@]}"; do
    rev=${v%%=*}
    say "pass $pass: $rev"
    for mode in seq threads newthread; do
      pin=()
      [[ $mode == seq ]] && pin=(taskset -c 0)
      LD_LIBRARY_PATH=$WORK/lib-$rev "${pin[@]}" "$WORK/bench" "$mode" 2>/dev/null | sed "s/^R /R $rev /" >>"$out"
    done
    "$WORK/cold" "$WORK/lib-$rev/libcloudauth.so" | sed "s/^R /R $rev /" >>"$out"
  done
done
check_nginx_log

python3 - "$out" "${variants[@]}" <<'PY'
import statistics, sys
path, variants = sys.argv[1], sys.argv[2:]
vals = {}
for line in open(path):
    parts = line.split()
    if len(parts) == 4 and parts[0] == "R":
        try:
            vals.setdefault((parts[1], parts[2]), []).append(float(parts[3]))
        except ValueError:
            pass
def med(rev, key):
    v = vals.get((rev, key))
    return statistics.median(v) if v else float("nan")
cols = [("seq.ratio", "seq GETs vs libcurl", "{:.2f}x"), ("seq.cloudauth.per_s", "seq req/s", "{:,.0f}"),
        ("threads.1.ratio", "1 thr", "{:.2f}x"), ("threads.2.ratio", "2 thr", "{:.2f}x"),
        ("threads.4.ratio", "4 thr", "{:.2f}x"), ("threads.8.ratio", "8 thr", "{:.2f}x"),
        ("newthread.first_ms", "new thread 1st req", "{:.2f} ms"), ("cold.total_ms", "cold start", "{:.2f} ms")]
print("| variant | " + " | ".join(c[1] for c in cols) + " |")
print("|---|" + "---|" * len(cols))
for v in variants:
    rev, label = v.split("=", 1)
    print(f"| {label} (`{rev}`) | " + " | ".join(fmt.format(med(rev, key)) for key, _, fmt in cols) + " |")
PY
