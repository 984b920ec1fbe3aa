"""Streamed responses: the body read piece by piece while it arrives (``Session.stream``,
``Session.request(..., stream=True)``, ``AsyncSession.stream``).

The C call pushes: the library calls ``write`` on the thread that made the call, once per piece.
A pull iterator therefore makes the call on a worker thread of its own (an :class:`_Exchange`),
and the pieces reach the consumer through a queue of at most ``_CAPACITY`` of them: ``write``
waits while it is full (back-pressure, so memory stays at a few pieces whatever the body's
size), and returns non-zero, which stops the request, once the consumer closed or left the
response or its deadline passed. Whatever ends the call (a failure, the cap, a timeout, an
exception from a request body source) is raised in the consumer's thread.

The same worker runs a request whose body comes from a file object or an iterator when the
caller must be able to stop waiting for it (``timeout=``, the main thread's Ctrl-C).
"""

from __future__ import annotations

import asyncio
import ctypes
import math
import threading
import time
import weakref
from collections import deque
from ctypes import byref
from typing import Any, AsyncIterator, Deque, Iterator, List, Optional, Tuple

from . import _ffi
from ._body import Source
from ._errors import Cancelled, ClosedError, Error, InvalidArgument, Timeout
from ._session import Response, Session, _read_response, _without_query

# Pieces held between the library and the consumer; the library's pieces are at most a few
# tens of KiB (hyper's reads), so this bounds what a stream holds to well under a MiB.
_CAPACITY = 4

# How long close() waits for the worker to stop: at once when pieces are flowing; a request
# stalled inside the library stops at its next callback or at the session's timeout_ms.
_STOP_GRACE_S = 5.0

# The worker's longest wait on a full queue: it then looks whether the interpreter is
# shutting down (the main thread has ended), so that an abandoned stream cannot hold up exit.
_PUT_SLICE_S = 0.25


def _set_done(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


class _Exchange:
    """One request made on a worker thread, and the queue its answer comes back through."""

    def __init__(
        self,
        session: Session,
        method: str,
        url: str,
        args: Tuple[Any, ...],
        source: Optional[Source],
        timeout: Optional[float],
        pieces: bool,
    ) -> None:
        self._session = session
        self._lib = session._lib
        self.method, self.url = method, url
        self._args = args  # method, url, headers, n_headers, body, body_len (as _request_args)
        self._source = source
        self._timeout = timeout
        self.deadline = math.inf if timeout is None else time.monotonic() + timeout
        self._want_pieces = pieces
        self._cond = threading.Condition(threading.RLock())  # _timed_out stops within it
        self._pieces: Deque[bytes] = deque()
        self.high_water = 0  # the most pieces ever queued at once (tests check the bound)
        self.head: Optional[Response] = None
        self.result: Optional[Response] = None  # without pieces: the whole response
        self.error: Optional[BaseException] = None
        self.done = False
        self.stopped: Optional[str] = None  # "closed" or "timeout": the consumer stopped it
        self.closed = False  # close() was called: reading on is an error
        self._raised: List[BaseException] = []  # from our callbacks or the body source
        # Event loops' futures waiting for the next change (an aiter_bytes and an aclose may
        # wait at once).
        self._waiters: List[Tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]] = []
        self._thread = threading.Thread(target=self._work, name="cloudauth-stream", daemon=False)

    def start(self) -> None:
        self._session._track(self)
        self._thread.start()

    # -- the worker thread ------------------------------------------------------------------

    def _work(self) -> None:
        error: Optional[BaseException] = None
        result: Optional[Response] = None
        try:
            result = self._call()
        except BaseException as e:  # handed to the consumer
            error = e
        finally:
            self._session._untrack(self)
        with self._cond:
            if error is not None:
                self.error = self._explain(error)
            elif self.head is None and result is not None:
                self.head = result  # no body arrived (or no pieces were asked for)
            self.result = result
            self.done = True
            self._notify()

    def call_here(self) -> Response:
        """The call on the calling thread, without a worker (no pieces: nothing to hand over)."""
        result = self._call()
        assert result is not None
        return result

    def _call(self) -> Optional[Response]:
        lib = self._lib
        raised = self._raised
        sink = None
        if self._want_pieces:
            sink = _ffi.BodySink(_ffi.HEAD_FN(self._on_head), _ffi.WRITE_FN(self._on_write), None)
        out = _ffi.ResponsePtr()
        handle = self._session._acquire()
        try:
            if self._source is None:
                if sink is None:  # not made: the plain call needs no worker
                    raise InvalidArgument("nothing to stream")
                lib.cloudauth_session_request_stream(handle, *self._args, byref(sink), byref(out))
            else:
                method_b, url_b, headers, n_headers = self._args[:4]
                source = self._source.struct(self._expired, raised)
                lib.cloudauth_session_request_stream_body(
                    handle,
                    method_b,
                    url_b,
                    headers,
                    n_headers,
                    byref(source),
                    None if sink is None else byref(sink),
                    byref(out),
                )
        except Error:
            if raised:
                raise raised[0] from None
            raise
        finally:
            self._session._release()
        try:
            return _read_response(lib, out, self.method, self.url)
        finally:
            lib.cloudauth_response_free(out)

    def _explain(self, error: BaseException) -> BaseException:
        """What the consumer gets for the call's failure: its own stop says why."""
        if self.stopped == "timeout" and isinstance(error, Error):
            return Timeout(
                f"{self.method} {_without_query(self.url)}: not done within "
                f"timeout={self._timeout:g} s; the request was stopped"
            )
        if self.stopped == "closed" and isinstance(error, Error):
            return Cancelled("the streamed response was closed")
        return error

    def _expired(self) -> bool:
        """For the body source: whether the request should stop (closed, or past the deadline)."""
        if self.stopped is None and time.monotonic() >= self.deadline:
            with self._cond:
                self.stopped = self.stopped or "timeout"
        return self.stopped is not None

    def _on_head(self, _user: Any, head: Any) -> int:
        try:
            response = _read_response(
                self._lib, ctypes.cast(head, _ffi.ResponsePtr), self.method, self.url
            )
        except BaseException as e:  # e.g. MemoryError: raised in the consumer
            self._raised.append(e)
            return 1
        with self._cond:
            if self.stopped is not None:
                return 1
            self.head = response
            self._notify()
        return 0

    def _on_write(self, _user: Any, data: Any, length: int) -> int:
        try:
            piece = ctypes.string_at(data, length)
        except BaseException as e:
            self._raised.append(e)
            return 1
        main = threading.main_thread()
        with self._cond:
            while len(self._pieces) >= _CAPACITY and self.stopped is None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.stopped = "timeout"
                    break
                if not main.is_alive():  # the interpreter is exiting: let it
                    self.stopped = "closed"
                    break
                self._cond.wait(min(left, _PUT_SLICE_S))
            if self.stopped is not None:
                return 1
            self._pieces.append(piece)
            self.high_water = max(self.high_water, len(self._pieces))
            self._notify()
        return 0

    def _notify(self) -> None:
        """Wakes the consumer (called with the lock held)."""
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_set_done, future)
            except RuntimeError:  # that loop is closed
                pass

    # -- the consumer -----------------------------------------------------------------------

    def stop(self, why: str = "closed") -> None:
        """Stops the request at its next callback; the pieces held are dropped."""
        with self._cond:
            if self.stopped is None and not self.done:
                self.stopped = why
            self.closed = self.closed or why == "closed"
            self._pieces.clear()
            self._notify()

    def _timed_out(self) -> Timeout:
        self.stop("timeout")
        return Timeout(
            f"{self.method} {_without_query(self.url)}: not done within "
            f"timeout={self._timeout:g} s; the request was stopped"
        )

    def _take(self, want_head: bool) -> Tuple[bool, Optional[bytes]]:
        """With the lock held: (True, what is ready) or (False, None) to wait on. What is ready
        is the next piece, or None at the end (the head, with ``want_head``)."""
        if self.closed:
            raise ClosedError("the streamed response is closed")
        if self.stopped == "timeout" or time.monotonic() >= self.deadline:
            raise self._timed_out()  # what is still queued came too late
        if want_head:
            if self.head is not None:
                return True, None
        elif self._pieces:
            piece = self._pieces.popleft()
            self._cond.notify_all()  # the worker may be waiting for room
            return True, piece
        if self.done:
            if self.error is not None:
                raise self.error
            return True, None
        return False, None

    def wait(self, want_head: bool = False) -> Optional[bytes]:
        """The next piece (None at the end), or with ``want_head`` once the head is in; raises
        what ended the call. Waits at most until the deadline."""
        with self._cond:
            while True:
                ready, piece = self._take(want_head)
                if ready:
                    return piece
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise self._timed_out()
                self._cond.wait(None if left == math.inf else left)

    async def await_(self, want_head: bool = False) -> Optional[bytes]:
        """As :meth:`wait`, without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                ready, piece = self._take(want_head)
                if ready:
                    return piece
                future: "asyncio.Future[None]" = loop.create_future()
                self._waiters.append((loop, future))
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise self._timed_out()
            try:
                await asyncio.wait_for(future, None if left == math.inf else left)
            except asyncio.TimeoutError:
                raise self._timed_out() from None

    def join(self) -> None:
        self._thread.join(_STOP_GRACE_S)

    async def ajoin(self) -> None:
        """Waits (without blocking the loop) for the worker to end, at most _STOP_GRACE_S."""
        loop = asyncio.get_running_loop()
        end = time.monotonic() + _STOP_GRACE_S
        while time.monotonic() < end:
            with self._cond:
                if self.done:
                    return
                future: "asyncio.Future[None]" = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, max(0.0, end - time.monotonic()))
            except asyncio.TimeoutError:
                return


def run(exchange: _Exchange) -> Response:
    """Starts ``exchange`` (made with pieces=False) and returns its whole response."""
    exchange.start()
    try:
        exchange.wait(want_head=True)
    except BaseException:  # e.g. KeyboardInterrupt or Timeout: stop the work too
        exchange.stop()
        raise
    assert exchange.result is not None
    return exchange.result


async def arun(exchange: _Exchange) -> Response:
    """As :func:`run`, awaited."""
    exchange.start()
    try:
        await exchange.await_(want_head=True)
    except BaseException:  # e.g. the task was cancelled
        exchange.stop()
        raise
    assert exchange.result is not None
    return exchange.result


class _Streamed(Response):
    """What the sync and async streamed responses share: the head, and the exchange."""

    __slots__ = ("_exchange", "_content", "_finalizer", "__weakref__")

    def __init__(self, exchange: _Exchange, head: Response) -> None:
        # Not Response.__init__: ``content`` is a property here (read on demand).
        self.status = head.status
        self.headers = head.headers
        self.method = head.method
        self.url = head.url
        self._exchange = exchange
        self._content: Optional[bytes] = None
        # A response left without close() (dropped, or its iterator abandoned) stops the
        # request too: the worker refers to the exchange only, never to this object.
        self._finalizer = weakref.finalize(self, exchange.stop)

    @property
    def closed(self) -> bool:
        """True once the body was read to its end or the response was closed."""
        e = self._exchange
        return e.closed or (e.done and not e._pieces)

    @staticmethod
    def _chunk_size(chunk_size: Optional[int]) -> Optional[int]:
        if chunk_size is None:
            return None
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
            raise TypeError(f"chunk_size must be an int or None, not {type(chunk_size).__name__}")
        if chunk_size <= 0:
            raise InvalidArgument(f"chunk_size must be positive, not {chunk_size}")
        return chunk_size

    def __repr__(self) -> str:
        return f"<cloudauth.{type(self).__name__} [{self.status}]>"


def _rechunk(pieces: Iterator[bytes], size: Optional[int]) -> Iterator[bytes]:
    if size is None:
        yield from pieces
        return
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


class StreamedResponse(_Streamed):
    """A response whose body has not been read yet: :attr:`status` and :attr:`headers` are
    there, the body comes through :meth:`iter_bytes` (or :meth:`iter_content`) piece by piece,
    holding a few pieces at most however large it is, or whole through :attr:`content` /
    :meth:`read`. Close it (or use it in a ``with`` block) when done: closing before the end
    stops the request, and so does dropping it. A failure while the body arrives (the
    connection, ``max_response_bytes``, ``timeout_ms``, ``timeout=``, an exception from the
    request body's file or iterator) is raised from the iteration.
    """

    __slots__ = ()

    def iter_bytes(self, chunk_size: Optional[int] = None) -> Iterator[bytes]:
        """The body in pieces as they arrive, or (``chunk_size``) in pieces of that many bytes
        (the last may be shorter). After :attr:`content` was read, that content again."""
        size = self._chunk_size(chunk_size)
        if self._content is not None:
            return _rechunk(iter((self._content,)), size)
        return _rechunk(self._pieces(), size)

    def iter_content(self, chunk_size: Optional[int] = None) -> Iterator[bytes]:
        """:meth:`iter_bytes` under the name requests gives it."""
        return self.iter_bytes(chunk_size)

    def _pieces(self) -> Iterator[bytes]:
        exchange = self._exchange
        while True:
            piece = exchange.wait()
            if piece is None:
                exchange.join()
                return
            yield piece

    def read(self) -> bytes:
        """The rest of the body, whole (``max_response_bytes`` bounds it)."""
        content = self._content
        if content is None:
            content = self._content = b"".join(self._pieces())
        return content

    @property
    def content(self) -> bytes:  # type: ignore[override]
        """The whole body, read on first use (:meth:`read`)."""
        return self.read()

    def close(self) -> None:
        """Stops the request if the body has not all arrived; idempotent."""
        self._exchange.stop()
        self._exchange.join()

    def __enter__(self) -> "StreamedResponse":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncStreamedResponse(_Streamed):
    """:class:`StreamedResponse` for asyncio: ``async for piece in r.aiter_bytes()``,
    ``await r.aread()``, ``await r.aclose()``. The request runs on a worker thread; the loop
    only waits for its pieces. :attr:`content` is there after :meth:`aread`."""

    __slots__ = ()

    async def aiter_bytes(self, chunk_size: Optional[int] = None) -> AsyncIterator[bytes]:
        """As :meth:`StreamedResponse.iter_bytes`, without blocking the loop."""
        size = self._chunk_size(chunk_size)
        if self._content is not None:
            for chunk in _rechunk(iter((self._content,)), size):
                yield chunk
            return
        buffer = bytearray()
        exchange = self._exchange
        while True:
            piece = await exchange.await_()
            if piece is None:
                break
            if size is None:
                yield piece
                continue
            buffer += piece
            while len(buffer) >= size:
                yield bytes(buffer[:size])
                del buffer[:size]
        if buffer:
            yield bytes(buffer)
        await exchange.ajoin()

    async def aread(self) -> bytes:
        """The rest of the body, whole."""
        content = self._content
        if content is None:
            content = self._content = b"".join([piece async for piece in self.aiter_bytes()])
        return content

    @property
    def content(self) -> bytes:  # type: ignore[override]
        """The body read by :meth:`aread` (InvalidArgument before that)."""
        if self._content is None:
            raise InvalidArgument("the body has not been read: await response.aread() first")
        return self._content

    async def aclose(self) -> None:
        """Stops the request if the body has not all arrived; idempotent."""
        self._exchange.stop()
        await self._exchange.ajoin()

    async def __aenter__(self) -> "AsyncStreamedResponse":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def open_stream(exchange: _Exchange) -> StreamedResponse:
    """Starts ``exchange`` and returns its response once the head is in."""
    exchange.start()
    try:
        exchange.wait(want_head=True)
    except BaseException:
        exchange.stop()
        raise
    assert exchange.head is not None
    return StreamedResponse(exchange, exchange.head)


async def aopen_stream(exchange: _Exchange) -> AsyncStreamedResponse:
    """As :func:`open_stream`, awaited."""
    exchange.start()
    try:
        await exchange.await_(want_head=True)
    except BaseException:
        exchange.stop()
        raise
    assert exchange.head is not None
    return AsyncStreamedResponse(exchange, exchange.head)


__all__ = ["AsyncStreamedResponse", "StreamedResponse"]
