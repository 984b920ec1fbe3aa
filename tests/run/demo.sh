#!/usr/bin/env bash
# Builds examples/c/demo.c against target/release/libcloudauth.so and runs it against the
# local stand-in (what `make demo` does). Needs: cc, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/run/lib.sh
require_library

out=target/examples
mkdir -p "$out"
${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/demo.c "${LINK[@]}" -o "$out/demo"
exec tests/standin/with_server.sh "$out/demo"
