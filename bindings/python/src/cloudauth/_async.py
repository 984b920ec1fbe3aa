"""``AsyncSession``: asyncio over the C async calls in their completion-queue form
(``cloudauth_session_request_queued``, ``cloudauth_session_token_queued``,
``cloudauth_queue_wait``, ``cloudauth_op_cancel``).

Threads: the work runs on the library's threads, and no Python code runs there. Each event
loop has one completion queue, whose descriptor (``cloudauth_queue_fd``) the loop watches with
``add_reader``; when it is readable, :meth:`_LoopQueue.drain` takes every completion without
waiting and resolves their futures, so 64 answers arriving together cost one wake-up of the
loop. A library thread never takes the GIL: nothing can run Python on it while the interpreter
shuts down (it used to, through ctypes callbacks, and a process that exited with requests in
flight could crash).

Lifetimes: the library gets an integer tag, a key into ``_pending`` (never a pointer to a
Python object), whose entry holds the future until the completion was taken. A queue is freed
with its loop's ``_LoopQueue``; what arrives after that is discarded by the library.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import logging
import os
import sys
import threading
import weakref
from ctypes import byref
from typing import TYPE_CHECKING, Any, Dict, Generator, Optional, Tuple, TypeVar, Union, cast

from . import _ffi, _stream
from ._body import is_source
from ._errors import ClosedError, InternalError, Result, Timeout, error_for_code
from ._events import EventHandler
from ._lifecycle import LifecycleMixin
from ._options import Options
from ._session import (
    BodyArg,
    DataArg,
    HeadersArg,
    ParamsArg,
    Response,
    Session,
    _read_response,
    _check_timeout,
    _need_body_source,
    _prepare,
    _request_args,
    _token_buffers,
    _with_params,
    _without_query,
)

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:  # only for type checkers
    from typing_extensions import Unpack

logger = logging.getLogger("cloudauth")

_A = TypeVar("_A", bound="AsyncSession")


class _Pending:
    __slots__ = ("key", "future", "ops", "method", "url")

    def __init__(
        self, key: int, future: "asyncio.Future[Any]", ops: "_Ops", method: str, url: str
    ) -> None:
        self.key = key
        self.future = future
        self.ops = ops
        self.method = method
        self.url = url


_pending: Dict[int, _Pending] = {}
_keys = itertools.count(1)  # next() is atomic under the GIL


def _failure(ops: "_Ops", result: int, error: Optional[bytes]) -> BaseException:
    message = error.decode("utf-8", "replace") if error else ""
    if result == Result.CANCELLED and ops.closing:
        return ClosedError("the session was closed while the operation was in flight")
    return error_for_code(result, message)


def _outcome(lib: ctypes.CDLL, entry: _Pending, c: "_ffi.Completion") -> Any:
    """The completion's value or exception; frees its response in every case."""
    if c.response:
        response = ctypes.cast(c.response, _ffi.ResponsePtr)
        try:
            return _read_response(lib, response, entry.method, entry.url)
        except Exception as e:  # e.g. MemoryError: the awaiting task gets it
            return e
        finally:
            lib.cloudauth_response_free(response)
    if c.result == Result.OK and c.token:
        return ctypes.string_at(c.token, c.token_len).decode("utf-8")
    return _failure(entry.ops, c.result, c.error)


class _LoopQueue:
    """One event loop's completion queue, drained on that loop when its descriptor is
    readable."""

    __slots__ = ("loop", "queue", "fd", "pid", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        lib = _ffi.quick()
        self.loop = loop
        self.queue = lib.cloudauth_queue_new()
        self.fd = lib.cloudauth_queue_fd(self.queue)
        self.pid = os.getpid()
        weakref.finalize(self, _free_queue, self.queue, self.pid)
        loop.add_reader(self.fd, self.drain)

    def drain(self) -> None:
        lib = _ffi.quick()
        out = _ffi.CompletionPtr()
        while True:
            rc = lib.cloudauth_queue_wait(self.queue, 0, byref(out))
            if rc != Result.OK:
                if rc != Result.TIMEOUT:  # a child of fork(): the parent's queue is refused
                    self.loop.remove_reader(self.fd)
                return
            try:
                c = out.contents
                entry = _pending.pop(c.tag, None)
                if entry is None:  # cannot happen; never leak a response
                    if c.response:
                        lib.cloudauth_response_free(ctypes.cast(c.response, _ffi.ResponsePtr))
                    continue
                outcome = _outcome(lib, entry, c)
            finally:
                lib.cloudauth_completion_free(out)
            future = entry.future
            if not future.done():  # a cancelled task's future is done
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
            entry.ops.finished(entry.key)


def _free_queue(queue: Any, pid: int) -> None:
    if pid == os.getpid():  # a child of fork() leaves the parent's alone
        _ffi.quick().cloudauth_queue_free(queue)  # what still arrives is discarded
    _forget_closed_loops()


def _forget_closed_loops() -> None:
    """Drops the operations of loops that closed with them in flight: their completions
    will never be taken (asyncio.run cancels what is left and closes its loop)."""
    for key, entry in list(_pending.items()):
        if entry.future.get_loop().is_closed():
            _pending.pop(key, None)
            entry.ops.keys.discard(key)


_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue]" = (
    weakref.WeakKeyDictionary()
)
_queues_lock = threading.Lock()

if hasattr(os, "register_at_fork"):  # a child makes queues of its own
    os.register_at_fork(after_in_child=_queues.clear)


def _set_done(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _queue_for(loop: asyncio.AbstractEventLoop) -> _LoopQueue:
    lq = _queues.get(loop)
    if lq is None or lq.pid != os.getpid():
        with _queues_lock:
            lq = _queues.get(loop)
            if lq is None or lq.pid != os.getpid():
                lq = _queues[loop] = _LoopQueue(loop)
    return lq


class _Ops:
    """The async operations of one session handle (an AsyncSession's, or a Session's used
    by HttpxAuth in an AsyncClient): starting them, awaiting them, cancelling them."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lib = _ffi.quick()  # the calls made here never wait: keep the GIL
        # The keys of operations started and not yet completed.
        self.keys: "set[int]" = set()
        self.closing = False
        self.idle: Optional["asyncio.Future[None]"] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._queue: Optional[_LoopQueue] = None

    def finished(self, key: int) -> None:
        """An operation completed (on its loop); wakes aclose() after the last one."""
        self.keys.discard(key)
        idle = self.idle
        if idle is not None and not self.keys:
            try:
                idle.get_loop().call_soon_threadsafe(_set_done, idle)
            except RuntimeError:  # that loop is closed
                pass

    def _start(self, method: str, url: str) -> Tuple[int, "asyncio.Future[Any]", Any]:
        loop = asyncio.get_running_loop()
        lq = self._queue
        if loop is not self._loop or lq is None or lq.pid != os.getpid():
            self._loop, self._queue = loop, _queue_for(loop)
            lq = self._queue
        key = next(_keys)
        future = loop.create_future()
        _pending[key] = _Pending(key, future, self, method, url)
        return key, future, lq.queue

    async def _wait(self, key: int, future: "asyncio.Future[Any]", op: Any) -> Any:
        self.keys.add(key)
        try:
            return await future
        except asyncio.CancelledError:
            # The task was cancelled: stop the work. The completion still arrives
            # (CANCELLED), finds the future done and only updates the count.
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
        key, future, queue = self._start("", "")
        op = _ffi.OpPtr()
        handle = self.session._acquire()
        try:
            self.lib.cloudauth_session_token_queued(handle, queue, key, byref(op))
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
        key, future, queue = self._start(method, url)
        op = _ffi.OpPtr()
        handle = self.session._acquire()
        try:
            self.lib.cloudauth_session_request_queued(handle, *args, queue, key, byref(op))
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
            # Streams first, without blocking the loop: close() below would wait for them.
            streams = list(self.session._streams)
            for exchange in streams:
                exchange.stop()
            for exchange in streams:
                await exchange.ajoin()
            # Frees the handle; operations in flight finish with CANCELLED (ClosedError).
            self.session.close()
        _forget_closed_loops()
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
        client_id: Optional[str],
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
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """As :meth:`Session.request`, awaited. ``timeout`` (seconds) bounds the call as a
        whole: past it the operation is cancelled and :class:`Timeout` raised (as
        ``asyncio.wait_for`` would, which also works). ``data`` may be a binary file object or
        an iterable of bytes, as for :meth:`Session.stream` (read on a worker thread)."""
        if is_source(data):
            response: Response = await self._exchange(
                method, url, params, headers, data, json, timeout, pieces=False
            )
            return response
        body = cast(BodyArg, data)  # not a source: bytes, str or None
        call = self._ops.request(method, _with_params(url, params), headers, body, json)
        if timeout is None:
            return await call
        timeout = _check_timeout(timeout)
        try:
            return await asyncio.wait_for(call, timeout)
        except asyncio.TimeoutError:
            raise Timeout(
                f"{method} {_without_query(url)}: no response within timeout={timeout:g} s; "
                "the request was cancelled"
            ) from None

    def stream(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> "_StreamOpener":
        """:meth:`Session.stream` for asyncio: the response once its status and headers are
        in, its body to read with ``async for piece in r.aiter_bytes()``::

            async with session.stream("GET", "/storage/file/big.pdf") as r:
                async for piece in r.aiter_bytes():
                    ...

        (or ``r = await session.stream(...)``, then ``await r.aclose()``). The request runs on
        a worker thread; the loop only waits for its pieces, a few at a time. Leaving the block
        early stops the request."""
        return _StreamOpener(
            self._exchange(method, url, params, headers, data, json, timeout, pieces=True)
        )

    async def _exchange(
        self,
        method: str,
        url: str,
        params: ParamsArg,
        headers: HeadersArg,
        data: DataArg,
        json: Any,
        timeout: Optional[float],
        pieces: bool,
    ) -> Any:
        url = _with_params(url, params)
        if timeout is not None:
            timeout = _check_timeout(timeout)
        args, source = _prepare(method, url, headers, data, json)
        if source is not None:
            _need_body_source()
        exchange = _stream._Exchange(self.session, method, url, args, source, timeout, pieces)
        if pieces:
            return await _stream.aopen_stream(exchange)
        return await _stream.arun(exchange)

    async def get(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        timeout: Optional[float] = None,
    ) -> Response:
        return await self.request("GET", url, params=params, headers=headers, timeout=timeout)

    async def post(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        return await self.request(
            "POST", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    async def put(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        return await self.request(
            "PUT", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    async def patch(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        return await self.request(
            "PATCH", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    async def delete(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        timeout: Optional[float] = None,
    ) -> Response:
        return await self.request("DELETE", url, params=params, headers=headers, timeout=timeout)


class _StreamOpener:
    """What :meth:`AsyncSession.stream` returns: ``async with`` it, or await it."""

    __slots__ = ("_opening", "_response")

    def __init__(self, opening: Any) -> None:
        self._opening = opening
        self._response: Optional[_stream.AsyncStreamedResponse] = None

    def __await__(self) -> Generator[Any, None, _stream.AsyncStreamedResponse]:
        response: _stream.AsyncStreamedResponse = yield from self._opening.__await__()
        return response

    async def __aenter__(self) -> _stream.AsyncStreamedResponse:
        self._response = await self._opening
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def ops_for(session: Union[Session, AsyncSession]) -> _Ops:
    """The async operations over a session's handle (for HttpxAuth)."""
    if isinstance(session, AsyncSession):
        return session._ops
    return _Ops(session)


__all__ = ["AsyncSession"]

