"""``AsyncSession``: asyncio over the C async calls (``cloudauth_session_request_async``,
``cloudauth_session_token_async``, ``cloudauth_op_cancel``).

Threads: the work runs on the library's threads; its completion runs on one of them and hands
the outcome to the event loop. Completions are batched per loop: the first one to find the
loop's inbox empty schedules one ``call_soon_threadsafe`` (one wake-up of the loop), and that
drain resolves every future queued meanwhile, so 64 answers arriving together cost one
wake-up, not 64.

Lifetimes: the two C callbacks are module-level CFUNCTYPE objects that are never freed, and
``user_data`` is an integer key into ``_pending`` (never a pointer to a Python object), whose
entry holds the future until the completion ran. A completion whose entry is gone (cannot
happen, but costs nothing to check) frees the response and returns.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import itertools
import logging
import os
import sys
import threading
import weakref
from ctypes import byref
from typing import TYPE_CHECKING, Any, Deque, Dict, Optional, Tuple, TypeVar, Union

from . import _ffi
from ._errors import ClosedError, InternalError, Result, error_for_code
from ._events import EventHandler
from ._lifecycle import LifecycleMixin
from ._options import Options
from ._session import (
    BodyArg,
    HeadersArg,
    ParamsArg,
    Response,
    Session,
    _read_response,
    _request_args,
    _token_buffers,
    _with_params,
)

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:  # only for type checkers
    from typing_extensions import Unpack

logger = logging.getLogger("cloudauth")

_A = TypeVar("_A", bound="AsyncSession")
Outcome = Union[Response, str, BaseException, "_Unread"]


class _Inbox:
    """Outcomes for one event loop, filled on library threads, drained on the loop."""

    __slots__ = ("loop", "items", "scheduled", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: Deque[Tuple["_Pending", Outcome]] = collections.deque()
        self.scheduled = False

    def put(self, entry: "_Pending", outcome: Outcome) -> None:
        # Library thread. Appending before reading `scheduled` makes a lost wake-up
        # impossible: a drain clears the flag before it empties the deque.
        self.items.append((entry, outcome))
        if self.loop.is_closed():  # nobody is waiting any more (e.g. after asyncio.run)
            self._discard()
        elif not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # closed in between
                self._discard()

    def _discard(self) -> None:
        while self.items:
            entry, outcome = self.items.popleft()
            if isinstance(outcome, _Unread):
                _ffi.quick().cloudauth_response_free(outcome.handle)
            entry.ops.finished(entry.key)

    def drain(self) -> None:
        self.scheduled = False
        items = self.items
        while items:
            entry, outcome = items.popleft()
            if isinstance(outcome, _Unread):
                outcome = outcome.read(entry)  # frees it, whether or not anyone waits
            future = entry.future
            if not future.done():  # a cancelled task's future is done
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            entry.ops.finished(entry.key)


class _Unread:
    """A response handle handed to the loop, read (and freed) there."""

    __slots__ = ("handle",)

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def read(self, entry: "_Pending") -> Outcome:
        lib = _ffi.quick()
        try:
            return _read_response(lib, self.handle, entry.method, entry.url)
        except Exception as e:  # e.g. MemoryError: the awaiting task gets it
            return e
        finally:
            lib.cloudauth_response_free(self.handle)


class _Pending:
    __slots__ = ("key", "future", "inbox", "ops", "method", "url")

    def __init__(
        self,
        key: int,
        future: "asyncio.Future[Any]",
        inbox: _Inbox,
        ops: "_Ops",
        method: str,
        url: str,
    ) -> None:
        self.key = key
        self.future = future
        self.inbox = inbox
        self.ops = ops
        self.method = method
        self.url = url


_gil_ensure = ctypes.pythonapi.PyGILState_Ensure
_gil_ensure.argtypes = []
_gil_ensure.restype = ctypes.c_int

_pending: Dict[int, _Pending] = {}
_keys = itertools.count(1)  # next() is atomic under the GIL
_inboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox]" = (
    weakref.WeakKeyDictionary()
)
_inboxes_lock = threading.Lock()


def _failure(ops: "_Ops", result: int, error: Optional[bytes]) -> BaseException:
    message = error.decode("utf-8", "replace") if error else ""
    if result == Result.CANCELLED and ops.closing:
        return ClosedError("the session was closed while the operation was in flight")
    return error_for_code(result, message)


_adopted: "set[int]" = set()


def _adopt_thread() -> None:
    """Keeps this (library) thread's Python thread state for good.

    ctypes wraps every callback in PyGILState_Ensure/Release; on a thread Python did not
    start, Release destroys the thread state that Ensure just made, so each completion paid
    for a new one. One Ensure that is never released keeps it: the library's threads live as
    long as the process.
    """
    ident = threading.get_ident()
    if ident not in _adopted:
        _adopted.add(ident)
        _gil_ensure()


if hasattr(os, "register_at_fork"):  # a child starts library threads of its own
    os.register_at_fork(after_in_child=_adopted.clear)


def _on_response(
    user_data: Optional[int], result: int, response: Optional[int], error: Optional[bytes]
) -> None:
    # A library thread, holding the GIL that the loop wants: do the least here (the response
    # is read on the loop, in `_Inbox.drain`), and let nothing escape into C.
    try:
        _adopt_thread()
        entry = _pending.pop(user_data or 0, None)
        if entry is None:
            if response:
                _ffi.quick().cloudauth_response_free(ctypes.cast(response, _ffi.ResponsePtr))
            return
        if result == 0 and response:
            entry.inbox.put(entry, _Unread(ctypes.cast(response, _ffi.ResponsePtr)))
        else:
            entry.inbox.put(entry, _failure(entry.ops, result, error))
    except BaseException:  # pragma: no cover - a bug in this module
        logger.exception("cloudauth: an async completion failed")


def _on_token(
    user_data: Optional[int], result: int, token: Optional[int], token_len: int, error: Optional[bytes]
) -> None:
    try:
        _adopt_thread()
        entry = _pending.pop(user_data or 0, None)
        if entry is None:
            return
        outcome: Outcome
        if result == 0 and token:
            outcome = ctypes.string_at(token, token_len).decode("utf-8")
        else:
            outcome = _failure(entry.ops, result, error)
        entry.inbox.put(entry, outcome)
    except BaseException:  # pragma: no cover - a bug in this module
        logger.exception("cloudauth: an async completion failed")


# For the whole process, never freed: a completion may run after everything else is gone.
_RESPONSE_CALLBACK = _ffi.RESPONSE_FN(_on_response)
_TOKEN_CALLBACK = _ffi.TOKEN_FN(_on_token)


def _set_done(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _inbox_for(loop: asyncio.AbstractEventLoop) -> _Inbox:
    inbox = _inboxes.get(loop)
    if inbox is None:
        with _inboxes_lock:
            inbox = _inboxes.get(loop)
            if inbox is None:
                inbox = _inboxes[loop] = _Inbox(loop)
    return inbox


class _Ops:
    """The async operations of one session handle (an AsyncSession's, or a Session's used
    by HttpxAuth in an AsyncClient): starting them, awaiting them, cancelling them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lib = _ffi.quick()  # the calls made here never wait: keep the GIL
        # The keys of operations started and not yet completed. A set, changed by single
        # add/discard calls (atomic under the GIL), because a completion that finds its loop
        # closed is counted off on a library thread.
        self.keys: "set[int]" = set()
        self.closing = False
        self.idle: Optional["asyncio.Future[None]"] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._inbox: Optional[_Inbox] = None

    def finished(self, key: int) -> None:
        """An operation completed (any thread); wakes aclose() after the last one."""
        self.keys.discard(key)
        idle = self.idle
        if idle is not None and not self.keys:
            try:
                idle.get_loop().call_soon_threadsafe(_set_done, idle)
            except RuntimeError:  # that loop is closed
                pass

    def _start(self, method: str, url: str) -> Tuple[int, "asyncio.Future[Any]"]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._inbox = loop, _inbox_for(loop)
        assert self._inbox is not None
        key = next(_keys)
        future = loop.create_future()
        _pending[key] = _Pending(key, future, self._inbox, self, method, url)
        return key, future

    async def _wait(self, key: int, future: "asyncio.Future[Any]", op: Any) -> Any:
        self.keys.add(key)
        try:
            return await future
        except asyncio.CancelledError:
            # The task was cancelled: stop the work. The completion still runs (CANCELLED),
            # finds the future done and only updates the count.
            self.lib.cloudauth_op_cancel(op)
            raise
        finally:
            self.lib.cloudauth_op_free(op)

    def cached_token(self) -> Optional[str]:
        """The token if one is usable without I/O, else None (a fetch has started)."""
        lib = self.lib
        handle = self.session._acquire()
        try:
            tb = _token_buffers
            for _ in range(8):
                buf = tb.buf
                rc = lib.cloudauth_session_token_cached(handle, buf, len(buf), tb.needed_ref)
                if rc == Result.OK:
                    return buf.raw[: tb.needed.value].decode("utf-8")
                if rc == Result.WOULD_BLOCK:
                    return None
                if rc == Result.BUFFER_TOO_SMALL:
                    tb.buf = ctypes.create_string_buffer(tb.needed.value + 1)
                    continue
                raw = lib.cloudauth_last_error()
                raise error_for_code(rc, raw.decode("utf-8", "replace") if raw else "")
        finally:
            self.session._release()
        raise InternalError("the token kept outgrowing its buffer")

    async def token(self) -> str:
        cached = self.cached_token()
        if cached is not None:
            return cached
        key, future = self._start("", "")
        op = _ffi.OpPtr()
        handle = self.session._acquire()
        try:
            self.lib.cloudauth_session_token_async(handle, _TOKEN_CALLBACK, key, byref(op))
        except BaseException:
            _pending.pop(key, None)
            raise
        finally:
            self.session._release()
        token: str = await self._wait(key, future, op)
        return token

    async def request(
        self,
        method: str,
        url: str,
        headers: HeadersArg,
        data: BodyArg,
        json: Any,
    ) -> Response:
        args = _request_args(method, url, headers, data, json)
        key, future = self._start(method, url)
        op = _ffi.OpPtr()
        handle = self.session._acquire()
        try:
            self.lib.cloudauth_session_request_async(
                handle,
                *args,
                _RESPONSE_CALLBACK,
                key,
                byref(op),
            )
        except BaseException:
            _pending.pop(key, None)
            raise
        finally:
            self.session._release()
        response: Response = await self._wait(key, future, op)
        return response

    async def aclose(self) -> None:
        if not self.closing:
            self.closing = True
            # Frees the handle; operations in flight finish with CANCELLED (ClosedError).
            self.session.close()
        # `idle` before looking at `keys`: the last completion looks at them the other way.
        if self.idle is None:
            self.idle = asyncio.get_running_loop().create_future()
        if self.keys:
            await asyncio.shield(self.idle)


class AsyncSession(LifecycleMixin):
    """An OAuth2 client-credentials session for asyncio: ``await s.token()``,
    ``await s.request(...)``, returning the same :class:`Response` as :class:`Session`::

        async with cloudauth.AsyncSession("my-id", "my-secret") as s:
            r = await s.post("/v5.0/ocr/RecognizeImage", json={"image": "..."})

    Options, ``on_event`` and :meth:`from_env` are those of :class:`Session`. Awaiting never
    blocks the event loop, also while the first token is fetched: the work runs on the
    library's threads. Cancelling the awaiting task cancels the operation
    (``cloudauth_op_cancel``); the session stays usable. Many requests may be in flight at
    once from one loop; they share pooled keep-alive connections.

    :meth:`aclose` frees the session; operations still in flight then raise
    :class:`ClosedError` (not ``asyncio.CancelledError``: their tasks were not cancelled),
    and ``aclose`` returns once every one of them has finished.

    :attr:`session` is the blocking :class:`Session` over the same handle (the same token
    and counters), e.g. for code running in threads.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: Optional[str] = None,
        *,
        on_event: Optional[EventHandler] = None,
        **options: Unpack[Options],
    ) -> None:
        self._ops = _Ops(Session(client_id, client_secret, on_event=on_event, **options))
        self._lib = self._ops.session._lib

    # LifecycleMixin's hooks: the handle is the sync session's.
    def _acquire(self) -> Any:
        return self._ops.session._acquire()

    def _release(self) -> None:
        self._ops.session._release()

    @property
    def session(self) -> Session:
        return self._ops.session

    @property
    def closed(self) -> bool:
        return self._ops.session.closed

    async def __aenter__(self: _A) -> _A:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Frees the session; idempotent. Operations in flight raise :class:`ClosedError`;
        returns when they all have."""
        await self._ops.aclose()

    def __repr__(self) -> str:
        return f"<cloudauth.AsyncSession {'closed' if self.closed else 'open'}>"

    async def token(self) -> str:
        """The current valid token: at once when one is cached, else fetched without
        blocking the loop. The token is a credential: do not log it."""
        return await self._ops.token()

    def invalidate(self, token: Optional[str] = None) -> None:
        """As :meth:`Session.invalidate` (never blocks)."""
        self._ops.session.invalidate(token)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: BodyArg = None,
        json: Any = None,
    ) -> Response:
        """As :meth:`Session.request`, awaited (bound a call with ``asyncio.wait_for``: it
        cancels the operation)."""
        return await self._ops.request(method, _with_params(url, params), headers, data, json)

    async def get(
        self, url: str, *, params: ParamsArg = None, headers: HeadersArg = None
    ) -> Response:
        return await self._ops.request("GET", _with_params(url, params), headers, None, None)

    async def post(
        self, url: str, *, headers: HeadersArg = None, data: BodyArg = None, json: Any = None
    ) -> Response:
        return await self._ops.request("POST", url, headers, data, json)

    async def put(
        self, url: str, *, headers: HeadersArg = None, data: BodyArg = None, json: Any = None
    ) -> Response:
        return await self._ops.request("PUT", url, headers, data, json)

    async def patch(
        self, url: str, *, headers: HeadersArg = None, data: BodyArg = None, json: Any = None
    ) -> Response:
        return await self._ops.request("PATCH", url, headers, data, json)

    async def delete(self, url: str, *, headers: HeadersArg = None) -> Response:
        return await self._ops.request("DELETE", url, headers, None, None)


def ops_for(session: Union[Session, AsyncSession]) -> _Ops:
    """The async operations over a session's handle (for HttpxAuth)."""
    if isinstance(session, AsyncSession):
        return session._ops
    return _Ops(session)


__all__ = ["AsyncSession"]

