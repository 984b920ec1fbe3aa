#!/usr/bin/env bash
# Installs the system packages the tests need when missing; with "demo" only what `make demo`
# needs, with "bench" also what the benchmarks need.
# Idempotent and quiet when everything is there; runs apt-get update only if it must install.
set -euo pipefail

# Rust is not an apt package here (Debian's is too old): say what is needed instead of failing
# later with "cargo: command not found". The minimum is Cargo.toml's rust-version.
check_rust() {
  local min have
  min=$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' "$(dirname "$0")/../Cargo.toml" | head -1)
  if ! command -v cargo >/dev/null 2>&1; then
    echo "ensure-deps: cloudauth needs a Rust toolchain, Rust $min or newer: cargo and rustc, plus" >&2
    echo "  rustfmt and clippy for the lint step of make test. Install it with rustup, then" >&2
    echo "  'rustup component add rustfmt clippy'." >&2
    if [[ -x $HOME/.cargo/bin/cargo ]]; then
      echo "  ($HOME/.cargo/bin/cargo exists but is not on PATH: run 'source \$HOME/.cargo/env')" >&2
    fi
    exit 1
  fi
  have=$(rustc --version 2>/dev/null | sed -n 's/^rustc \([0-9]*\.[0-9]*\).*/\1/p')
  if [[ -n $have && -n $min ]] && [[ $(printf '%s\n%s\n' "$min" "$have" | sort -V | head -1) != "$min" ]]; then
    echo "ensure-deps: Rust $have is too old; cloudauth needs Rust $min or newer (rustup update)" >&2
    exit 1
  fi
  if [[ ${1:-} != demo ]] && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
    echo "ensure-deps: make test needs rustfmt and clippy: rustup component add rustfmt clippy" >&2
    exit 1
  fi
}
check_rust "${1:-}"

need=()
want() { # want <command-or-path> <package>
  if [[ $1 == /* ]]; then [[ -e $1 ]] || need+=("$2"); else command -v "$1" >/dev/null 2>&1 || need+=("$2"); fi
}
want cc gcc
want make make
want python3 python3
if [[ ${1:-} != demo ]]; then
want c++ g++
want valgrind valgrind
want pkg-config pkg-config
want cmake cmake
want mcs mono-mcs
want mono mono-runtime
want nuget nuget
want /usr/lib/mono/4.5/System.Net.Http.dll libmono-system-net-http4.0-cil
want openssl openssl
want redis-server redis-server
want curl curl
want node nodejs   # tests/run/oidc.sh: oidc-provider needs Node.js 20.19 or newer
want npm npm
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
want /usr/sbin/nginx nginx-light   # tests/run/node.sh: a Bearer-checking nginx
# tests/netfault (network namespaces, veth, tc) and its libcurl baseline client.
want ip iproute2
want tc iproute2
want /usr/include/x86_64-linux-gnu/curl/curl.h libcurl4-openssl-dev
# tests/run/java.sh: a JDK 11+, Maven (which fetches the Java dependencies into ~/.m2) and nginx.
want javac default-jdk-headless
want mvn maven
want /usr/sbin/nginx nginx-light
fi
if [[ ${1:-} == bench ]]; then
  want /usr/sbin/nginx nginx-light
  want /usr/include/x86_64-linux-gnu/curl/curl.h libcurl4-openssl-dev
  want taskset util-linux
  want strip binutils
  want hyperfine hyperfine
fi

if ((${#need[@]})); then
  echo "ensure-deps: installing ${need[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
