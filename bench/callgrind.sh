#!/usr/bin/env bash
# Instructions per cached `cloudauth_session_token` call and per C-floor call (bench.c's
# floor_token), and per sequential authorized GET (cloudauth_session_request vs libcurl with a
# reused easy handle, client side only: nginx is another process), counted by callgrind:
# machine noise does not move them. Each loop runs N and 2N calls (after bench.c's warm-up);
# the difference divided by N cancels the setup (session, first fetch, connect, process
# start). Needs nginx running (run.sh's, or profile.sh's way).
#   bench/callgrind.sh   prints "R callgrind.* <value>" lines; writes the per-function
#                        breakdown of the 2N runs to bench/work/callgrind/<which>.txt
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/bench/work
OUT=$WORK/callgrind
N=${CALLGRIND_N:-100000}
# A GET costs ~100x a cached token: fewer of them.
GET_N=${CALLGRIND_GET_N:-$((N / 20))}
# Async GETs too: the caller-driven queue and curl multi, at 8, 64 and 256 in flight.
# CALLGRIND_WHICH="get curl" measures only those.
# get.4 / curl.4: 4 client threads (callgrind runs them one at a time; instructions still add up).
# raw: the raw-socket C floor's GET; dpop: a GET with a DPoP proof.
read -ra WHICH <<<"${CALLGRIND_WHICH:-token floor get curl raw dpop get.4 curl.4 driven.8 multi.8 driven.64 multi.64 driven.256 multi.256}"
mkdir -p "$OUT"
total() { # total <logfile>: the run's instruction count, from valgrind's summary
  awk '/Collected :/ {print $NF}' "$1" | tail -1
}
# calls <which>: the calls of a 1N run (per thread for get.T / curl.T); per <which>: how many
# requests those are in all
calls() {
  case $1 in
    token | floor) echo "$N" ;;
    get.* | curl.*) echo $((GET_N / ${1#*.})) ;;
    *) echo "$GET_N" ;;
  esac
}
per() { case $1 in get.* | curl.*) echo $(($(calls "$1") * ${1#*.})) ;; *) calls "$1" ;; esac; }
mode() { # the bench.c mode and its first argument (threads, or requests in flight)
  case $1 in
    driven.* | multi.* | get.* | curl.*) echo "loop-${1%%.*} ${1#*.}" ;;
    *) echo "loop-$1 1" ;;
  esac
}
for which in "${WHICH[@]}"; do
  n=$(calls "$which")
  for k in 1 2; do
    f=$OUT/$which.$k.out
    # shellcheck disable=SC2046 # mode's two words
    valgrind --tool=callgrind --callgrind-out-file="$f" "$WORK/bench" $(mode "$which") $((k * n)) \
      >/dev/null 2>"$OUT/$which.$k.log" || { cat "$OUT/$which.$k.log" >&2; exit 1; }
  done
  a=$(total "$OUT/$which.1.log")
  b=$(total "$OUT/$which.2.log")
  echo "R callgrind.$which.ir_per_call $(((b - a) / $(per "$which")))"
  # Self cost per function of the 2N run (setup included: compare with the 1N run).
  callgrind_annotate "$OUT/$which.2.out" >"$OUT/$which.txt" 2>/dev/null
done
# Per function: instructions per call (2N run minus 1N run, over N), for results.md.
for which in "${WHICH[@]}"; do
  python3 - "$OUT/$which.1.out" "$OUT/$which.2.out" "$(per "$which")" >"$OUT/$which.per_call.txt" <<'PY'
import re, subprocess, sys
def costs(path):
    out = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r"\s*\[.*\]$", "", m.group(2)).split(":", 1)[-1]
            d[name] = d.get(name, 0) + int(m.group(1).replace(",", ""))
    return d
a, b, n = costs(sys.argv[1]), costs(sys.argv[2]), int(sys.argv[3])
rows = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in b)
for per, k in reversed(rows):
    if per >= 0.5:
        print(f"{per:6.1f}  {k[:110]}")
PY
done
