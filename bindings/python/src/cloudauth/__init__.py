"""cloudauth: OAuth2 client-credentials tokens and authorized HTTP requests.

A thin ctypes binding of the cloudauth C library::

    import cloudauth

    with cloudauth.Session("my-id", "my-secret") as s:
        r = s.post("/v5.0/ocr/RecognizeImage", json={"image": "..."})
        print(r.status, r.text)

``cloudauth.AsyncSession`` is the same for asyncio. ``cloudauth.BearerAuth(session)`` plugs a
session into the ``requests`` package, ``cloudauth.HttpxAuth(session)`` into ``httpx`` (each
imported only when asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _ffi
from ._async import AsyncSession
from ._errors import (
    AuthRejected,
    BadTokenResponse,
    BufferTooSmall,
    Cancelled,
    ClosedError,
    Error,
    HTTPError,
    InsecureUrl,
    InternalError,
    InvalidArgument,
    LibraryNotFoundError,
    NetworkError,
    Result,
    Timeout,
    TokenEndpointError,
    TooLarge,
    WouldBlock,
)
from ._events import Event, EventHandler, Stats, log_event
from ._options import Options
from ._session import Headers, Response, Session
from ._stream import AsyncStreamedResponse, StreamedResponse

if TYPE_CHECKING:
    from ._httpx import HttpxAuth
    from ._requests import BearerAuth

__version__ = "0.1.0"

__all__ = [
    "AsyncSession",
    "AsyncStreamedResponse",
    "AuthRejected",
    "BadTokenResponse",
    "BearerAuth",
    "BufferTooSmall",
    "Cancelled",
    "ClosedError",
    "Error",
    "Event",
    "EventHandler",
    "Headers",
    "HTTPError",
    "HttpxAuth",
    "InsecureUrl",
    "InternalError",
    "InvalidArgument",
    "LibraryNotFoundError",
    "NetworkError",
    "Options",
    "Response",
    "Result",
    "Session",
    "Stats",
    "StreamedResponse",
    "Timeout",
    "TokenEndpointError",
    "TooLarge",
    "WouldBlock",
    "library_path",
    "log_event",
    "library_version",
    "result_name",
]


def library_version() -> str:
    """The native library's version, e.g. ``"0.1.0"``."""
    version: bytes = _ffi.lib().cloudauth_version()
    return version.decode("ascii")


def library_path() -> str:
    """The file the native library was loaded from."""
    return _ffi.library_path()


def result_name(code: int) -> str:
    """The C name of a result code, as the library spells it (``cloudauth_result_name``)."""
    name: bytes = _ffi.lib().cloudauth_result_name(int(code))
    return name.decode("ascii")


def __getattr__(name: str) -> Any:
    # BearerAuth needs `requests` and HttpxAuth `httpx`; import them only when asked for, so
    # cloudauth works without either.
    if name == "BearerAuth":
        from ._requests import BearerAuth

        return BearerAuth
    if name == "HttpxAuth":
        from ._httpx import HttpxAuth

        return HttpxAuth
    raise AttributeError(f"module 'cloudauth' has no attribute {name!r}")
