"""Finding the native library: CLOUDAUTH_LIBRARY, the bundled copy, and the failure message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cloudauth
from cloudauth import _ffi


def test_library_version_and_path() -> None:
    version = cloudauth.library_version()
    assert version.count(".") == 2 and all(p.isdigit() for p in version.split("."))
    assert Path(cloudauth.library_path()).is_file()


def test_where_the_library_came_from() -> None:
    override = os.environ.get("CLOUDAUTH_LIBRARY")
    if override:
        assert cloudauth.library_path() == override
    else:
        # The installed package carries its own copy, next to its modules.
        loaded = Path(cloudauth.library_path())
        assert loaded.parent == Path(cloudauth.__file__).resolve().parent
        assert loaded.name.startswith("libcloudauth")


def test_environment_variable_takes_precedence(tmp_path: Path) -> None:
    real = cloudauth.library_path()
    lib, path = _ffi.load({"CLOUDAUTH_LIBRARY": real}, package_dir=tmp_path, use_system=False)
    assert path == real
    assert lib.cloudauth_version().decode() == cloudauth.library_version()
    # Its declarations are complete: errcheck turns a failure into the right exception.
    config = lib.cloudauth_config_new()
    try:
        with pytest.raises(cloudauth.InvalidArgument) as info:
            lib.cloudauth_config_set(config, b"no_such_key", b"1")
        assert "no_such_key" in str(info.value)
        lib.cloudauth_config_set(config, b"timeout_ms", b"5")
    finally:
        lib.cloudauth_config_free(config)


def test_not_found_says_where_it_looked_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(cloudauth.LibraryNotFoundError) as info:
        _ffi.load({}, package_dir=tmp_path, use_system=False)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "CLOUDAUTH_LIBRARY" in message
    assert "pip install" in message and "cargo build --release" in message


def test_a_file_that_is_not_a_library(tmp_path: Path) -> None:
    bogus = tmp_path / "libcloudauth.so"
    bogus.write_text("not an ELF file")
    with pytest.raises(cloudauth.LibraryNotFoundError) as info:
        _ffi.load({"CLOUDAUTH_LIBRARY": str(bogus)}, package_dir=tmp_path, use_system=False)
    assert str(bogus) in str(info.value)
    # The bundled-copy lookup finds it by pattern too, and reports the same failure.
    with pytest.raises(cloudauth.LibraryNotFoundError) as info:
        _ffi.load({}, package_dir=tmp_path, use_system=False)
    assert str(bogus) in str(info.value)


def test_a_library_that_is_not_cloudauth(tmp_path: Path) -> None:
    libc = "libc.so.6"
    with pytest.raises(cloudauth.LibraryNotFoundError) as info:
        _ffi.load({"CLOUDAUTH_LIBRARY": libc}, package_dir=tmp_path, use_system=False)
    assert "missing cloudauth_" in str(info.value)


def test_missing_library_fails_on_first_use_not_import() -> None:
    code = (
        "import cloudauth\n"
        "assert cloudauth.Result.TIMEOUT == 5\n"
        "cloudauth.Session('demo-client', 'demo-secret')\n"
    )
    env = dict(os.environ, CLOUDAUTH_LIBRARY="/nonexistent/dir/libcloudauth.so")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert "LibraryNotFoundError" in out.stderr
    assert "CLOUDAUTH_LIBRARY=/nonexistent/dir/libcloudauth.so" in out.stderr


def test_every_declared_function_is_exported() -> None:
    lib = _ffi.lib()
    for name, argtypes, restype, _ in _ffi.FUNCTIONS:
        fn = getattr(lib, name)
        assert list(fn.argtypes) == list(argtypes) and fn.restype is restype
