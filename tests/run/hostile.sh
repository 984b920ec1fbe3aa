#!/usr/bin/env bash
# The hostile suite: tests/hostile/hostile.c against tests/hostile/server.py (two origins on
# 127.0.0.1, ephemeral ports, a bounded lifetime), every case checked for its result code, its
# time bound and a clean one-line message.
#
#   tests/run/hostile.sh [FILTER]             every case, or those whose group/name holds FILTER
#   tests/run/hostile.sh --valgrind [FILTER]  the same under valgrind memcheck: fails unless it
#                                             reports 0 errors and no definitely lost bytes
#   tests/run/hostile.sh --sanitize [FILTER]  the same built with -fsanitize=address,undefined
#                                             (tests/run/lib.sh says how): fails on any report
#
# Needs: a C compiler (cc), python3, valgrind for --valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library

valgrind=0 sanitize=()
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi
if [[ ${1:-} == --sanitize ]]; then sanitize=("${SANITIZE_FLAGS[@]}"); sanitize_env; shift; fi

out=target/hostile${sanitize:+-sanitize}
mkdir -p "$out"
${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -pthread -g -O1 "${sanitize[@]}" -Iinclude \
  tests/hostile/hostile.c "${LINK[@]}" -o "$out/hostile"

dir=$(mktemp -d)
python3 tests/hostile/server.py --lifetime "${HOSTILE_LIFETIME:-900}" --port-file "$dir/ports" >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do # bounded: about 10 s
  [[ -s $dir/ports ]] && break
  kill -0 $server 2>/dev/null || { echo "run_hostile: the server exited early" >&2; exit 1; }
  sleep 0.1
done
read -r _ main other <"$dir/ports"
export HOSTILE_PORTS="$main $other"

if ((!valgrind)); then
  "$out/hostile" "$@"
  exit
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
export CLOUDAUTH_TEST_TIME_FACTOR=${CLOUDAUTH_TEST_TIME_FACTOR:-10} HOSTILE_VALGRIND=1
log=$out/valgrind.log
set +e
# Fork children leave with _exit and report by exit status; their own leaks are not the
# parent's (--child-silent-after-fork).
valgrind --suppressions=tests/valgrind/threads-after-fork.supp --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 \
  --child-silent-after-fork=${HOSTILE_CHILD_SILENT:-yes} --num-callers=30 --log-file="$log" "$out/hostile" "$@"
rc=$?
set -e
summary=$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^==[0-9]*== //')
leaks=$(grep -E 'definitely lost|no leaks are possible' "$log" | tail -1 | sed 's/^==[0-9]*== *//')
echo "valgrind hostile: $summary"
echo "valgrind hostile: ${leaks:-no leak summary}  (full log: $log)"
if ((rc != 0)) || ! grep -q 'ERROR SUMMARY: 0 errors' <<<"$summary" ||
   ! grep -Eq 'definitely lost: 0 bytes|no leaks are possible' <<<"$leaks"; then
  if ((rc == 99)); then echo "run_hostile: valgrind found errors" >&2
  else echo "run_hostile: cases failed under valgrind (exit $rc)" >&2; fi
  grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" | head -150 >&2 || true
  exit 1
fi
echo "run_hostile.sh: valgrind clean"
