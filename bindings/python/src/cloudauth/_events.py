"""Events and stats: the typed Python views of ``cloudauth_event`` and ``cloudauth_stats``.

No Python runs on a library thread (there it could run while the interpreter shuts down and
crash the process). A blocking call's events run the handler on the calling thread, before the
call returns (the module-level C callback, alive as long as the module). Events of library
threads (background refreshes, AsyncSession's work) come through one completion queue per
process (``cloudauth_config_set_event_queue``), which a daemon thread, "cloudauth-events",
empties: their handler runs there, in order, soon after the event. Each session's events carry
an integer key, which looks up the session's handler in a dict; a closed session's key is
removed, and an event that arrives after that is dropped.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import logging
import os
import select
import threading
from dataclasses import dataclass, fields
from typing import Any, Callable, Dict, Optional, Tuple, Union

from . import _ffi
from ._errors import Result

logger = logging.getLogger("cloudauth")
# A library's logger: silent unless the application configures logging (no "last resort"
# lines on stderr for events the application already handles).
logger.addHandler(logging.NullHandler())

KINDS: Dict[int, str] = {
    1: "token_fetched",
    2: "token_fetch_failed",
    3: "retry",
    4: "unauthorized",
    5: "cache_unavailable",
}
# What operators must see by default; the rest is INFO.
_WARNING_KINDS = frozenset({"token_fetch_failed", "cache_unavailable"})


@dataclass(frozen=True)
class Event:
    """One ``cloudauth_event``. No field ever holds a secret or a token.

    - ``kind``: "token_fetched", "token_fetch_failed", "retry", "unauthorized",
      "cache_unavailable" (``"unknown_<n>"`` for a kind newer than this binding);
    - ``reason``: why a token was asked for ("first_use", "refresh_ahead", "expired",
      "invalidated", "unauthorized", "credentials_changed"), "" for other kinds;
    - ``result``: :class:`Result` (``Result.OK`` or the failure's code);
    - ``http_status``: 0 when there was no HTTP answer;
    - ``duration_ms``: the fetch's duration; for "retry", the wait before the next attempt;
    - ``message``: one line for a person.
    """

    kind: str
    reason: str
    result: Union[Result, int]
    http_status: int
    duration_ms: int
    message: str


EventHandler = Callable[[Event], Any]


@dataclass(frozen=True)
class Stats:
    """A session's counters (``cloudauth_stats``), read without a lock and without I/O."""

    token_requests: int
    """HTTP requests sent to the token endpoint, retries included."""
    token_failures: int
    """Token fetches that ended in an error, after retries."""
    background_refreshes: int
    """Successful refreshes done off the callers' threads (background and eager modes)."""
    api_requests: int
    """Requests sent by the session (sync and async), resends included."""
    unauthorized_resends: int
    """API requests resent after a 401."""
    shared_cache_hits: int
    """Tokens taken from the file or Redis cache instead of the token endpoint."""
    shared_cache_errors: int
    """File or Redis cache operations that failed (the call went on without the cache)."""
    token_expires_in_ms: int
    """The current token's remaining life in milliseconds; -1 when there is none."""
    connection_resends: int
    """Requests sent once more on a new connection because a kept-alive one failed under them
    before any answer came (0 from a library older than this field)."""


_STATS_FIELDS = tuple(f.name for f in fields(Stats))
assert _STATS_FIELDS == tuple(field[0] for field in _ffi.Stats._fields_)


def read_stats(lib: ctypes.CDLL, handle: Any) -> Stats:
    raw = _ffi.Stats()
    lib.cloudauth_session_stats(handle, ctypes.byref(raw), ctypes.sizeof(raw))
    return Stats(*(getattr(raw, name) for name in _STATS_FIELDS))


def log_event(event: Event) -> None:
    """The default handler: the "cloudauth" logger, fetches at INFO, failures at WARNING."""
    level = logging.WARNING if event.kind in _WARNING_KINDS else logging.INFO
    if not logger.isEnabledFor(level):
        return
    parts = [event.kind]
    if event.reason:
        parts.append(f"reason={event.reason}")
    if event.result != Result.OK:
        result = event.result
        parts.append(f"result={result.c_name if isinstance(result, Result) else result}")
    if event.http_status:
        parts.append(f"http_status={event.http_status}")
    parts.append(f"{'delay' if event.kind == 'retry' else 'duration'}_ms={event.duration_ms}")
    if event.message:
        parts.append(f"- {event.message}")
    logger.log(level, "cloudauth event: %s", " ".join(parts))


def _text(raw: Optional[bytes]) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _convert(raw: "_ffi.Event") -> Event:
    try:
        result: Union[Result, int] = Result(raw.result)
    except ValueError:
        result = raw.result
    return Event(
        kind=KINDS.get(raw.kind, f"unknown_{raw.kind}"),
        reason=_text(raw.reason),
        result=result,
        http_status=raw.http_status,
        duration_ms=raw.duration_ms,
        message=_text(raw.message),
    )


_handlers: Dict[int, Optional[EventHandler]] = {}
_keys = itertools.count(1)
_keys_lock = threading.Lock()


def _dispatch(key: int, event: Event) -> None:
    # The events thread. Nothing may escape: the thread must go on.
    try:
        if key not in _handlers:
            return
        handler = _handlers[key]
        log_event(event)
        if handler is not None:
            try:
                handler(event)
            except Exception:
                logger.exception("the on_event callback raised (the event was %s)", event.kind)
    except Exception:  # pragma: no cover - a bug in this module
        try:
            logger.exception("cloudauth: event dispatch failed")
        except Exception:
            pass


def _on_event(user_data: Optional[int], event_ptr: Any) -> None:
    # The caller's thread, inside a blocking call. Nothing may escape into C.
    try:
        _dispatch(user_data or 0, _convert(event_ptr.contents))
    except Exception:  # pragma: no cover - a bug in this module
        pass


# One for the whole process, never freed.
EVENT_CALLBACK = _ffi.EVENT_FN(_on_event)


def _stop_callbacks() -> None:
    # atexit handlers run before the interpreter starts to finalize. After that, a daemon
    # thread that enters EVENT_CALLBACK from a blocking call is ended inside it (CPython ends
    # threads that ask for the GIL then), unwinding through the library's frames before the
    # fetch it led woke its waiters: a later call on another thread would wait for ever.
    # From here on the library calls no callback (registered at import, so this runs after
    # the program's own atexit handlers, whose calls still get their events).
    lib = _ffi.loaded()
    if lib is not None and hasattr(lib, "cloudauth_stop_event_callbacks"):
        lib.cloudauth_stop_event_callbacks()


atexit.register(_stop_callbacks)


# Held while events are taken and dispatched, so that flush() on a closing session delivers
# every event queued before it, none twice. Re-entrant: a handler may close a session.
_dispatch_lock = threading.RLock()


def _drain(queue: Any) -> None:
    lib = _ffi.quick()  # waits of 0 ms only
    out = _ffi.CompletionPtr()
    while lib.cloudauth_queue_wait(queue, 0, ctypes.byref(out)) == Result.OK:
        try:
            c = out.contents
            key, event = c.tag, _convert(c.event.contents)
        finally:
            lib.cloudauth_completion_free(out)
        _dispatch(key, event)


def _run(queue: Any, fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        poller.poll()  # releases the GIL
        with _dispatch_lock:
            _drain(queue)


def flush() -> None:
    """Delivers, on this thread, the events queued so far (a session about to close)."""
    q = _queue
    if q is not None and q[0] == os.getpid():
        with _dispatch_lock:
            _drain(q[1])


_queue: Optional[Tuple[int, Any]] = None  # (pid, queue)
_queue_lock = threading.Lock()


def event_queue() -> Any:
    """The process's event queue, and its thread, made on first use (again in a child of
    fork(): the parent's queue is refused there). Never freed: sessions keep sending to it."""
    global _queue
    q = _queue
    if q is None or q[0] != os.getpid():
        with _queue_lock:
            q = _queue
            if q is None or q[0] != os.getpid():
                lib = _ffi.lib()
                queue = lib.cloudauth_queue_new()
                fd = lib.cloudauth_queue_fd(queue)
                threading.Thread(
                    target=_run, args=(queue, fd), name="cloudauth-events", daemon=True
                ).start()
                q = _queue = (os.getpid(), queue)
    return q[1]


def register(handler: Optional[EventHandler]) -> int:
    """A key for a new session's events (its ``user_data``)."""
    if handler is not None and not callable(handler):
        raise TypeError(f"on_event must be callable, not {type(handler).__name__}")
    with _keys_lock:
        key = next(_keys)
    _handlers[key] = handler
    return key


def unregister(key: int, flush_first: bool = True) -> None:
    """Drops a session's handler; first delivers what was queued (unless at shutdown)."""
    if flush_first:
        flush()
    _handlers.pop(key, None)


__all__ = ["Event", "EventHandler", "Stats", "log_event"]
