#!/usr/bin/env bash
# The real-provider suite: oidc-provider (npm, pinned in tests/oidc/package-lock.json, installed
# with `npm ci` into tests/oidc/node_modules) and the tests' own resource server, driven by
# pytest through the Python binding (tests/oidc/test_oidc_provider.py; the CLI smoke is one of
# its tests). Key material is made by openssl into pytest's temp dir; the servers listen on
# ephemeral 127.0.0.1 ports and stop by themselves. Extra arguments go to pytest (-k dpop).
#
# Needs: node >= 20.19 and npm, openssl, python3 with venv, the release build (make build).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
oidc=$root/tests/oidc
unset PYTHONPATH

need_node=20.19
have_node=$(node --version 2>/dev/null | sed 's/^v//') || true
if [[ -z $have_node || $(printf '%s\n%s\n' "$need_node" "$have_node" | sort -V | head -1) != "$need_node" ]]; then
  echo "run_oidc: oidc-provider needs Node.js $need_node or newer (found: ${have_node:-none})" >&2
  exit 1
fi
# npm ci again whenever the lock file changed since the last install.
if [[ ! -f $oidc/node_modules/.package-lock.json || $oidc/package-lock.json -nt $oidc/node_modules/.package-lock.json ]]; then
  echo "run_oidc: npm ci (oidc-provider)"
  (cd "$oidc" && npm ci --no-audit --no-fund --loglevel=error)
fi

venv=$root/.venv
py=$venv/bin/python
[[ -x $py ]] || python3 -m venv "$venv"
"$py" -c 'import pytest' 2>/dev/null || "$py" -m pip install -q --disable-pip-version-check 'pytest>=7'

lib=$root/target/release/libcloudauth.so
[[ -f $lib ]] || { echo "run_oidc: $lib is missing: run make build" >&2; exit 1; }
# The binding from its source tree, on the library just built.
export CLOUDAUTH_LIBRARY=$lib PYTHONPATH=$root/bindings/python/src
cd "$oidc"
exec timeout 900 "$py" -m pytest -p no:cacheprovider -q "$@" .
