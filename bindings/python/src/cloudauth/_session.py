"""Session, Response and Headers: the public objects over the C handles."""

from __future__ import annotations

import ctypes
import json as _json
import math
import sys
import threading
import time
import urllib.parse
from ctypes import byref, c_char_p, c_size_t, c_uint64
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    overload,
)

from . import _config, _events, _ffi
from ._body import Source, is_source
from ._errors import (
    BufferTooSmall,
    ClosedError,
    Error,
    HTTPError,
    InternalError,
    InvalidArgument,
    Result,
    Timeout,
    error_for_code,
)
from ._events import EventHandler
from ._lifecycle import LifecycleMixin
from ._options import Options, options_doc as _options_doc
from ._text import _encode

if sys.version_info >= (3, 11):
    from typing import Unpack
elif TYPE_CHECKING:  # only for type checkers: no run-time dependency on typing_extensions
    from typing_extensions import Unpack
if TYPE_CHECKING:
    from ._stream import StreamedResponse

HeadersArg = Union[Mapping[str, str], Iterable[Tuple[str, str]], None]
BodyArg = Union[bytes, bytearray, memoryview, str, None]
# A body sent whole, or one pulled while it is sent: a binary file object or an iterable of
# bytes (see _body).
DataArg = Union[BodyArg, IO[bytes], Iterable[bytes]]
ParamValue = Union[str, int, float, bool]
ParamsArg = Union[
    Mapping[str, Union[ParamValue, Sequence[ParamValue]]],
    Sequence[Tuple[str, ParamValue]],
    str,
    None,
]

# Big enough for an Aspose JWT (about 1 KiB); grown on demand, one per thread.
INITIAL_TOKEN_BUFFER = 2048


class _TokenBuffer(threading.local):
    """Per thread: the buffer the token is copied into and the length out-parameter, made once
    so that a cached token costs one C call and no allocation but the returned str."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(INITIAL_TOKEN_BUFFER)
        self.needed = c_size_t(0)
        self.needed_ref = byref(self.needed)


_token_buffers = _TokenBuffer()


def _header_pairs(headers: HeadersArg) -> List[Tuple[str, str]]:
    """The caller's headers as checked (name, value) pairs; a generator is read once."""
    if headers is None:
        return []
    shape = "headers must be a mapping or an iterable of (name, value) pairs"
    if isinstance(headers, (str, bytes, bytearray)):
        raise TypeError(shape)
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    else:
        try:
            items = iter(headers)
        except TypeError:
            raise TypeError(f"{shape}, not {type(headers).__name__}") from None
    pairs = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(shape)
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"a header name must be a str, not {type(name).__name__}")
        if not isinstance(value, str):
            raise TypeError(f"header {name!r} must have a str value, not {type(value).__name__}")
        pairs.append((name, value))
    return pairs


def _request_args(
    method: str, url: str, headers: HeadersArg, data: BodyArg, json: Any
) -> Tuple[bytes, bytes, Any, int, Optional[bytes], int]:
    """The C arguments of a request, from method to body length (sync and async alike)."""
    method_b = _encode("method", method)
    url_b = _encode("url", url)
    pairs = _header_pairs(headers)
    if json is not None:
        if data is not None:
            raise TypeError("pass data or json, not both")
        body = _json.dumps(json, allow_nan=False, separators=(",", ":")).encode("utf-8")
        if not any(name.lower() == "content-type" for name, _ in pairs):
            pairs.append(("Content-Type", "application/json"))
    else:
        body = _body_bytes(data)
    lines = [_encode(f"header {name!r}", f"{name}: {value}") for name, value in pairs]
    header_array = (c_char_p * len(lines))(*lines) if lines else None
    return (method_b, url_b, header_array, len(lines), body if body else None, len(body))


def _prepare(
    method: str, url: str, headers: HeadersArg, data: DataArg, json: Any
) -> Tuple[Tuple[bytes, bytes, Any, int, Optional[bytes], int], Optional[Source]]:
    """The C arguments, and the body source when ``data`` is a file object or an iterator."""
    if is_source(data):
        if json is not None:
            raise TypeError("pass data or json, not both")
        return _request_args(method, url, headers, None, None), Source(data)
    return _request_args(method, url, headers, data, json), None  # type: ignore[arg-type]


def _body_bytes(data: BodyArg) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return _encode("data", data)
    raise TypeError(
        f"data must be bytes, bytearray, memoryview or str, not {type(data).__name__}"
    )


class Headers(Mapping[str, str]):
    """Response headers: a read-only, case-insensitive mapping.

    ``headers[name]`` is the first value of that header (as ``cloudauth_response_header``
    gives it); :meth:`get_all` gives every value of a repeated header. Iteration yields
    lower-case names, each once, in the order received.
    """

    __slots__ = ("_pairs", "_first")

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        self._pairs: List[Tuple[str, str]] = [(n.lower(), v) for n, v in pairs]
        self._first: Dict[str, str] = {}
        for name, value in self._pairs:
            self._first.setdefault(name, value)

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._first[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def get_all(self, name: str) -> List[str]:
        """Every value of header ``name``, in the order received; [] when absent."""
        lower = name.lower()
        return [v for n, v in self._pairs if n == lower]

    def pairs(self) -> List[Tuple[str, str]]:
        """All (lower-case name, value) pairs, repeated headers included."""
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


class Response:
    """A complete HTTP response, copied out of the library (no native handle is kept)."""

    __slots__ = ("status", "headers", "content", "method", "url")

    def __init__(
        self,
        status: int,
        headers: Headers,
        content: bytes,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        #: The method and URL as passed to :meth:`Session.request` (before redirects).
        self.method = method
        self.url = url

    @property
    def status_code(self) -> int:
        """Alias of :attr:`status`, as in requests."""
        return self.status

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    @property
    def encoding(self) -> str:
        """The charset from Content-Type, else utf-8."""
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"')
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes replaced)."""
        try:
            return self.content.decode(self.encoding, "replace")
        except LookupError:  # an unknown charset
            return self.content.decode("utf-8", "replace")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (``json.JSONDecodeError``, a ValueError, if it is not)."""
        return _json.loads(self.content, **kwargs)

    def raise_for_status(self) -> None:
        """Raises :class:`HTTPError` (a :class:`cloudauth.Error`) for a 4xx or 5xx status."""
        if self.status >= 400:
            raise HTTPError(
                f"HTTP {self.status} for {self.method} {_without_query(self.url)}", self
            )

    def __repr__(self) -> str:
        return f"<cloudauth.Response [{self.status}]>"


class Session(LifecycleMixin):
    """OAuth2 client-credentials session: a cached token and authorized requests.

    ``Session(client_id, client_secret, **options)``. ``client_secret`` may be left out when
    the ``client_secret_file`` option names a file holding it. Every configuration key of the
    C library is a keyword option, typed (see :class:`cloudauth.Options`: a type checker flags
    a misspelled one); an unknown key or a malformed value raises :class:`InvalidArgument`.

    A session is thread-safe: share one across threads. :meth:`close` (or leaving a ``with``
    block) frees it, waiting for calls in progress on other threads to finish; any later use
    raises :class:`ClosedError`.

    ``client_secret`` may be left out when ``client_secret_file`` is given. ``on_event``
    receives every :class:`Event` (on the thread that did the work); events are also logged
    to the ``logging`` logger "cloudauth" (see ``_events.log_event``).

    Options and their defaults:

    """

    def __init__(
        self,
        client_id: Optional[str],
        client_secret: Optional[str] = None,
        *,
        on_event: Optional[EventHandler] = None,
        **options: Unpack[Options],
    ) -> None:
        self._ptr: Optional[Any] = None
        self._closed = False
        self._active = 0
        # Calls take the plain lock (cheaper than entering the Condition); close() waits on it.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # Streamed calls in flight on worker threads (see _stream): close() stops them.
        self._streams: Set[Any] = set()
        lib = _ffi.lib()
        self._lib = lib  # kept so that __del__ works during interpreter shutdown
        self._ptr, self._events_key = _config.new_session(
            lib, client_id, client_secret, options, on_event
        )

    # -- lifetime ---------------------------------------------------------------------------

    def _acquire(self) -> Any:
        with self._lock:
            if self._closed or self._ptr is None:
                raise ClosedError("the session is closed")
            self._active += 1
            return self._ptr

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0 and self._closed:  # only close() ever waits
                self._cond.notify_all()

    def _track(self, exchange: Any) -> None:
        with self._lock:
            self._streams.add(exchange)

    def _untrack(self, exchange: Any) -> None:
        with self._lock:
            self._streams.discard(exchange)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Frees the session once calls in progress on other threads have returned.

        Idempotent. The token is forgotten and connections are closed.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            streams = list(self._streams)
        for exchange in streams:  # a stream nobody reads would hold its call forever
            exchange.stop()
        with self._cond:
            while self._active:
                self._cond.wait()
            handle, self._ptr = self._ptr, None
        if handle:
            self._lib.cloudauth_session_free(handle)
        _events.unregister(self._events_key)

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Only reached when nothing else refers to the session, so no call is in progress.
        handle = getattr(self, "_ptr", None)
        if handle:
            self._ptr = None
            try:
                self._lib.cloudauth_session_free(handle)
                _events.unregister(self._events_key, flush_first=False)
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __repr__(self) -> str:
        return f"<cloudauth.Session {'closed' if self._closed else 'open'}>"

    # -- tokens -----------------------------------------------------------------------------

    def token(self) -> str:
        """The current valid access token, fetched or refreshed when needed.

        The token is a credential: do not log or print it.
        """
        handle = self._acquire()
        try:
            return self._token(handle)
        finally:
            self._release()

    def _token(self, handle: Any) -> str:
        if _on_main_thread():
            # Ctrl-C reaches only the main thread: there a token not at hand is waited for
            # in short slices (see _interruptible_token).
            return self._main_thread_token(handle)
        fn = self._lib.cloudauth_session_token
        tb = _token_buffers
        for _ in range(8):  # a refresh between two calls may bring a longer token
            buf = tb.buf
            try:
                fn(handle, buf, len(buf), tb.needed_ref)
            except BufferTooSmall:
                tb.buf = ctypes.create_string_buffer(tb.needed.value + 1)
                continue
            # The buffer is not wiped: the str returned is a copy no one can wipe, and the
            # library holds the token anyway; wiping would double the cost of a cached token.
            return buf.raw[: tb.needed.value].decode("utf-8")
        raise InternalError("the token kept outgrowing its buffer")

    def _main_thread_token(self, handle: Any) -> str:
        lib = self._lib
        tb = _token_buffers
        for _ in range(8):
            buf = tb.buf
            rc = lib.cloudauth_session_token_cached(handle, buf, len(buf), tb.needed_ref)
            if rc == Result.OK:
                return buf.raw[: tb.needed.value].decode("utf-8")
            if rc == Result.WOULD_BLOCK:
                return _interruptible_token(lib, handle)
            if rc == Result.BUFFER_TOO_SMALL:
                tb.buf = ctypes.create_string_buffer(tb.needed.value + 1)
                continue
            raw = lib.cloudauth_last_error()
            raise error_for_code(rc, raw.decode("utf-8", "replace") if raw else "")
        raise InternalError("the token kept outgrowing its buffer")

    def token_expires_in(self) -> int:
        """Whole seconds the current valid token has left (a token is fetched first if none is
        held), from the token response's ``expires_in`` on a monotonic clock."""
        seconds = c_uint64(0)
        handle = self._acquire()
        try:
            self._lib.cloudauth_session_token_expires_in(handle, byref(seconds))
        finally:
            self._release()
        return seconds.value

    def invalidate(self, token: Optional[str] = None) -> None:
        """Forgets the cached token: the next call fetches a new one.

        With ``token`` (one a server just rejected), forgets it only if it is still the
        current token, so a token another thread already fetched survives.
        """
        encoded = None if token is None else _encode("token", token)
        handle = self._acquire()
        try:
            if token is None:
                self._lib.cloudauth_session_invalidate(handle)
            else:
                self._lib.cloudauth_session_invalidate_token(handle, encoded)
        finally:
            self._release()

    @property
    def origin(self) -> str:
        """The origin the token is meant for, ``base_url``'s as the library serializes it:
        ``"scheme://host[:port]"`` (e.g. ``"https://api.aspose.cloud"``, the default). The
        adapters (:class:`BearerAuth`, :class:`HttpxAuth`) add the token only to requests
        for this origin."""
        handle = self._acquire()
        try:
            raw = self._lib.cloudauth_session_origin(handle)
        finally:
            self._release()
        if raw is None:  # only for a NULL session, which _acquire rules out
            last = self._lib.cloudauth_last_error()
            raise InternalError(last.decode("utf-8", "replace") if last else "no origin")
        return str(raw.decode("ascii"))

    def _check_url(self, url: str) -> None:
        """Raises as :meth:`request` would if ``url`` may not carry the token (plain http to a
        non-loopback host without allow_insecure_http, not http(s)): the library's own rule."""
        encoded = _encode("url", url)
        handle = self._acquire()
        try:
            self._lib.cloudauth_session_check_url(handle, encoded)
        finally:
            self._release()

    # -- requests ---------------------------------------------------------------------------

    @overload
    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
        stream: Literal[False] = False,
    ) -> Response: ...

    @overload
    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
        stream: Literal[True],
    ) -> "StreamedResponse": ...

    @overload
    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
        stream: bool,
    ) -> Response: ...

    def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
        stream: bool = False,
    ) -> Response:
        """Sends an authorized request and returns the whole response.

        ``url`` is absolute or a path joined to ``base_url``. ``params`` (a mapping, whose
        values may be lists, or (name, value) pairs, or a ready query string) is URL-encoded
        and appended to the query. ``headers`` is a mapping or (name, value) pairs. ``data`` is
        the body (str is sent as UTF-8), or a binary file object or an iterable of bytes read
        while the request is sent (see :meth:`stream`); ``json`` is encoded as JSON with
        ``Content-Type: application/json`` unless headers set one. ``timeout`` (seconds)
        bounds this call as a whole, token fetch included, on top of the session's
        ``timeout_ms``: past it the request is cancelled and :class:`Timeout` raised. Any HTTP
        status is a :class:`Response`; failures to get one raise :class:`Error` subclasses.
        ``stream=True`` returns as soon as the status and headers are in: a
        :class:`StreamedResponse` (as :meth:`stream`).
        """
        url = _with_params(url, params)
        if timeout is not None:
            timeout = _check_timeout(timeout)
        args, source = _prepare(method, url, headers, data, json)
        if stream or source is not None:
            streamed: Response = self._streamed(method, url, args, source, timeout, stream)
            return streamed
        lib = self._lib
        handle = self._acquire()
        try:
            if timeout is None and not _on_main_thread():
                out = _ffi.ResponsePtr()
                lib.cloudauth_session_request(handle, *args, byref(out))
            else:
                # On the main thread always the queued form, waited for in short slices, so
                # that Ctrl-C interrupts it at once (it cancels the request).
                out = _request_within(lib, handle, args, timeout, method, url)
        finally:
            self._release()
        try:
            return _read_response(lib, out, method, url)
        finally:
            lib.cloudauth_response_free(out)

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
    ) -> "StreamedResponse":
        """Sends an authorized request and returns once the final answer's status and headers
        are in, with the body still to read, piece by piece as it arrives::

            with session.stream("GET", "/storage/file/big.pdf") as r:
                r.raise_for_status()
                for piece in r.iter_bytes():
                    out.write(piece)

        Arguments as for :meth:`request`. The request runs on a worker thread and hands its
        pieces over a few at a time: while the reader does not take them the download waits,
        so a body of any size holds a few pieces of memory (``max_response_bytes`` still caps
        it). Leaving the ``with`` block (or ``close()``, or dropping the response) before the
        end stops the request; the session stays usable. A failure while the body arrives is
        raised from the iteration; ``timeout`` bounds the whole exchange, reading included.

        ``data`` may be a binary file object: a seekable one is sent with its length from
        where it stands and seeked back there for a resend (after a 401 to our token, or a
        307/308); one that cannot seek, or an iterable of bytes (a generator), is sent chunked
        and never twice (the 401 or the 3xx is then the answer). An exception from its
        ``read`` or the iterator stops the request and is raised.
        """
        url = _with_params(url, params)
        if timeout is not None:
            timeout = _check_timeout(timeout)
        args, source = _prepare(method, url, headers, data, json)
        response: "StreamedResponse" = self._streamed(method, url, args, source, timeout, True)
        return response

    def _streamed(
        self,
        method: str,
        url: str,
        args: Tuple[Any, ...],
        source: Optional[Source],
        timeout: Optional[float],
        pieces: bool,
    ) -> Any:
        """A call through the streaming C functions: with ``pieces`` a StreamedResponse, else
        (a body source) the whole response."""
        from . import _stream  # it builds on this module

        if source is not None:
            _need_body_source()
        exchange = _stream._Exchange(self, method, url, args, source, timeout, pieces)
        if pieces:
            return _stream.open_stream(exchange)
        if timeout is None and not _on_main_thread():
            return exchange.call_here()  # nothing to wait for but the call: no worker
        return _stream.run(exchange)

    def download(
        self,
        method: str,
        url: str,
        file: Any,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
    ) -> Response:
        """Sends an authorized request and writes the response body to ``file`` (anything with
        a ``write(bytes)`` method: an open binary file, ``io.BytesIO``, a socket's
        ``makefile``) piece by piece as it arrives, so a body of any size needs the memory of one
        piece. Arguments as for :meth:`request` (redirects, the 401 resend, ``timeout_ms`` for
        the whole exchange, ``max_response_bytes`` for the whole body). Returns the final
        answer's status and headers with an empty ``content``. An exception raised by
        ``file.write`` stops the request and is raised from here; on any failure ``file`` may
        hold part of the body. ``data`` as for :meth:`stream`.
        """
        url = _with_params(url, params)
        args, source = _prepare(method, url, headers, data, json)
        if source is not None:
            _need_body_source()
        lib = self._lib
        raised: List[BaseException] = []

        def write(_user: Any, piece: Any, length: int) -> int:
            try:
                file.write(ctypes.string_at(piece, length))
                return 0
            except BaseException as e:  # raised again below, after the call returns
                raised.append(e)
                return 1

        sink = _ffi.BodySink(_ffi.HEAD_FN(), _ffi.WRITE_FN(write), None)
        handle = self._acquire()
        out = _ffi.ResponsePtr()
        try:
            try:
                if source is None:
                    lib.cloudauth_session_request_stream(handle, *args, byref(sink), byref(out))
                else:
                    body = source.struct(lambda: False, raised)
                    lib.cloudauth_session_request_stream_body(
                        handle, *args[:4], byref(body), byref(sink), byref(out)
                    )
            except Error:
                if raised:
                    raise raised[0] from None
                raise
        finally:
            self._release()
        try:
            return _read_response(lib, out, method, url)
        finally:
            lib.cloudauth_response_free(out)

    def get(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """GET ``url``; the arguments as for :meth:`request`."""
        return self.request("GET", url, params=params, headers=headers, timeout=timeout)

    def post(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """POST to ``url``; the arguments as for :meth:`request`."""
        return self.request(
            "POST", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    def put(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """PUT to ``url``; the arguments as for :meth:`request`."""
        return self.request(
            "PUT", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    def patch(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        data: DataArg = None,
        json: Any = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """PATCH ``url``; the arguments as for :meth:`request`."""
        return self.request(
            "PATCH", url, params=params, headers=headers, data=data, json=json, timeout=timeout
        )

    def delete(
        self,
        url: str,
        *,
        params: ParamsArg = None,
        headers: HeadersArg = None,
        timeout: Optional[float] = None,
    ) -> Response:
        """DELETE ``url``; the arguments as for :meth:`request`."""
        return self.request("DELETE", url, params=params, headers=headers, timeout=timeout)


# The options table in help(Session), from the one list in _options.
Session.__doc__ = (Session.__doc__ or "") + _options_doc()


def _need_body_source() -> None:
    if not _ffi.has("cloudauth_session_request_stream_body"):
        raise InvalidArgument(
            "this libcloudauth cannot send a body from a file or an iterator "
            "(it has no cloudauth_session_request_stream_body): pass bytes"
        )


def _without_query(url: str) -> str:
    """The URL as messages show it, as the library's own messages do: no user info, query or
    fragment (they may hold secrets)."""
    cut = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = cut.partition("://")
    if not sep:
        return cut
    authority, slash, path = rest.partition("/")
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def _with_params(url: str, params: ParamsArg) -> str:
    if params is None:
        return url
    if isinstance(params, str):
        query = params.lstrip("?")
    elif isinstance(params, (bytes, bytearray)):
        raise TypeError("params must be a mapping, (name, value) pairs or a str, not bytes")
    else:
        try:
            query = urllib.parse.urlencode(params, doseq=True)
        except TypeError:
            raise TypeError(
                "params must be a mapping, (name, value) pairs or a str, "
                f"not {type(params).__name__}"
            ) from None
    if not query:
        return url
    base, hash_, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}{hash_}{fragment}"


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout > 0):
        raise InvalidArgument(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


# A cancelled operation reports back promptly; this bounds the wait should it not.
_CANCEL_GRACE_S = 5.0


# The longest one wait inside the library lasts: Python runs its signal handlers (Ctrl-C's
# KeyboardInterrupt) between two waits, so this bounds how late they run.
_WAIT_SLICE_S = 0.05


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _wait_queue(lib: ctypes.CDLL, queue: Any, seconds: float) -> Any:
    """The completion from ``queue`` within ``seconds`` (math.inf: no bound), else None. The
    wait releases the GIL and lasts at most _WAIT_SLICE_S at a time, so a signal's Python
    handler (Ctrl-C) runs within that; the work itself runs inside these waits."""
    out = _ffi.CompletionPtr()
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        slice_ms = max(1, int(min(left, _WAIT_SLICE_S) * 1000))
        if lib.cloudauth_queue_wait(queue, slice_ms, byref(out)) == Result.OK:
            return out


def _interruptible_token(lib: ctypes.CDLL, handle: Any) -> str:
    """cloudauth_session_token as a queued operation waited for in short slices (the main
    thread's way: Ctrl-C cancels it at once)."""
    queue = lib.cloudauth_queue_new()
    op = _ffi.OpPtr()
    try:
        lib.cloudauth_session_token_queued(handle, queue, 0, byref(op))
        try:
            done = _wait_queue(lib, queue, math.inf)
        except BaseException:  # e.g. KeyboardInterrupt: stop the work too
            lib.cloudauth_op_cancel(op)
            raise
        finally:
            lib.cloudauth_op_free(op)
        c = done.contents
        result = c.result
        token = ctypes.string_at(c.token, c.token_len).decode("utf-8") if c.token else ""
        error = c.error.decode("utf-8", "replace") if c.error else ""
        lib.cloudauth_completion_free(done)
    finally:
        lib.cloudauth_queue_free(queue)
    # The fetch ran on a library thread (cloudauth_session_token_cached started it), whose
    # event was queued before the operation completed: delivered here, before this returns,
    # as a blocking call's events are.
    _events.flush()
    if result == Result.OK and token:
        return token
    raise error_for_code(result, error, "cloudauth_session_token_queued")


def _request_within(
    lib: ctypes.CDLL,
    handle: Any,
    args: Tuple[Any, ...],
    timeout: Optional[float],
    method: str,
    url: str,
) -> Any:
    """cloudauth_session_request in its queued form, cancelled when ``timeout`` (None: no
    bound but the session's) passes or Ctrl-C interrupts it. Returns the response handle (the
    caller frees it). No Python runs on a library thread: the completion comes through a queue
    of this call's own."""
    queue = lib.cloudauth_queue_new()
    op = _ffi.OpPtr()
    try:
        lib.cloudauth_session_request_queued(handle, *args, queue, 0, byref(op))
        try:
            done = _wait_queue(lib, queue, math.inf if timeout is None else timeout)
            timed_out = done is None
            if timed_out:
                lib.cloudauth_op_cancel(op)
                done = _wait_queue(lib, queue, _CANCEL_GRACE_S)
                if done is None:  # the queue goes; a late completion is discarded
                    raise Timeout(
                        f"{method} {_without_query(url)}: no response within "
                        f"timeout={timeout:g} s, and the cancelled request did not stop"
                    )
        except BaseException:  # e.g. KeyboardInterrupt: stop the work too
            lib.cloudauth_op_cancel(op)
            raise
        finally:
            lib.cloudauth_op_free(op)
        c = done.contents
        result, response = c.result, c.response
        error = c.error.decode("utf-8", "replace") if c.error else ""
        lib.cloudauth_completion_free(done)
    finally:
        lib.cloudauth_queue_free(queue)
    # A token fetch it waited for may have run on a library thread, whose events were queued
    # before the request completed: delivered here, before this returns (as for the token).
    _events.flush()
    if result == Result.OK and response:
        return ctypes.cast(response, _ffi.ResponsePtr)
    if timed_out:
        raise Timeout(
            f"{method} {_without_query(url)}: no response within timeout={timeout:g} s; "
            "the request was cancelled"
        )
    raise error_for_code(result, error, "cloudauth_session_request_queued")


def _read_response(lib: ctypes.CDLL, handle: Any, method: str, url: str) -> Response:
    status = lib.cloudauth_response_status(handle)
    length = c_size_t(0)
    body_ptr = lib.cloudauth_response_body(handle, byref(length))
    content = ctypes.string_at(body_ptr, length.value) if length.value else b""
    pairs = []
    name, value = c_char_p(), c_char_p()
    for i in range(lib.cloudauth_response_header_count(handle)):
        lib.cloudauth_response_header_at(handle, i, byref(name), byref(value))
        # Header bytes are opaque in HTTP; latin-1 keeps every byte, as http.client does.
        pairs.append(
            ((name.value or b"").decode("latin-1"), (value.value or b"").decode("latin-1"))
        )
    return Response(status, Headers(pairs), content, method, url)


__all__ = ["DataArg", "Headers", "HTTPError", "Options", "Response", "Session"]
