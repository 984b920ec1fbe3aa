"""``BearerAuth``: a cloudauth session as authentication for the ``requests`` package."""

from __future__ import annotations

from typing import Any, Optional, Tuple
from urllib.parse import urlsplit

try:
    import requests
    from requests.auth import AuthBase
    from requests.cookies import extract_cookies_to_jar
except ImportError as e:  # pragma: no cover - exercised only without requests installed
    raise ImportError(
        "cloudauth.BearerAuth needs the 'requests' package: pip install requests "
        "(or pip install 'cloudauth[requests]')"
    ) from e

from ._session import Session

_RETRIED = "_cloudauth_retried"
_BODY_POS = "_cloudauth_body_pos"
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = Tuple[str, str, Optional[int]]


def _origin(url: Optional[str]) -> Optional[Origin]:
    """Scheme, host and port (the default port made explicit); None if ``url`` has none."""
    try:
        parts = urlsplit(url or "")
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return None
    if not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` from a cloudauth :class:`Session`.

    On a 401 answer it drops the token (unless another thread already replaced it), takes a
    fresh one and sends the request once more, as the C library's own requests do::

        requests.get(url, auth=cloudauth.BearerAuth(session))

    The token goes only to the origin (scheme, host, port) of the request it was attached to,
    and only over a URL the library itself would send it to (https, or plain http to a
    loopback host unless allow_insecure_http): :class:`cloudauth.InsecureUrl` otherwise,
    before anything is sent. A 401 from another origin (after a redirect, which requests
    sends without the token) is returned as is: it says nothing about the token, so the
    token is kept and nothing is resent. A request whose body is a stream that cannot be
    rewound is not retried either.
    """

    def __init__(self, session: Session) -> None:
        if not isinstance(session, Session):
            raise TypeError(f"BearerAuth needs a cloudauth.Session, not {type(session).__name__}")
        self.session = session

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        self.session._check_url(r.url or "")
        sent = "Bearer " + self.session.token()
        r.headers["Authorization"] = sent
        tell = getattr(r.body, "tell", None)
        if tell is not None:
            try:
                setattr(r, _BODY_POS, tell())
            except OSError:
                setattr(r, _BODY_POS, None)
        origin = _origin(r.url)

        # The hook runs for every response of the redirect chain (requests copies hooks to
        # each hop), so it must know where its token went and what it was.
        def handle_401(response: requests.Response, **kwargs: Any) -> requests.Response:
            return self._handle_401(response, origin, sent, **kwargs)

        r.register_hook("response", handle_401)  # type: ignore[no-untyped-call, unused-ignore]
        return r

    def _handle_401(
        self, r: requests.Response, origin: Optional[Origin], sent: str, **kwargs: Any
    ) -> requests.Response:
        request = r.request
        if r.status_code != 401 or getattr(request, _RETRIED, False):
            return r
        # Only a 401 to a request that carried our token, to the origin it was attached to,
        # rejects the token; any other 401 neither drops it nor gets it sent.
        if origin is None or _origin(request.url) != origin:
            return r
        if request.headers.get("Authorization") != sent:
            return r
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            pos = getattr(request, _BODY_POS, None)
            seek = getattr(body, "seek", None)
            if pos is None or seek is None:
                return r  # a consumed stream cannot be sent again
            seek(pos)

        # Drop the token only if it is still the session's current one (atomically, in the
        # library): when several threads get a 401 at once, one new token serves them all.
        self.session.invalidate(sent[len("Bearer ") :])

        # Release the connection before reusing it, as requests' own digest auth does.
        _ = r.content
        r.close()
        retry = request.copy()
        setattr(retry, _RETRIED, True)
        # requests' typing differs between versions of its stubs: the ignores say so.
        extract_cookies_to_jar(  # type: ignore[no-untyped-call, unused-ignore]
            retry._cookies, request, r.raw  # type: ignore[attr-defined, arg-type, unused-ignore]
        )
        retry.prepare_cookies(retry._cookies)  # type: ignore[attr-defined, arg-type, unused-ignore]
        retry.headers["Authorization"] = "Bearer " + self.session.token()
        again = r.connection.send(retry, **kwargs)
        again.history.append(r)
        again.request = retry
        return again
