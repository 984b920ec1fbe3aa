"""``BearerAuth``: a cloudauth session as authentication for the ``requests`` package."""

from __future__ import annotations

from typing import Any, cast

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


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` from a cloudauth :class:`Session`.

    On a 401 answer it drops the token (unless another thread already replaced it), takes a
    fresh one and sends the request once more, as the C library's own requests do::

        requests.get(url, auth=cloudauth.BearerAuth(session))

    A request whose body is a stream that cannot be rewound is not retried: its 401 is
    returned as is.
    """

    def __init__(self, session: Session) -> None:
        if not isinstance(session, Session):
            raise TypeError(f"BearerAuth needs a cloudauth.Session, not {type(session).__name__}")
        self.session = session

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = "Bearer " + self.session.token()
        tell = getattr(r.body, "tell", None)
        if tell is not None:
            try:
                setattr(r, _BODY_POS, tell())
            except OSError:
                setattr(r, _BODY_POS, None)
        # cast: older requests has no annotations here, newer has them.
        cast(Any, r).register_hook("response", self._handle_401)
        return r

    def _handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        request = r.request
        if r.status_code != 401 or getattr(request, _RETRIED, False):
            return r
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            pos = getattr(request, _BODY_POS, None)
            seek = getattr(body, "seek", None)
            if pos is None or seek is None:
                return r  # a consumed stream cannot be sent again
            seek(pos)

        used = request.headers.get("Authorization", "")
        # Drop the token only if it is still the session's current one (atomically, in the
        # library): when several threads get a 401 at once, one new token serves them all.
        if isinstance(used, str) and used.startswith("Bearer "):
            self.session.invalidate(used[len("Bearer ") :])

        # Release the connection before reusing it, as requests' own digest auth does.
        _ = r.content
        r.close()
        retry = request.copy()
        setattr(retry, _RETRIED, True)
        untyped_retry = cast(Any, retry)
        cast(Any, extract_cookies_to_jar)(untyped_retry._cookies, request, r.raw)
        retry.prepare_cookies(untyped_retry._cookies)
        retry.headers["Authorization"] = "Bearer " + self.session.token()
        again = r.connection.send(retry, **kwargs)
        again.history.append(r)
        again.request = retry
        return again
