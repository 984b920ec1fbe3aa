"""Request bodies the library pulls while it sends them (``cloudauth_body_source``): a binary
file object, or an iterator of bytes.

- A seekable file (``seekable()`` true): its length is what lies between where it stands and
  its end (``Content-Length``), and a resend (a 401 to a hop that carried the token, a
  307/308) first seeks it back to where it stood.
- A file that cannot seek (a pipe, a socket's ``makefile``) and an iterator (a generator):
  length unknown, sent chunked, never sent twice (the library returns the 401 or the 3xx as
  the answer instead).

The callbacks run on the thread making the C call. An exception from ``read`` or from the
iterator fails the request (CLOUDAUTH_READ_FAILED) and is what the caller gets raised.
"""

from __future__ import annotations

import ctypes
import io
from typing import Any, Callable, Iterator, List, Optional

from . import _ffi

_READ_FAILED = _ffi.READ_FAILED


def is_source(data: Any) -> bool:
    """Whether ``data`` is a body to pull (a file object or an iterable other than bytes-likes,
    str and mappings), rather than one to send whole."""
    if data is None or isinstance(data, (bytes, bytearray, memoryview, str, dict)):
        return False
    return callable(getattr(data, "read", None)) or hasattr(data, "__iter__")


class Source:
    """One request body for ``cloudauth_session_request_stream_body``."""

    def __init__(self, data: Any) -> None:
        self._data = data
        self._pieces: Optional[Iterator[Any]] = None
        self._left = memoryview(b"")  # an iterator's piece not yet all copied
        self._start: Optional[int] = None  # where a seekable file stood
        self.length = -1
        if callable(getattr(data, "read", None)):
            if isinstance(data, io.TextIOBase):
                raise TypeError("a file to send must be opened in binary mode ('rb'), not text")
            seekable = getattr(data, "seekable", None)
            if callable(seekable) and seekable():
                self._start = data.tell()
                end = data.seek(0, io.SEEK_END)
                data.seek(self._start)
                self.length = max(0, end - self._start)
            self._read: Callable[[Any, int], int] = self._read_file
        else:
            try:
                self._pieces = iter(data)
            except TypeError:
                raise TypeError(
                    "data must be bytes, str, a binary file object or an iterable of bytes, "
                    f"not {type(data).__name__}"
                ) from None
            self._read = self._read_iterator
        self._callbacks: List[Any] = []

    @property
    def rewindable(self) -> bool:
        return self._start is not None

    def struct(self, expired: Callable[[], bool], raised: List[BaseException]) -> Any:
        """The ``cloudauth_body_source`` for one call; ``expired()`` true stops the request,
        an exception goes into ``raised``. Kept alive by this object."""

        def read(_user: Any, buf: int, cap: int) -> int:
            if expired():
                return _READ_FAILED
            try:
                return self._read(buf, cap)
            except BaseException as e:  # raised from the call by its caller
                raised.append(e)
                return _READ_FAILED

        def rewind(_user: Any) -> int:
            try:
                self._data.seek(self._start)
                return 0
            except Exception:  # not sent again: the library returns the 401 or the 3xx
                return 1

        read_fn = _ffi.READ_FN(read)
        rewind_fn = _ffi.REWIND_FN(rewind) if self.rewindable else _ffi.REWIND_FN()
        self._callbacks = [read_fn, rewind_fn]
        return _ffi.BodySource(read_fn, rewind_fn, None, self.length)

    def _read_file(self, buf: int, cap: int) -> int:
        target = (ctypes.c_char * cap).from_address(buf)
        readinto = getattr(self._data, "readinto", None)
        if readinto is not None:
            n = readinto(memoryview(target).cast("B"))
            if n is None:
                raise BlockingIOError("the body's file has no data ready (non-blocking)")
            return int(n)
        piece = self._data.read(cap)
        return self._copy(piece, target, cap)

    def _read_iterator(self, buf: int, cap: int) -> int:
        target = (ctypes.c_char * cap).from_address(buf)
        while not self._left:
            assert self._pieces is not None
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            if isinstance(piece, str) or not isinstance(piece, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"the body's iterator must yield bytes, not {type(piece).__name__}"
                )
            self._left = memoryview(piece).cast("B")  # an empty piece is skipped: 0 is the end
        n = min(cap, len(self._left))
        ctypes.memmove(target, bytes(self._left[:n]), n)
        self._left = self._left[n:]
        return n

    @staticmethod
    def _copy(piece: Any, target: Any, cap: int) -> int:
        if piece is None:
            raise BlockingIOError("the body's file has no data ready (non-blocking)")
        if isinstance(piece, str) or not isinstance(piece, (bytes, bytearray, memoryview)):
            raise TypeError(f"the body's file must read bytes, not {type(piece).__name__}")
        n = len(piece)
        if n > cap:
            raise ValueError(f"the body's file read {n} bytes when asked for {cap}")
        ctypes.memmove(target, bytes(piece), n)
        return n

