#!/usr/bin/env bash
# Installs the system packages the tests need when missing; with "demo" only what `make demo`
# needs, with "bench" also what the benchmarks need.
# Idempotent and quiet when everything is there; runs apt-get update only if it must install.
set -euo pipefail

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
want /usr/lib/mono/4.5/System.Net.Http.dll libmono-system-net-http4.0-cil
want openssl openssl
want redis-server redis-server
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
fi
if [[ ${1:-} == bench ]]; then
  want /usr/sbin/nginx nginx-light
  want /usr/include/x86_64-linux-gnu/curl/curl.h libcurl4-openssl-dev
  want taskset util-linux
  want strip binutils
fi

if ((${#need[@]})); then
  echo "ensure-deps: installing ${need[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
