#!/usr/bin/env bash
# The headers say plainly what language level they need: cloudauth.h stops under C89 with an
# #error naming C99, cloudauth.hpp under C++14 with one naming C++17 (the first error a user
# sees), and both compile cleanly at the levels they support.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "cloudauth.h"\nint main(void) { return cloudauth_version()[0] == 0; }\n' >"$tmp/c.c"
printf '#include "cloudauth.hpp"\nint main() { return cloudauth::version().empty(); }\n' >"$tmp/cpp.cpp"
failed=0
refused() { # refused WANT COMPILER ARGS...: must fail, its first error containing WANT
  local want=$1 first
  shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "check_std: '$*' compiled; it should stop with an #error" >&2; failed=1; return
  fi
  first=$(grep -m1 'error' "$tmp/out" || true)
  if [[ $first != *"$want"* ]]; then
    echo "check_std: '$*': first error is not the plain message '$want': $first" >&2; failed=1; return
  fi
  echo "check_std: -std=$std stops with: $want"
}
for std in c89 c90 gnu89; do
  refused "cloudauth.h needs C99 or newer" ${CC:-cc} -std=$std -Iinclude -c "$tmp/c.c" -o "$tmp/c.o"
done
for std in c99 c11 c17; do
  ${CC:-cc} -std=$std -Wall -Wextra -Wpedantic -Werror -Iinclude -c "$tmp/c.c" -o "$tmp/c.o" || failed=1
done
for std in c++11 c++14; do
  refused "cloudauth.hpp needs C++17 or newer" ${CXX:-c++} -std=$std -Iinclude -Ibindings/cpp -c "$tmp/cpp.cpp" -o "$tmp/cpp.o"
done
for std in c++17 c++20; do
  ${CXX:-c++} -std=$std -Wall -Wextra -Wpedantic -Werror -Iinclude -Ibindings/cpp -c "$tmp/cpp.cpp" -o "$tmp/cpp.o" || failed=1
done
((failed == 0)) && echo "check_std: C99+ and C++17+ compile; older levels stop with a plain #error"
exit "$failed"
