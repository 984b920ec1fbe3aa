"""Authorize an OpenAPI-generator Python client (the Aspose Cloud SDKs and thousands of others)
with a :class:`cloudauth.Session`.

Such clients read ``configuration.access_token`` on every call and take no client id or
secret, so their users fetch and refresh tokens by hand. After ::

    import aspose_ocr_cloud as ocr
    api_client = cloudauth.openapi.authorize(ocr.ApiClient(ocr.Configuration(host=...)), session)
    api = ocr.RecognizeImageApi(api_client)

every call the SDK makes carries the session's valid token (fetched, cached and refreshed by
the library); given the ``ApiClient``, a 401 also drops that token and the call is resent once
with a fresh one, as the session's own requests do, and a call to any origin other than the
session's (``base_url``'s, :attr:`Session.origin`) raises :class:`InvalidArgument` before it is
sent (the SDK puts the token on every call; the configuration alone cannot check where it goes). No SDK is imported here: any generated
client with a ``Configuration.access_token`` (and ``ApiClient.call_api``) works.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, TypeVar

from ._errors import InvalidArgument
from ._origin import origin_of
from ._session import Session

T = TypeVar("T")

# Marks a class made here, so that authorizing twice wraps once (the newest session wins).
_MARK = "_cloudauth_session"


def authorize(target: T, session: Session) -> T:
    """Makes ``target`` (a generated ``Configuration`` or ``ApiClient``) use ``session``'s
    token on every call; returns ``target``. With an ``ApiClient``, a 401 answer drops the
    token it carried (if still current) and resends the call once."""
    if not isinstance(session, Session):
        raise TypeError(f"session must be a cloudauth.Session, not {type(session).__name__}")
    configuration = getattr(target, "configuration", None)
    if configuration is not None and hasattr(target, "call_api"):
        _authorize_configuration(configuration, session)
        _authorize_api_client(target, session)
    elif hasattr(target, "access_token") or hasattr(target, "auth_settings"):
        _authorize_configuration(target, session)
    else:
        raise TypeError(
            "target must be an OpenAPI-generator Configuration (with access_token) or ApiClient "
            f"(with configuration and call_api), not {type(target).__name__}"
        )
    return target


def _authorize_configuration(configuration: Any, session: Session) -> None:
    """``access_token`` becomes a property reading the session's current token: the class of
    this one object is swapped for a subclass, so other configurations are untouched and
    ``isinstance`` still holds. A value the SDK assigns (its ``__init__`` sets None) is ignored."""
    cls = type(configuration)
    if getattr(cls, _MARK, None) is not None:
        setattr(cls, _MARK, session)
        return
    def get_token(self: Any) -> str:
        current: Session = getattr(type(self), _MARK)
        return current.token()

    def ignore(self: Any, value: Optional[str]) -> None:
        pass

    authorized = type(
        cls.__name__,
        (cls,),
        {
            "access_token": property(get_token, ignore, doc="the cloudauth session's token"),
            _MARK: session,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        },
    )
    configuration.__class__ = authorized


def _authorize_api_client(api_client: Any, session: Session) -> None:
    """Wraps this client's ``call_api`` (the one place every generated operation sends its
    request): a 401 drops the token that was sent and resends once with a fresh one."""
    if getattr(api_client, _MARK, None) is not None:
        setattr(api_client, _MARK, session)
        return
    setattr(api_client, _MARK, session)
    original = api_client.call_api

    def call_api(method: str, url: str, header_params: Optional[Dict[str, str]] = None,
                 *args: Any, **kwargs: Any) -> Any:
        current: Session = getattr(api_client, _MARK)
        # The token is only for the session's origin (base_url's); the SDK has already put it
        # on this call, so a call elsewhere is refused before it is sent.
        target = origin_of(url)
        if target is None or target != origin_of(current.origin):
            where = "a URL without a host" if target is None else "%s://%s:%s" % target
            raise InvalidArgument(
                f"cloudauth.openapi: the call goes to {where}, not to the session's origin "
                f"{current.origin} (base_url), the only one its token is for"
            )
        current._check_url(url)  # the library's rule: no token over plain http to a remote host
        response = original(method, url, header_params, *args, **kwargs)
        if getattr(response, "status", None) != 401 or not header_params:
            return response
        sent = _bearer(header_params)
        if sent is None:
            return response
        try:  # drain the 401 so that its connection goes back to the pool
            response.read()
        except Exception:  # pragma: no cover - a broken connection is simply not reused
            pass
        current.invalidate(sent)
        fresh = dict(header_params)
        for name in [n for n in fresh if n.lower() == "authorization"]:
            del fresh[name]
        fresh["Authorization"] = "Bearer " + current.token()
        return original(method, url, fresh, *args, **kwargs)

    api_client.call_api = call_api


def _bearer(headers: Dict[str, str]) -> Optional[str]:
    for name, value in headers.items():
        if name.lower() == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):]
    return None


__all__ = ["authorize"]
