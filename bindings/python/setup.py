"""Only what makes the wheel Python-version-free lives here (the rest is in pyproject.toml).

The package has no extension module: it loads its bundled libcloudauth.so with ctypes, so one
wheel serves every Python 3 on a platform. Two things would tie it to one CPython: the file
name (an extension suffix such as .cpython-311-x86_64-linux-gnu.so) and the tag bdist_wheel
gives an "impure" wheel (cp311-cp311). Here the library is plain libcloudauth.so and the tag
py3-none-<platform>; tests/run/python.sh turns the platform tag into manylinux (auditwheel).
"""

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]


class bdist_wheel_py3(bdist_wheel):  # type: ignore[misc]
    def get_tag(self) -> "tuple[str, str, str]":
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class build_ext_plain_library(build_ext):
    def get_ext_filename(self, fullname: str) -> str:
        parts = fullname.split(".")
        if parts[-1] == "libcloudauth":  # the cdylib, loaded by ctypes, not imported
            return os.path.join(*parts[:-1], "libcloudauth.so")
        return str(super().get_ext_filename(fullname))


setup(cmdclass={"bdist_wheel": bdist_wheel_py3, "build_ext": build_ext_plain_library})
