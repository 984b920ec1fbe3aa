#!/usr/bin/env bash
# The Python binding, tested as users get it: `pip install ./bindings/python` into the repo's
# venv (.venv; builds the Rust library with setuptools-rust, reusing target/, and bundles it
# in the package), then its pytest suite and examples/python/ocr_demo.py, each against the
# local stand-in (tests/standin/with_server.sh). CLOUDAUTH_LIBRARY is unset, so the installed
# package must find its own copy of the library.
#
# Needs: python3 with venv (python3-venv), cargo, and PyPI through pip (pytest, requests, httpx,
# aiohttp, mypy, setuptools, setuptools-rust). Extra arguments go to pytest, e.g.
# tests/run_python.sh -k token
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv
py=$venv/bin/python
unset CLOUDAUTH_LIBRARY PYTHONPATH
pip_q=(-m pip install -q --disable-pip-version-check)

if [[ ! -x $py ]]; then
  echo "run_python: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$py" -c 'import pytest, requests, httpx, aiohttp, mypy' 2>/dev/null; then
  "$py" "${pip_q[@]}" 'pytest>=7' 'requests>=2.20' 'httpx>=0.23' 'aiohttp>=3.8' 'mypy>=1.5'
fi

# Always reinstall: the library or the binding may have changed since the last run.
echo "run_python: pip install ./bindings/python"
"$py" "${pip_q[@]}" --force-reinstall --no-deps ./bindings/python

# Prove the tests will use the installed package and its bundled library, not the source tree.
(cd /tmp && "$py" - "$venv" <<'PY'
import sys
from pathlib import Path
import cloudauth
pkg = Path(cloudauth.__file__).resolve().parent
lib = Path(cloudauth.library_path()).resolve()
assert Path(sys.argv[1]).resolve() in pkg.parents, f"cloudauth imported from {pkg}, not the venv"
assert lib.parent == pkg, f"library loaded from {lib}, not the package"
print(f"run_python: cloudauth {cloudauth.library_version()} from {pkg} ({lib.name})")
PY
)

echo "run_python: mypy --strict bindings/python/src/cloudauth"
(cd bindings/python && "$py" -m mypy --strict --cache-dir=/dev/null src/cloudauth)  # no cache left in the tree

echo "run_python: examples/python/ocr_demo.py"
tests/standin/with_server.sh "$py" examples/python/ocr_demo.py

echo "run_python: pytest bindings/python/tests"
cd bindings/python
# -p no:cacheprovider: leave no .pytest_cache in the tree. The source lives under src/, so
# `import cloudauth` can only find the installed package.
"$root"/tests/standin/with_server.sh "$py" -m pytest -p no:cacheprovider -q "$@" tests
