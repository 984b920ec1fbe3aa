#!/usr/bin/env bash
# Installs cloudauth into a temporary prefix with packaging/install.sh and uses it the way a C or
# C++ project would, with LD_LIBRARY_PATH unset:
#
#   1. the installed tree: files, symlinks, soname, pkg-config metadata, CMake version check;
#   2. pkg-config: examples/c/demo.c (cc) and examples/cpp/ocr_demo.cpp (c++) built with
#      `pkg-config --cflags --libs cloudauth` alone (its Libs carry the rpath, so the programs
#      run without LD_LIBRARY_PATH), and demo.c linked to libcloudauth.a with
#      `pkg-config --static --libs` (Libs.private);
#   3. CMake: tests/install/cmake (find_package(cloudauth REQUIRED), cloudauth::cloudauth and
#      cloudauth::cloudauth_static) with CMAKE_PREFIX_PATH=<prefix>; CMake's build-tree RPATH
#      points the binaries at <prefix>/lib;
#   4. bin/cloudauth, the command-line tool: runs from the prefix and gets a token;
#   5. every binary: libcloudauth.so.<major> resolves from <prefix>/lib (ldd) or is not needed
#      at all (static), and the program runs against the stand-in and exits 0.
#
# Needs: cc, c++, pkg-config, cmake (>= 3.13), make, binutils (readelf), python3 (the stand-in).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
unset LD_LIBRARY_PATH
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}

[[ -f target/release/libcloudauth.so ]] ||
  { echo "run_install.sh: target/release/libcloudauth.so is missing; build it first (make build)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml | head -1)
major=${version%%.*}
soname="libcloudauth.so.$major"

passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1" >&2; failed=$((failed + 1)); }
check() { # check DESCRIPTION CMD... : CMD must succeed
  local what=$1; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
check_eq() { # check_eq DESCRIPTION GOT WANT
  if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1: got '$2', expected '$3'"; fi
}
contains() { [[ $1 == *"$2"* ]]; }

echo "== install into $prefix"
packaging/install.sh "$prefix"

echo "== the installed tree"
lib="$prefix/lib"
check "lib/libcloudauth.so.$version is a regular file" test -f "$lib/libcloudauth.so.$version" -a ! -L "$lib/libcloudauth.so.$version"
check_eq "lib/$soname -> libcloudauth.so.$version" "$(readlink "$lib/$soname")" "libcloudauth.so.$version"
check_eq "lib/libcloudauth.so -> $soname" "$(readlink "$lib/libcloudauth.so")" "$soname"
check_eq "soname of the installed library" \
  "$(readelf -d "$lib/libcloudauth.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')" "$soname"
check "lib/libcloudauth.a is an archive with the C API" \
  bash -c "nm -g --defined-only '$lib/libcloudauth.a' 2>/dev/null | grep -q ' T cloudauth_session_request\$'"
check "include/cloudauth.h is the built header" cmp -s include/cloudauth.h "$prefix/include/cloudauth.h"
check "include/cloudauth.hpp is the C++ binding" cmp -s bindings/cpp/cloudauth.hpp "$prefix/include/cloudauth.hpp"
check "lib/cmake/cloudauth has the package files" \
  test -f "$lib/cmake/cloudauth/cloudauthConfig.cmake" -a -f "$lib/cmake/cloudauth/cloudauthConfigVersion.cmake"

export PKG_CONFIG_PATH="$lib/pkgconfig"
check_eq "pkg-config --modversion" "$(pkg-config --modversion cloudauth)" "$version"
check_eq "pkg-config --cflags" "$(pkg-config --cflags cloudauth | xargs)" "-I$prefix/include"
check_eq "pkg-config --libs (with the rpath)" "$(pkg-config --libs cloudauth | xargs)" "-L$lib -Wl,-rpath,$lib -lcloudauth"
static_libs=$(pkg-config --static --libs cloudauth)
check "pkg-config --static --libs adds Libs.private" contains "$static_libs" "-lpthread -lm -ldl"
check_eq "pkg-config libdir" "$(pkg-config --variable=libdir cloudauth)" "$lib"

echo "== pkg-config builds"
bin="$work/bin"
mkdir -p "$bin"
# shellcheck disable=SC2046 # pkg-config output is meant to be split into words
# The README's line, as is: no -Wl,-rpath of our own.
cc -std=c99 -Wall -Wextra -Werror examples/c/demo.c $(pkg-config --cflags --libs cloudauth) -o "$bin/demo_pkgconfig"
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Wextra -Werror examples/cpp/ocr_demo.cpp $(pkg-config --cflags --libs cloudauth) \
  -o "$bin/ocr_demo_pkgconfig"
# Static: the archive in place of -lcloudauth, then Libs.private.
read -ra words <<<"$static_libs"
static_link=()
for w in "${words[@]}"; do
  if [[ $w == -lcloudauth ]]; then static_link+=("$lib/libcloudauth.a"); else static_link+=("$w"); fi
done
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Werror examples/c/demo.c $(pkg-config --cflags cloudauth) "${static_link[@]}" \
  -o "$bin/demo_pkgconfig_static"
ok "built demo_pkgconfig, ocr_demo_pkgconfig, demo_pkgconfig_static"

echo "== CMake builds"
build="$work/cmake-build"
cmake -S tests/install/cmake -B "$build" -DCMAKE_PREFIX_PATH="$prefix" -DCLOUDAUTH_REQUIRED_VERSION="$version" \
  -DCMAKE_BUILD_TYPE=Release >"$work/cmake-configure.log" 2>&1 ||
  { cat "$work/cmake-configure.log" >&2; bad "cmake configure with find_package(cloudauth $version REQUIRED)"; exit 1; }
check "find_package reports version $version" grep -q "cloudauth $version from $lib/cmake/cloudauth" "$work/cmake-configure.log"
cmake --build "$build" >"$work/cmake-build.log" 2>&1 ||
  { cat "$work/cmake-build.log" >&2; bad "cmake --build"; exit 1; }
cp "$build/demo" "$bin/demo_cmake"
cp "$build/ocr_demo" "$bin/ocr_demo_cmake"
cp "$build/demo_static" "$bin/demo_cmake_static"
ok "built demo_cmake, ocr_demo_cmake, demo_cmake_static"
# The version file refuses an incompatible request.
if cmake -S tests/install/cmake -B "$work/cmake-too-new" -DCMAKE_PREFIX_PATH="$prefix" \
     -DCLOUDAUTH_REQUIRED_VERSION="$((major + 1)).0" >"$work/cmake-too-new.log" 2>&1; then
  bad "find_package(cloudauth $((major + 1)).0) should fail against $version"
else
  check "find_package(cloudauth $((major + 1)).0) fails, naming the installed version" \
    grep -q "version: $version" "$work/cmake-too-new.log"
fi
# The package is relocatable: moved as a whole, it finds its files at the new place.
mv "$prefix" "$work/moved"
if cmake -S tests/install/cmake -B "$work/cmake-moved" -DCMAKE_PREFIX_PATH="$work/moved" \
     >"$work/cmake-moved.log" 2>&1; then
  check "a moved prefix configures from its new place" grep -q "from $work/moved/lib/cmake/cloudauth" "$work/cmake-moved.log"
else
  cat "$work/cmake-moved.log" >&2
  bad "a moved prefix configures from its new place"
fi
mv "$work/moved" "$prefix"

echo "== the command-line tool"
tool="$prefix/bin/cloudauth"
check "bin/cloudauth is installed, executable" test -x "$tool" -a -f "$tool"
check_eq "bin/cloudauth --version" "$("$tool" --version)" "cloudauth $version"
check_eq "bin/cloudauth does not need libcloudauth.so (the library is linked in)" \
  "$(readelf -d "$tool" | sed -n 's/.*Shared library: \[\(libcloudauth[^]]*\)\].*/\1/p')" ""
# shellcheck disable=SC2016 # expanded by the inner shell, under the stand-in
if out=$(XDG_CACHE_HOME="$work/cache" CLOUDAUTH_CLIENT_ID=demo-client CLOUDAUTH_CLIENT_SECRET=demo-secret \
         tests/standin/with_server.sh bash -c 'CLOUDAUTH_TOKEN_URL=$STANDIN_URL/connect/token "$0" token' "$tool" 2>&1) &&
   [[ $out =~ ^[A-Za-z0-9_.-]+$ ]]; then
  ok "bin/cloudauth token gets a token from the stand-in"
else
  bad "bin/cloudauth token: $out"
fi

echo "== linkage and runs (LD_LIBRARY_PATH unset)"
for b in demo_pkgconfig ocr_demo_pkgconfig demo_cmake ocr_demo_cmake demo_pkgconfig_static demo_cmake_static; do
  exe="$bin/$b"
  needed=$(readelf -d "$exe" | sed -n 's/.*Shared library: \[\(libcloudauth[^]]*\)\]/\1/p')
  resolved=$(ldd "$exe" | sed -n 's/^[[:space:]]*\(libcloudauth[^ ]*\) => \([^ ]*\).*/\1 => \2/p')
  if [[ $b == *static ]]; then
    check_eq "$b does not need libcloudauth.so" "$needed$resolved" ""
  else
    check_eq "$b needs $soname" "$needed" "$soname"
    check_eq "$b resolves it from the prefix" "$resolved" "$soname => $lib/$soname"
  fi
  if out=$(tests/standin/with_server.sh "$exe" 2>&1); then
    if contains "$out" "recognized text: Hello from the cloudauth stand-in"; then
      ok "$b runs against the stand-in"
    else
      bad "$b exited 0 without the recognized text: $out"
    fi
  else
    bad "$b failed: $out"
  fi
done

echo "run_install.sh: $passed passed, $failed failed"
((failed == 0))
