"""``HttpxAuth``: a cloudauth session as an ``httpx.Auth``, for ``httpx.Client`` and
``httpx.AsyncClient``."""

from __future__ import annotations

from typing import AsyncGenerator, Generator, Optional, Union

try:
    import httpx
except ImportError as e:  # pragma: no cover - exercised only without httpx installed
    raise ImportError(
        "cloudauth.HttpxAuth needs the 'httpx' package: pip install httpx "
        "(or pip install 'cloudauth[httpx]')"
    ) from e

from ._async import AsyncSession, _Ops, ops_for
from ._origin import origin_of
from ._session import Session


class HttpxAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` from a cloudauth session to httpx requests::

        httpx.Client(auth=cloudauth.HttpxAuth(session))            # a Session
        httpx.AsyncClient(auth=cloudauth.HttpxAuth(async_session))  # an AsyncSession

    Either kind of session works with either client; with an ``AsyncClient`` the token is
    taken without blocking the event loop (at once when cached, else fetched on the
    library's threads). The rules are the session's own:

    - a 401 to a request that carried the token always drops that token (unless another
      caller already replaced it), then resends the request once with a fresh one when the
      body can be replayed;
    - the token goes only to the session's origin (scheme, host and port of its
      ``base_url``, :attr:`Session.origin`): a request for another origin is sent without
      it; httpx follows redirects inside one step of this flow and strips ``Authorization``
      when a redirect leaves the origin (it keeps it only for an http -> https upgrade of
      the same host on default ports), and a 401 from another origin is returned as it is;
    - never over plain http to a host other than loopback (:class:`InsecureUrl`), unless the
      session was made with ``allow_insecure_http=True``: the library's own check.

    A request with a streaming body that cannot be replayed is not resent: its 401 is
    returned as it is, the rejected token still dropped, so the next request fetches a new
    one (a multipart upload of seekable files, e.g. ``io.BytesIO``, is resent).
    The rule is the one every binding's adapter follows: docs/adapters.md.
    """

    def __init__(self, session: Union[Session, AsyncSession]) -> None:
        if not isinstance(session, (Session, AsyncSession)):
            raise TypeError(
                "HttpxAuth needs a cloudauth.Session or cloudauth.AsyncSession, "
                f"not {type(session).__name__}"
            )
        self.session = session
        self._ops: Optional[_Ops] = None
        self._origin = origin_of(self._sync_session().origin)

    def _sync_session(self) -> Session:
        s = self.session
        return s.session if isinstance(s, AsyncSession) else s

    def _check(self, request: httpx.Request) -> None:
        # The session's rule (plain http only to loopback, unless allow_insecure_http); never
        # blocks, so it is fine on an event loop too.
        self._sync_session()._check_url(str(request.url))

    def _ours(self, request: httpx.Request) -> bool:
        """Whether ``request`` is for the session's origin, the only one that gets the token."""
        return origin_of(str(request.url)) == self._origin

    def _rejected(self, response: httpx.Response, sent: str) -> bool:
        """A 401 from the session's origin to a hop that carried ``sent`` (not from a
        redirect target)."""
        if response.status_code != 401:
            return False
        final = response.request
        return self._ours(final) and final.headers.get("Authorization") == sent

    @staticmethod
    def _replayable(request: httpx.Request) -> bool:
        """Whether the body can be sent again: bytes, or a multipart form whose files are
        bytes, str or seekable (httpx rewinds each file to its start when it renders it, as
        requests' adapter rewinds the body)."""
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            return True
        if type(stream).__name__ != "MultipartStream":
            return False
        for field in getattr(stream, "fields", ()):
            file = getattr(field, "file", None)
            if file is None or isinstance(file, (str, bytes)):
                continue  # a plain form field, or an in-memory file
            seekable = getattr(file, "seekable", None)
            if not (callable(seekable) and seekable()):
                return False
        return True

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._ours(request):
            yield request  # another origin: sent without the token
            return
        self._check(request)
        session = self._sync_session()
        sent = "Bearer " + session.token()
        request.headers["Authorization"] = sent
        response = yield request
        if not self._rejected(response, sent):
            return
        # Dropped always (only if still current), resent only when the body can go again.
        session.invalidate(sent[len("Bearer ") :])
        if not self._replayable(request):
            return
        sent = "Bearer " + session.token()
        request.headers["Authorization"] = sent
        response = yield request
        if self._rejected(response, sent):
            session.invalidate(sent[len("Bearer ") :])  # not resent again, but dropped too

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._ours(request):
            yield request  # another origin: sent without the token
            return
        self._check(request)
        ops = self._ops
        if ops is None:
            ops = self._ops = ops_for(self.session)
        sent = "Bearer " + await ops.token()
        request.headers["Authorization"] = sent
        response = yield request
        if not self._rejected(response, sent):
            return
        # Dropped always (only if still current), resent only when the body can go again.
        ops.session.invalidate(sent[len("Bearer ") :])
        if not self._replayable(request):
            return
        sent = "Bearer " + await ops.token()
        request.headers["Authorization"] = sent
        response = yield request
        if self._rejected(response, sent):
            ops.session.invalidate(sent[len("Bearer ") :])  # not resent again, but dropped too


__all__ = ["HttpxAuth"]
