"""``BearerAuth``: a cloudauth session as authentication for the ``requests`` package."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

try:
    import requests
    from requests.auth import AuthBase
    from requests.cookies import extract_cookies_to_jar
except ImportError as e:  # pragma: no cover - exercised only without requests installed
    raise ImportError(
        "cloudauth.BearerAuth needs the 'requests' package: pip install requests "
        "(or pip install 'cloudauth[requests]')"
    ) from e

from ._origin import Origin, origin_of
from ._session import Session

_RETRIED = "_cloudauth_retried"
_BODY_POS = "_cloudauth_body_pos"


class BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` from a cloudauth :class:`Session`.

    On a 401 answer it drops the token (unless another thread already replaced it), takes a
    fresh one and sends the request once more, as the C library's own requests do::

        requests.get(url, auth=cloudauth.BearerAuth(session))

    The token goes only to the session's origin (scheme, host and port of its ``base_url``,
    :attr:`Session.origin`): a request for any other origin is sent as it is, without it, and
    a redirect that leaves the origin takes it off the next hop. It goes only over a URL the
    library itself would send it to (https, or plain http to a loopback host unless
    allow_insecure_http): :class:`cloudauth.InsecureUrl` otherwise, before anything is sent.
    A 401 from another origin (after a redirect) is returned as is: it says nothing about the
    token, so the token is kept and nothing is resent. A request whose body is a stream that
    cannot be rewound is not resent: its 401 is returned as is, but the token it carried is
    dropped all the same, so the next request fetches a new one. The rule every binding's adapter follows:
    docs/adapters.md.
    """

    def __init__(self, session: Session) -> None:
        if not isinstance(session, Session):
            raise TypeError(f"BearerAuth needs a cloudauth.Session, not {type(session).__name__}")
        self.session = session
        self._origin = origin_of(session.origin)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        origin = origin_of(r.url)
        if origin is None or origin != self._origin:
            return r  # not the session's origin: sent without the token
        self.session._check_url(r.url or "")
        sent = "Bearer " + self.session.token()
        r.headers["Authorization"] = sent
        tell = getattr(r.body, "tell", None)
        if tell is not None:
            try:
                setattr(r, _BODY_POS, tell())
            except OSError:
                setattr(r, _BODY_POS, None)
        # The hook runs for every response of the redirect chain (requests copies hooks to
        # each hop), so it must know where its token went and what it was.
        def on_response(response: requests.Response, **kwargs: Any) -> requests.Response:
            return self._on_response(response, origin, sent, **kwargs)

        r.register_hook("response", on_response)  # type: ignore[no-untyped-call, unused-ignore]
        return r

    def _on_response(
        self, r: requests.Response, origin: Origin, sent: str, **kwargs: Any
    ) -> requests.Response:
        request = r.request
        if r.is_redirect:
            self._strip_off_origin(r)
            return r
        if not self._rejected(r, origin, sent) or getattr(request, _RETRIED, False):
            return r
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            pos = getattr(request, _BODY_POS, None)
            seek = getattr(body, "seek", None)
            if pos is None or seek is None:
                return r  # a consumed stream cannot go again (its token is dropped all the same)
            seek(pos)

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
        fresh = "Bearer " + self.session.token()
        retry.headers["Authorization"] = fresh
        again = r.connection.send(retry, **kwargs)
        again.history.append(r)
        again.request = retry
        self._rejected(again, origin, fresh)  # not resent again, but that token is dropped too
        return again

    def _rejected(self, r: requests.Response, origin: Origin, sent: str) -> bool:
        """Whether ``r`` is a 401 to a request that carried our token ``sent`` at ``origin``:
        then that token is dropped, always, whether or not the request can be sent again. Any
        other 401 neither drops it nor gets it sent. Dropped only if still the session's current
        one (atomically, in the library): when several threads get a 401 at once, one new
        token serves them all."""
        request = r.request
        if r.status_code != 401 or origin_of(request.url) != origin:
            return False
        if request.headers.get("Authorization") != sent:
            return False
        self.session.invalidate(sent[len("Bearer ") :])
        return True

    def _strip_off_origin(self, r: requests.Response) -> None:
        """Before requests follows a redirect that leaves the session's origin, takes the
        token off the request it copies for the next hop (``r.request``). requests strips it
        itself when the host changes, but keeps it on an http to https upgrade of the same
        host on default ports, which is another origin. ``r.history`` then shows that hop's
        request without the header it was sent with."""
        location = r.headers.get("location")
        if not location or "Authorization" not in r.request.headers:
            return
        if origin_of(urljoin(r.url, location)) != self._origin:
            del r.request.headers["Authorization"]
