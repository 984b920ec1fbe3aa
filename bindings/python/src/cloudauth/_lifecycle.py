"""Token-lifecycle methods of ``Session``: configuration from the environment, secret rotation
and stats (a mixin, so that the request code in ``_session.py`` stays as it is)."""

from __future__ import annotations

import ctypes
from typing import Any, Optional, Type, TypeVar

from . import _events
from ._config import ENV_PREFIX_OPTION
from ._events import EventHandler, Stats
from ._text import _encode

_S = TypeVar("_S", bound="LifecycleMixin")


class LifecycleMixin:
    # Provided by Session.
    _lib: ctypes.CDLL

    def _acquire(self) -> Any:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    @classmethod
    def from_env(
        cls: Type[_S],
        *,
        prefix: Optional[str] = None,
        on_event: Optional[EventHandler] = None,
        **overrides: Any,
    ) -> _S:
        """A session configured from the environment: for every configuration key, the
        variable ``<prefix><KEY>`` (prefix ``CLOUDAUTH_`` by default), e.g.
        ``CLOUDAUTH_CLIENT_ID``, ``CLOUDAUTH_CLIENT_SECRET_FILE``, ``CLOUDAUTH_TOKEN_URL``.
        Other variables are ignored; keyword ``overrides`` win over the environment. A
        malformed value raises :class:`InvalidArgument` naming the variable.
        """
        client_id = overrides.pop("client_id", None)
        client_secret = overrides.pop("client_secret", None)
        overrides[ENV_PREFIX_OPTION] = prefix
        return cls(client_id, client_secret, on_event=on_event, **overrides)  # type: ignore[call-arg]

    def set_credentials(self, client_id: str, client_secret: str) -> None:
        """Rotates the credentials: later token requests use these (a fetch in flight
        finishes with the old ones). The current token stays until it expires or is
        invalidated; call :meth:`invalidate` to switch at once. Replaces a
        ``client_secret_file`` too."""
        id_b = _encode("client_id", client_id)
        secret_b = _encode("client_secret", client_secret)
        handle = self._acquire()
        try:
            self._lib.cloudauth_session_set_credentials(handle, id_b, secret_b)
        finally:
            self._release()

    def stats(self) -> Stats:
        """The session's counters (:class:`Stats`); no lock, no I/O."""
        handle = self._acquire()
        try:
            return _events.read_stats(self._lib, handle)
        finally:
            self._release()
