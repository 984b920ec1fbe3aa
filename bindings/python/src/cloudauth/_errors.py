"""Result codes and the exceptions that carry them: one class per code, all under ``Error``."""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional, Type, Union


class Result(enum.IntEnum):
    """``cloudauth_result``: the values are the C ABI's and never change."""

    OK = 0
    INVALID_ARGUMENT = 1
    BUFFER_TOO_SMALL = 2
    INSECURE_URL = 3
    NETWORK = 4
    TIMEOUT = 5
    AUTH_REJECTED = 6
    TOKEN_ENDPOINT = 7
    BAD_TOKEN_RESPONSE = 8
    TOO_LARGE = 9
    INTERNAL = 10
    CANCELLED = 11
    WOULD_BLOCK = 12

    @property
    def c_name(self) -> str:
        """The name as C spells it, e.g. ``CLOUDAUTH_ERR_TIMEOUT``."""
        return "CLOUDAUTH_OK" if self is Result.OK else f"CLOUDAUTH_ERR_{self.name}"


class Error(Exception):
    """Base class of every error the cloudauth library reports.

    ``code`` is the :class:`Result` (or the raw int for a code this binding does not know);
    ``message`` is the library's one-line explanation (``cloudauth_last_error()``), which never
    contains a secret or a token.
    """

    code: Union[Result, int] = Result.INTERNAL

    def __init__(self, message: str, code: Union[Result, int, None] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        code = self.code.c_name if isinstance(self.code, Result) else self.code
        return f"{type(self).__name__}({self.message!r}, code={code})"


class InvalidArgument(Error, ValueError):
    """A bad argument: unknown configuration key, malformed value, CR/LF in a header, ..."""

    code = Result.INVALID_ARGUMENT


class ClosedError(InvalidArgument):
    """The session was closed; it cannot be used any more."""


class BufferTooSmall(Error):
    """Internal: the token buffer was too small (the binding grows it and retries)."""

    code = Result.BUFFER_TOO_SMALL


class InsecureUrl(Error):
    """Credentials or a token would travel over plain http to a non-loopback host."""

    code = Result.INSECURE_URL


class NetworkError(Error, ConnectionError):
    """DNS, connect, TLS, or a connection reset."""

    code = Result.NETWORK


class Timeout(Error, TimeoutError):
    """A connect or total timeout expired."""

    code = Result.TIMEOUT


class AuthRejected(Error):
    """The token endpoint refused the credentials (OAuth error, HTTP 400/401)."""

    code = Result.AUTH_REJECTED


class TokenEndpointError(Error):
    """The token endpoint kept failing (5xx, 429, other status) after the allowed retries."""

    code = Result.TOKEN_ENDPOINT


class BadTokenResponse(Error):
    """The token response was unusable: not JSON, no access_token, bad expires_in or token_type."""

    code = Result.BAD_TOKEN_RESPONSE


class TooLarge(Error):
    """A response exceeded its size cap."""

    code = Result.TOO_LARGE


class InternalError(Error):
    """A bug in cloudauth, caught at the library boundary."""

    code = Result.INTERNAL


class Cancelled(Error):
    """An asynchronous operation was cancelled, or its session was freed."""

    code = Result.CANCELLED


class WouldBlock(Error):
    """No usable token without network I/O (a non-blocking token read)."""

    code = Result.WOULD_BLOCK


class HTTPError(Error):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx status.

    The request itself succeeded (``code`` is :attr:`Result.OK`): the server answered with an
    error status. ``status`` is that status and ``response`` the whole :class:`Response`.
    The message shows the method and the URL without its query (which may hold secrets).
    """

    code = Result.OK

    def __init__(self, message: str, response: Any) -> None:
        super().__init__(message, Result.OK)
        self.response = response
        self.status: int = response.status


class LibraryNotFoundError(OSError):
    """The native library could not be found or loaded; the message says where it looked."""


EXCEPTIONS: Dict[Result, Type[Error]] = {
    Result.INVALID_ARGUMENT: InvalidArgument,
    Result.BUFFER_TOO_SMALL: BufferTooSmall,
    Result.INSECURE_URL: InsecureUrl,
    Result.NETWORK: NetworkError,
    Result.TIMEOUT: Timeout,
    Result.AUTH_REJECTED: AuthRejected,
    Result.TOKEN_ENDPOINT: TokenEndpointError,
    Result.BAD_TOKEN_RESPONSE: BadTokenResponse,
    Result.TOO_LARGE: TooLarge,
    Result.INTERNAL: InternalError,
    Result.CANCELLED: Cancelled,
    Result.WOULD_BLOCK: WouldBlock,
}


def error_for_code(code: int, message: str, function: Optional[str] = None) -> Error:
    """The exception for a non-OK result code; an unknown code gives a plain ``Error``."""
    try:
        result: Union[Result, int] = Result(code)
    except ValueError:
        result = code
    if not message:
        name = result.c_name if isinstance(result, Result) else f"result {code}"
        message = f"{function or 'cloudauth'} failed with {name}"
    cls = EXCEPTIONS.get(result, Error) if isinstance(result, Result) else Error
    return cls(message, result)
