#!/usr/bin/env bash
# Installs a built cloudauth (after `cargo build --release`) the way a C library is installed:
#
#   PREFIX/lib/libcloudauth.so.X.Y.Z           the shared library, soname libcloudauth.so.X
#   PREFIX/lib/libcloudauth.so.X -> .so.X.Y.Z  what the loader looks for
#   PREFIX/lib/libcloudauth.so   -> .so.X      what the linker (-lcloudauth) looks for
#   PREFIX/lib/libcloudauth.a                  the static library
#   PREFIX/include/cloudauth.h                 the C API
#   PREFIX/include/cloudauth.hpp               the header-only C++17 binding
#   PREFIX/lib/pkgconfig/cloudauth.pc          pkg-config --cflags --libs [--static] cloudauth
#   PREFIX/lib/cmake/cloudauth/                find_package(cloudauth) -> cloudauth::cloudauth
#   PREFIX/bin/cloudauth                       the command-line tool (when it was built)
#
# Usage: packaging/install.sh PREFIX     (make install PREFIX=... calls it)
# DESTDIR, if set, is put in front of every path written (staged installs, e.g. for packages);
# the files themselves refer to PREFIX. The version comes from Cargo.toml.
# Needs: coreutils, sed, binutils (readelf).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/packaging"

if [[ $# -ne 1 || -z $1 ]]; then
  echo "usage: packaging/install.sh PREFIX   (e.g. /usr/local; DESTDIR is honoured)" >&2
  exit 2
fi
prefix=$(realpath -m -- "$1")
dest="${DESTDIR:-}$prefix"

so="$root/target/release/libcloudauth.so"
a="$root/target/release/libcloudauth.a"
h="$root/include/cloudauth.h"
hpp="$root/bindings/cpp/cloudauth.hpp"
tool="$root/target/release/cloudauth"
for f in "$so" "$a" "$h" "$hpp"; do
  [[ -f $f ]] || { echo "install.sh: $f is missing; build first (cargo build --release, or make build)" >&2; exit 1; }
done

version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -1)
if [[ ! $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
  echo "install.sh: cannot read a version X.Y.Z from Cargo.toml (got '$version')" >&2
  exit 1
fi
major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
soname="libcloudauth.so.$major"
real="libcloudauth.so.$version"

# The soname is set at link time (build.rs: -Wl,-soname). Without it, programs would record
# "libcloudauth.so" and break on the first incompatible upgrade: refuse rather than install that.
have=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
patch_soname=0
if [[ $have != "$soname" ]]; then
  if command -v patchelf >/dev/null; then
    echo "install.sh: warning: $so has soname '${have:-none}', not $soname; fixing the installed copy with patchelf" >&2
    patch_soname=1
  else
    echo "install.sh: $so has soname '${have:-none}', expected $soname (build.rs sets it; rebuild)" >&2
    exit 1
  fi
fi

case $(readelf -h "$so" | sed -n 's/^ *Class: *//p') in
  ELF64) sizeof_void_p=8 ;;
  ELF32) sizeof_void_p=4 ;;
  *) echo "install.sh: $so is not an ELF shared library" >&2; exit 1 ;;
esac

# What the static library needs from the system (rustc --print native-static-libs on
# x86_64-linux-gnu; with glibc >= 2.34 most are empty stubs, older ones need them).
libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

fill() { # fill TEMPLATE OUTPUT
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" \
      -e "s|@MINOR@|$minor|g" -e "s|@LIBS_PRIVATE@|$libs_private|g" \
      -e "s|@SIZEOF_VOID_P@|$sizeof_void_p|g" "$1" >"$2.tmp"
  if grep -q '@[A-Z_]*@' "$2.tmp"; then
    echo "install.sh: unfilled placeholder in $2" >&2; rm -f "$2.tmp"; exit 1
  fi
  chmod 0644 "$2.tmp"
  mv -f "$2.tmp" "$2"
}

install -d "$dest/lib" "$dest/include" "$dest/lib/pkgconfig" "$dest/lib/cmake/cloudauth"
# The tool links the library statically (Rust rlib): no rpath or soname to care about. A
# library-only build (cargo build --no-default-features) has none, and installs without it.
if [[ -f $tool ]]; then
  install -d "$dest/bin"
  install -m 0755 "$tool" "$dest/bin/cloudauth"
fi
# install(1) replaces files by unlinking them first, so running programs keep their mapping.
install -m 0755 "$so" "$dest/lib/$real"
if ((patch_soname)); then patchelf --set-soname "$soname" "$dest/lib/$real"; fi
ln -sfn "$real" "$dest/lib/$soname"
ln -sfn "$soname" "$dest/lib/libcloudauth.so"
install -m 0644 "$a" "$dest/lib/libcloudauth.a"
install -m 0644 "$h" "$hpp" "$dest/include/"
fill "$here/cloudauth.pc.in" "$dest/lib/pkgconfig/cloudauth.pc"
fill "$here/cloudauthConfig.cmake.in" "$dest/lib/cmake/cloudauth/cloudauthConfig.cmake"
fill "$here/cloudauthConfigVersion.cmake.in" "$dest/lib/cmake/cloudauth/cloudauthConfigVersion.cmake"

echo "install.sh: cloudauth $version installed into ${DESTDIR:+$DESTDIR}$prefix"
echo "  lib/$real (soname $soname), lib/$soname, lib/libcloudauth.so, lib/libcloudauth.a"
echo "  include/cloudauth.h, include/cloudauth.hpp"
echo "  lib/pkgconfig/cloudauth.pc, lib/cmake/cloudauth/cloudauthConfig{,Version}.cmake"
if [[ -f $tool ]]; then echo "  bin/cloudauth"; fi
if [[ -z ${DESTDIR:-} ]] && ! ldconfig -p 2>/dev/null | grep -q "$prefix/lib/$soname"; then
  echo "  (programs find the library via an rpath, LD_LIBRARY_PATH, or after 'ldconfig' if $prefix/lib is a system library directory)"
fi
