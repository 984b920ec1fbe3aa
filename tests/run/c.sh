#!/usr/bin/env bash
# Builds the C tests (tests/c/) against target/release/libcloudauth.so and runs them against
# the local stand-in.
#
#   tests/run/c.sh [FILTER...]             every test, or those whose name contains a FILTER
#   tests/run/c.sh --valgrind [FILTER...]  the same under valgrind memcheck: fails unless it
#                                          reports 0 errors and no definitely lost bytes
#   tests/run/c.sh --sanitize [FILTER...]  the same built with -fsanitize=address,undefined
#                                          (tests/run/lib.sh says how): fails on any report
#
# Needs: a C compiler (cc), python3 (the stand-in), valgrind for --valgrind.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library

valgrind=0 sanitize=()
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi
if [[ ${1:-} == --sanitize ]]; then sanitize=("${SANITIZE_FLAGS[@]}"); sanitize_env; shift; fi

out=target/ctests${sanitize:+-sanitize}
mkdir -p "$out"
${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -pthread -g -O1 "${sanitize[@]}" -Iinclude \
  tests/c/*.c "${LINK[@]}" -o "$out/cloudauth_ctests"

if ((!valgrind)); then
  exec tests/standin/with_server.sh "$out/cloudauth_ctests" "$@"
fi
valgrind_run cloudauth_ctests "$out/valgrind.log" "$out/cloudauth_ctests" "$@"
echo "run_c.sh: valgrind clean"
