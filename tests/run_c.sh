#!/usr/bin/env bash
# Builds the C tests (tests/c/) against target/release/libcloudauth.so and runs them against
# the local stand-in.
#
#   tests/run_c.sh [FILTER...]             every test, or those whose name contains a FILTER
#   tests/run_c.sh --valgrind [FILTER...]  the same under valgrind memcheck: fails unless it
#                                          reports 0 errors and no definitely lost bytes
#
# Needs: a C compiler (cc), python3 (the stand-in), valgrind for --valgrind, binutils (readelf).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

valgrind=0
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi

lib=target/release/libcloudauth.so
[[ -f $lib ]] || { echo "run_c.sh: $lib is missing; build it first (make build)" >&2; exit 1; }

out=target/ctests
mkdir -p "$out/lib"
# The library's soname is libcloudauth.so.<major>, but cargo writes only libcloudauth.so: give the
# loader the soname it will look for, next to the test binary, pointing at the fresh build.
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
ln -sfn "$root/$lib" "$out/lib/libcloudauth.so"
[[ -z $soname || $soname == libcloudauth.so ]] || ln -sfn "$root/$lib" "$out/lib/$soname"

${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -pthread -g -O1 -Iinclude \
  tests/c/*.c -L"$out/lib" -lcloudauth -Wl,-rpath,"$root/$out/lib" -o "$out/cloudauth_ctests"

if ((!valgrind)); then
  exec tests/standin/with_server.sh "$out/cloudauth_ctests" "$@"
fi

command -v valgrind >/dev/null || { echo "run_c.sh: valgrind is not installed" >&2; exit 1; }
# Everything is ~20-50x slower under valgrind: stretch the timing tests' timeouts and delays
# (their assertions stay the same).
export CLOUDAUTH_TEST_TIME_FACTOR=${CLOUDAUTH_TEST_TIME_FACTOR:-10}
log="$out/valgrind.log"
supp=()
[[ -f tests/c/valgrind.supp ]] && supp=(--suppressions=tests/c/valgrind.supp)
set +e
tests/standin/with_server.sh valgrind --leak-check=full --errors-for-leak-kinds=definite \
  --error-exitcode=99 --track-origins=yes --num-callers=30 "${supp[@]}" --log-file="$log" \
  "$out/cloudauth_ctests" "$@"
rc=$?
set -e

summary=$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^==[0-9]*== //')
echo "valgrind: $summary  (full log: $log)"
grep -E 'definitely lost|no leaks are possible' "$log" | tail -1 | sed 's/^==[0-9]*== */valgrind: /'
if ((rc != 0)); then
  echo "run_c.sh: the tests under valgrind exited with $rc (99 = valgrind found errors)" >&2
  grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" | head -150 >&2 || true
  exit 1
fi
if ! grep -q 'ERROR SUMMARY: 0 errors' <<<"$summary"; then
  echo "run_c.sh: valgrind reported errors" >&2; exit 1
fi
if ! grep -Eq 'definitely lost: 0 bytes|no leaks are possible' "$log"; then
  echo "run_c.sh: valgrind found definitely lost memory" >&2; exit 1
fi
echo "run_c.sh: valgrind clean"
