#!/usr/bin/env bash
# Builds examples/c/demo.c against target/release/libcloudauth.so and runs it against the
# local stand-in (what `make demo` does). Needs: cc, python3, binutils (readelf).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

lib=target/release/libcloudauth.so
[[ -f $lib ]] || { echo "run_demo.sh: $lib is missing; build it first (make build)" >&2; exit 1; }

out=target/examples
mkdir -p "$out/lib"
# The library's soname is libcloudauth.so.<major>, but cargo writes only libcloudauth.so: give the
# loader the soname it will look for, pointing at the fresh build.
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
ln -sfn "$root/$lib" "$out/lib/libcloudauth.so"
[[ -z $soname || $soname == libcloudauth.so ]] || ln -sfn "$root/$lib" "$out/lib/$soname"

${CC:-cc} -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude examples/c/demo.c \
  -L"$out/lib" -lcloudauth -Wl,-rpath,"$root/$out/lib" -o "$out/demo"

exec tests/standin/with_server.sh "$out/demo"
