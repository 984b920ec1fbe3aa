#!/usr/bin/env bash
# Builds the C++ binding's tests (bindings/cpp/tests/test_cpp.cpp) and the C++ example
# (examples/cpp/ocr_demo.cpp) against target/release/libcloudauth.so, into target/cpptests/, and
# runs both against the local stand-in.
#
#   tests/run/cpp.sh [FILTER...]             every test, or those whose name contains a FILTER
#   tests/run/cpp.sh --valgrind [FILTER...]  the same under valgrind memcheck: fails unless it
#                                            reports 0 errors and no definitely lost bytes
#   tests/run/cpp.sh --sanitize [FILTER...]  the same built with -fsanitize=address,undefined
#                                            (tests/run/lib.sh says how): fails on any report
#
# Needs: g++ (C++17), python3 (the stand-in), valgrind for --valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library
[[ -f include/cloudauth.h ]] || { echo "run_cpp.sh: include/cloudauth.h is missing" >&2; exit 1; }

valgrind=0 sanitize=()
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi
# gcc's instrumentation makes -Wmaybe-uninitialized misfire inside std::variant (the plain
# and valgrind builds keep the warning as an error).
if [[ ${1:-} == --sanitize ]]; then
  sanitize=("${SANITIZE_FLAGS[@]}" -Wno-maybe-uninitialized); sanitize_env; shift
fi

out=target/cpptests${sanitize:+-sanitize}
mkdir -p "$out"
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
cxx=(${CXX:-g++} -std=c++17 -Wall -Wextra -Werror -pthread -g -O1 "${sanitize[@]}" -Iinclude -Ibindings/cpp)
echo "run_cpp.sh: building $out/test_cpp and $out/ocr_demo"
"${cxx[@]}" -Wpedantic -Wshadow -Wconversion -DCLOUDAUTH_EXPECTED_VERSION="\"$version\"" \
  bindings/cpp/tests/test_cpp.cpp "${LINK[@]}" -o "$out/test_cpp"
"${cxx[@]}" -Wpedantic -Wshadow -Wconversion examples/cpp/ocr_demo.cpp "${LINK[@]}" -o "$out/ocr_demo"

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

logs=$out/valgrind
rm -rf "$logs"
mkdir -p "$logs"
failed=0
for prog in "${programs[@]}"; do
  name=$(basename "$prog")
  args=()
  [[ $name == test_cpp ]] && args=("$@")
  echo "run_cpp.sh: $name under valgrind"
  valgrind_run "$name" "$logs/$name.log" "$prog" "${args[@]}" || failed=1
done
((failed == 0)) || exit 1
echo "run_cpp.sh: valgrind clean"
