#!/usr/bin/env bash
# Builds the C++ binding's tests (bindings/cpp/tests/test_cpp.cpp) and the C++ example
# (examples/cpp/ocr_demo.cpp) against target/release/libcloudauth.so, into target/cpptests/, and
# runs both against the local stand-in.
#
#   tests/run_cpp.sh [FILTER...]             every test, or those whose name contains a FILTER
#   tests/run_cpp.sh --valgrind [FILTER...]  the same under valgrind memcheck: fails unless it
#                                            reports 0 errors and no definitely lost bytes
#
# Needs: g++ (C++17), python3 (the stand-in), binutils (readelf), valgrind for --valgrind.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

valgrind=0
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi

lib=target/release/libcloudauth.so
[[ -f $lib ]] || { echo "run_cpp.sh: $lib is missing; build it first (make build)" >&2; exit 1; }
[[ -f include/cloudauth.h ]] || { echo "run_cpp.sh: include/cloudauth.h is missing" >&2; exit 1; }

out=target/cpptests
mkdir -p "$out/lib"
# cargo writes only libcloudauth.so, but the library's soname is libcloudauth.so.<major>: give
# the loader the name it will look for, next to the binaries, pointing at the fresh build.
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
ln -sfn "$root/$lib" "$out/lib/libcloudauth.so"
[[ -z $soname || $soname == libcloudauth.so ]] || ln -sfn "$root/$lib" "$out/lib/$soname"

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
cxx=(${CXX:-g++} -std=c++17 -Wall -Wextra -Werror -pthread -g -O1 -Iinclude -Ibindings/cpp)
link=(-L"$out/lib" -lcloudauth -Wl,-rpath,"$root/$out/lib")
echo "run_cpp.sh: building $out/test_cpp and $out/ocr_demo"
"${cxx[@]}" -Wpedantic -Wshadow -Wconversion -DCLOUDAUTH_EXPECTED_VERSION="\"$version\"" \
  bindings/cpp/tests/test_cpp.cpp "${link[@]}" -o "$out/test_cpp"
"${cxx[@]}" -Wpedantic -Wshadow -Wconversion examples/cpp/ocr_demo.cpp "${link[@]}" -o "$out/ocr_demo"

# Each program under its own stand-in: the tests, then (unless filtered) the example.
programs=("$out/test_cpp")
(($# > 0)) || programs+=("$out/ocr_demo")

if ((!valgrind)); then
  tests/standin/with_server.sh "$out/test_cpp" "$@"
  if (($# == 0)); then
    echo "run_cpp.sh: examples/cpp/ocr_demo.cpp"
    tests/standin/with_server.sh "$out/ocr_demo"
  fi
  exit 0
fi

command -v valgrind >/dev/null || { echo "run_cpp.sh: valgrind is not installed" >&2; exit 1; }
# Everything is ~20-50x slower under valgrind: stretch the timing tests' timeouts and delays
# (their assertions stay the same).
export CLOUDAUTH_TEST_TIME_FACTOR=${CLOUDAUTH_TEST_TIME_FACTOR:-10}
logs=$out/valgrind
rm -rf "$logs"
mkdir -p "$logs"
supp=()
[[ -f bindings/cpp/tests/valgrind.supp ]] && supp=(--suppressions=bindings/cpp/tests/valgrind.supp)
vg=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
    --track-origins=yes --num-callers=30 "${supp[@]}")

failed=0
for prog in "${programs[@]}"; do
  name=$(basename "$prog")
  log="$logs/$name.log"
  args=()
  [[ $name == test_cpp ]] && args=("$@")
  echo "run_cpp.sh: $name under valgrind"
  set +e
  tests/standin/with_server.sh "${vg[@]}" --log-file="$log" "$prog" "${args[@]}"
  rc=$?
  set -e
  summary=$(grep -E 'ERROR SUMMARY' "$log" | tail -1 | sed 's/^==[0-9]*== //')
  leaks=$(grep -E 'definitely lost|no leaks are possible' "$log" | tail -1 | sed 's/^==[0-9]*== *//')
  echo "valgrind $name: $summary"
  echo "valgrind $name: ${leaks:-no leak summary}  (full log: $log)"
  if ((rc != 0)); then
    echo "run_cpp.sh: $name under valgrind exited with $rc (99 = valgrind found errors)" >&2
    failed=1
  fi
  if ! grep -q 'ERROR SUMMARY: 0 errors' <<<"$summary" ||
     ! grep -Eq 'definitely lost: 0 bytes|no leaks are possible' <<<"$leaks"; then
    echo "run_cpp.sh: valgrind reported errors or definitely lost memory in $name" >&2
    grep -E -A25 '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" | head -150 >&2 || true
    failed=1
  fi
done
((failed == 0)) || exit 1
echo "run_cpp.sh: valgrind clean"
