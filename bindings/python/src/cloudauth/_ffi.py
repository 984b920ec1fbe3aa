"""The native library: where it is found, and one table of ctypes declarations.

Nothing here is public. The library is loaded on first use (not at import), from, in order:

1. the file named by the ``CLOUDAUTH_LIBRARY`` environment variable, when it is set;
2. the copy bundled inside this package by ``pip install`` (``libcloudauth*.so``);
3. the system's library search path (``ctypes.util.find_library("cloudauth")``), e.g. after
   ``make install``.

Every function returning ``cloudauth_result`` gets an ``errcheck`` that raises the exception
class for the code, carrying ``cloudauth_last_error()``, read on the same thread right after the
call. ctypes releases the GIL for the duration of every call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from ctypes import (
    POINTER,
    c_char,
    Structure,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint16,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, Iterable, List, Mapping, Optional, Sequence, Tuple

from ._errors import LibraryNotFoundError, error_for_code

ENV_VAR = "CLOUDAUTH_LIBRARY"
PACKAGE_DIR = Path(__file__).resolve().parent

if sys.platform == "win32":  # pragma: no cover - the project builds for Linux first
    _PATTERNS: Tuple[str, ...] = ("cloudauth*.dll", "libcloudauth*.dll")
elif sys.platform == "darwin":  # pragma: no cover
    _PATTERNS = ("libcloudauth*.dylib", "libcloudauth*.so")
else:
    _PATTERNS = ("libcloudauth*.so",)


# Opaque handle types: a pointer to one cannot be passed where another is expected.
class Config(Structure):
    pass


class Session(Structure):
    pass


class Response(Structure):
    pass


class Op(Structure):
    pass


class Queue(Structure):
    pass


ConfigPtr = POINTER(Config)
SessionPtr = POINTER(Session)
ResponsePtr = POINTER(Response)
OpPtr = POINTER(Op)
QueuePtr = POINTER(Queue)


class Stats(Structure):
    """``cloudauth_stats``: fields are only ever appended (the C side copies ``sizeof`` of
    what this binding knows)."""

    _fields_ = [
        ("token_requests", c_uint64),
        ("token_failures", c_uint64),
        ("background_refreshes", c_uint64),
        ("api_requests", c_uint64),
        ("unauthorized_resends", c_uint64),
        ("shared_cache_hits", c_uint64),
        ("shared_cache_errors", c_uint64),
        ("token_expires_in_ms", c_int64),
        ("connection_resends", c_uint64),
    ]


class Event(Structure):
    """``cloudauth_event``; its strings are valid during the callback only."""

    _fields_ = [
        ("kind", c_int),
        ("reason", c_char_p),
        ("result", c_int),
        ("http_status", c_uint16),
        ("duration_ms", c_uint64),
        ("message", c_char_p),
    ]


class Completion(Structure):
    """``cloudauth_completion``: one finished operation or one event from a completion queue.
    The binding runs no Python on library threads: every async result and event comes through
    a queue (see ``_async`` and ``_events``)."""

    _fields_ = [
        ("tag", c_uint64),
        ("result", c_int),
        ("response", c_void_p),  # the taker's: cast to ResponsePtr, read, free
        ("token", c_void_p),  # read with string_at(token, token_len)
        ("token_len", c_size_t),
        ("error", c_char_p),
        ("event", POINTER(Event)),
    ]


CompletionPtr = POINTER(Completion)

# cloudauth_head_fn and cloudauth_write_fn (cloudauth_body_sink): called on the caller's
# (Python) thread, during cloudauth_session_request_stream.
HEAD_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
WRITE_FN = ctypes.CFUNCTYPE(c_int, c_void_p, POINTER(ctypes.c_uint8), c_size_t)


class BodySink(Structure):
    """``cloudauth_body_sink``."""

    _fields_ = [("head", HEAD_FN), ("write", WRITE_FN), ("user_data", c_void_p)]


# cloudauth_read_fn and cloudauth_rewind_fn (cloudauth_body_source): called on the caller's
# (Python) thread, during cloudauth_session_request_stream_body.
READ_FN = ctypes.CFUNCTYPE(c_size_t, c_void_p, c_void_p, c_size_t)
REWIND_FN = ctypes.CFUNCTYPE(c_int, c_void_p)
READ_FAILED = ctypes.c_size_t(-1).value  # CLOUDAUTH_READ_FAILED


class BodySource(Structure):
    """``cloudauth_body_source``; ``length`` -1: unknown (sent chunked)."""

    _fields_ = [
        ("read", READ_FN),
        ("rewind", REWIND_FN),
        ("user_data", c_void_p),
        ("length", c_int64),
    ]


# cloudauth_event_fn: runs only on the caller's (Python) thread, during a blocking call (the
# events of library threads come through the event queue).
EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p, POINTER(Event))


def _result_checker(lib: ctypes.CDLL) -> Callable[..., Tuple[Any, ...]]:
    """errcheck for every function returning cloudauth_result in ``lib``."""
    last_error = lib.cloudauth_last_error
    last_error.argtypes = []
    last_error.restype = c_char_p

    def check(result: int, func: Any, args: Tuple[Any, ...]) -> Tuple[Any, ...]:
        if result != 0:
            # Same thread, right after the call: the message is this call's.
            raw = last_error()
            message = raw.decode("utf-8", "replace") if raw else ""
            raise error_for_code(result, message, func.__name__)
        return args

    return check


def _check_not_null(result: Any, func: Any, args: Tuple[Any, ...]) -> Any:
    if not result:
        raise MemoryError(f"{func.__name__} returned NULL")
    return result


_Decl = Tuple[str, Sequence[Any], Any, Optional[str]]

# name, argtypes, restype, errcheck ("result": raise for a non-OK cloudauth_result; "not_null").
# The whole C ABI the binding uses, in header order.
FUNCTIONS: Tuple[_Decl, ...] = (
    ("cloudauth_version", (), c_char_p, None),
    ("cloudauth_result_name", (c_int,), c_char_p, None),
    ("cloudauth_last_error", (), c_char_p, None),
    ("cloudauth_config_new", (), ConfigPtr, "not_null"),
    ("cloudauth_config_set", (ConfigPtr, c_char_p, c_char_p), c_int, "result"),
    ("cloudauth_config_free", (ConfigPtr,), None, None),
    ("cloudauth_session_new", (ConfigPtr, POINTER(SessionPtr)), c_int, "result"),
    (
        "cloudauth_session_token",
        (SessionPtr, POINTER(c_char), c_size_t, POINTER(c_size_t)),
        c_int,
        "result",
    ),
    ("cloudauth_session_invalidate", (SessionPtr,), c_int, "result"),
    ("cloudauth_session_invalidate_token", (SessionPtr, c_char_p), c_int, "result"),
    ("cloudauth_session_check_url", (SessionPtr, c_char_p), c_int, "result"),
    ("cloudauth_session_origin", (SessionPtr,), c_char_p, None),
    (
        "cloudauth_session_request",
        (
            SessionPtr,
            c_char_p,  # method
            c_char_p,  # url
            POINTER(c_char_p),  # headers
            c_size_t,  # n_headers
            c_char_p,  # body: binary-safe, its length is passed separately
            c_size_t,  # body_len
            POINTER(ResponsePtr),
        ),
        c_int,
        "result",
    ),
    (
        "cloudauth_session_request_stream",
        (
            SessionPtr,
            c_char_p,  # method
            c_char_p,  # url
            POINTER(c_char_p),  # headers
            c_size_t,  # n_headers
            c_char_p,  # body
            c_size_t,  # body_len
            POINTER(BodySink),
            POINTER(ResponsePtr),
        ),
        c_int,
        "result",
    ),
    ("cloudauth_session_free", (SessionPtr,), None, None),
    ("cloudauth_response_status", (ResponsePtr,), c_uint16, None),
    ("cloudauth_response_body", (ResponsePtr, POINTER(c_size_t)), c_void_p, None),
    ("cloudauth_response_header", (ResponsePtr, c_char_p), c_char_p, None),
    ("cloudauth_response_header_count", (ResponsePtr,), c_size_t, None),
    (
        "cloudauth_response_header_at",
        (ResponsePtr, c_size_t, POINTER(c_char_p), POINTER(c_char_p)),
        c_int,
        "result",
    ),
    ("cloudauth_response_free", (ResponsePtr,), None, None),
    # v1: lifecycle, events, async.
    (
        "cloudauth_session_set_credentials",
        (SessionPtr, c_char_p, c_char_p),
        c_int,
        "result",
    ),
    ("cloudauth_session_stats", (SessionPtr, POINTER(Stats), c_size_t), c_int, "result"),
    ("cloudauth_session_token_expires_in", (SessionPtr, POINTER(c_uint64)), c_int, "result"),
    ("cloudauth_queue_new", (), QueuePtr, "not_null"),
    ("cloudauth_queue_free", (QueuePtr,), None, None),
    # No errcheck: TIMEOUT is an answer here (the caller reads the code).
    ("cloudauth_queue_wait", (QueuePtr, c_int32, POINTER(CompletionPtr)), c_int, None),
    ("cloudauth_queue_fd", (QueuePtr,), c_int, None),
    ("cloudauth_completion_free", (CompletionPtr,), None, None),
    (
        "cloudauth_session_request_queued",
        (
            SessionPtr,
            c_char_p,  # method
            c_char_p,  # url
            POINTER(c_char_p),  # headers
            c_size_t,  # n_headers
            c_char_p,  # body
            c_size_t,  # body_len
            QueuePtr,
            c_uint64,  # tag
            POINTER(OpPtr),  # out_op
        ),
        c_int,
        "result",
    ),
    (
        "cloudauth_session_token_queued",
        (SessionPtr, QueuePtr, c_uint64, POINTER(OpPtr)),
        c_int,
        "result",
    ),
    ("cloudauth_config_set_event_queue", (ConfigPtr, QueuePtr, c_uint64), c_int, "result"),
    (
        "cloudauth_config_set_event_callback",
        (ConfigPtr, EVENT_FN, c_void_p),
        c_int,
        "result",
    ),
    ("cloudauth_op_cancel", (OpPtr,), None, None),
    ("cloudauth_op_free", (OpPtr,), None, None),
    # No errcheck: WOULD_BLOCK is an answer here, not an error (the caller reads the code).
    (
        "cloudauth_session_token_cached",
        (SessionPtr, POINTER(c_char), c_size_t, POINTER(c_size_t)),
        c_int,
        None,
    ),
)

# Declared when the library has them, else left out (``has(name)`` tells): newer than the
# oldest library this binding supports.
OPTIONAL_FUNCTIONS: Tuple[_Decl, ...] = (
    ("cloudauth_config_from_env", (ConfigPtr, c_char_p), c_int, "result"),
    ("cloudauth_stop_event_callbacks", (), None, None),
    (
        "cloudauth_session_request_stream_body",
        (
            SessionPtr,
            c_char_p,  # method
            c_char_p,  # url
            POINTER(c_char_p),  # headers
            c_size_t,  # n_headers
            POINTER(BodySource),  # NULL: no body
            POINTER(BodySink),  # NULL: the whole response in *out
            POINTER(ResponsePtr),
        ),
        c_int,
        "result",
    ),
)


# Calls that never wait (no I/O, no lock held across a callback): the async path makes them
# through a PyDLL view of the library, which keeps the GIL during the call. Through the CDLL,
# each one releases the GIL, and a library thread waiting to run a completion takes it; the
# loop thread then sleeps until it gets it back, a dozen times per request.
QUICK = frozenset(
    {
        "cloudauth_last_error",
        "cloudauth_response_status",
        "cloudauth_response_body",
        "cloudauth_response_header",
        "cloudauth_response_header_count",
        "cloudauth_response_header_at",
        "cloudauth_response_free",
        "cloudauth_session_request_queued",
        "cloudauth_session_token_queued",
        "cloudauth_queue_new",
        "cloudauth_queue_free",
        "cloudauth_queue_fd",
        "cloudauth_queue_wait",  # with timeout 0 only, from the event loop
        "cloudauth_completion_free",
        "cloudauth_op_cancel",
        "cloudauth_op_free",
        "cloudauth_session_token_cached",
        "cloudauth_session_invalidate_token",
        "cloudauth_session_stats",
    }
)


def _declare(lib: ctypes.CDLL, checker_lib: ctypes.CDLL, decls: Iterable[_Decl]) -> None:
    checkers = {"result": _result_checker(checker_lib), "not_null": _check_not_null}
    for name, argtypes, restype, errcheck in decls:
        fn = getattr(lib, name)
        fn.argtypes = list(argtypes)
        fn.restype = restype
        if errcheck is not None:
            fn.errcheck = checkers[errcheck]


def candidates(
    environ: Mapping[str, str], package_dir: Path, use_system: bool = True
) -> Tuple[Iterable[str], Sequence[str]]:
    """The library files to try, in order, and a description of every place looked at."""
    looked: List[str] = []
    found: List[str] = []
    override = environ.get(ENV_VAR)
    if override:
        looked.append(f"{ENV_VAR}={override}")
        return [override], looked
    looked.append(f"{ENV_VAR} (not set)")
    looked.append(f"{package_dir}/{' or '.join(_PATTERNS)} (the copy bundled by pip install)")
    for pattern in _PATTERNS:
        found.extend(str(p) for p in sorted(package_dir.glob(pattern)))
    if use_system:
        looked.append('the system library path (ctypes.util.find_library("cloudauth"))')
        system = ctypes.util.find_library("cloudauth")
        if system:
            found.append(system)
    return found, looked


def load(
    environ: Mapping[str, str] = os.environ,
    package_dir: Path = PACKAGE_DIR,
    use_system: bool = True,
) -> Tuple[ctypes.CDLL, str]:
    """Finds, loads and declares the library; raises LibraryNotFoundError saying where it looked."""
    paths, looked = candidates(environ, package_dir, use_system)
    errors = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        missing = [name for name, *_ in FUNCTIONS if not hasattr(lib, name)]
        if missing:
            errors.append(f"{path}: not a cloudauth library of this version (missing {', '.join(missing)})")
            continue
        present = [d for d in OPTIONAL_FUNCTIONS if hasattr(lib, d[0])]
        _declare(lib, lib, FUNCTIONS + tuple(present))
        return lib, path
    lines = ["cannot load the cloudauth native library (libcloudauth)."]
    lines.append("Looked in: " + "; ".join(looked) + ".")
    if errors:
        lines.append("Failed: " + "; ".join(errors) + ".")
    lines.append(
        "Fix: install the package with `pip install ./bindings/python` from the cloudauth "
        "repository (it builds and bundles the library; needs cargo), or build it with "
        f"`cargo build --release` and set {ENV_VAR}=/path/to/target/release/libcloudauth.so."
    )
    raise LibraryNotFoundError(" ".join(lines))


_lock = threading.Lock()
_loaded: Optional[Tuple[ctypes.CDLL, str]] = None


def lib() -> ctypes.CDLL:
    """The loaded library, loading it on first use."""
    global _loaded
    loaded = _loaded
    if loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = load()
            loaded = _loaded
    return loaded[0]


_quick: Optional[ctypes.CDLL] = None


def quick() -> ctypes.CDLL:
    """The library again (the same loaded object), as a PyDLL declaring the QUICK calls:
    they run with the GIL held."""
    global _quick
    if _quick is None:
        with _lock:
            if _quick is None:
                view = ctypes.PyDLL(library_path())
                _declare(view, lib(), [d for d in FUNCTIONS if d[0] in QUICK])
                _quick = view
    return _quick


def loaded() -> Optional[ctypes.CDLL]:
    """The library if it has been loaded, else None (never loads it)."""
    return None if _loaded is None else _loaded[0]


def has(name: str) -> bool:
    """Whether the loaded library exports ``name`` (for OPTIONAL_FUNCTIONS)."""
    return hasattr(lib(), name)


def library_path() -> str:
    """The path of the loaded library file."""
    lib()
    assert _loaded is not None
    return _loaded[1]
