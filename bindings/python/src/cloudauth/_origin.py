"""Origins (scheme, host, port) as the adapters compare them: a request's with the session's."""

from __future__ import annotations

from typing import Optional, Tuple
from urllib.parse import urlsplit

Origin = Tuple[str, str, Optional[int]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: Optional[str]) -> Optional[Origin]:
    """Scheme, host and port (the default port made explicit) of an absolute URL, both in
    lower case; None if ``url`` has no host or a port that is not a number. The session's
    origin (``Session.origin``, from the library) and a request's URL, as requests and httpx
    serialize it (IDNA hosts in ASCII, IPv6 in brackets), compare equal when they name the
    same origin."""
    try:
        parts = urlsplit(url or "")
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number
        return None
    if not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port
