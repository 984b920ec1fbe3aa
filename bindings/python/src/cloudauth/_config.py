"""Making a session handle: options, the environment, and the event callback, in one place
shared by ``Session`` and ``AsyncSession``."""

from __future__ import annotations

import ctypes
import os
from typing import Any, List, Mapping, Optional, Tuple

from . import _events, _ffi, _options
from ._errors import InvalidArgument
from ._events import EventHandler
from ._text import _encode, _option_text

# The option that ``from_env`` passes through the constructor: the environment's prefix.
ENV_PREFIX_OPTION = "_cloudauth_env_prefix"
DEFAULT_PREFIX = "CLOUDAUTH_"

# The keys read from the environment when the library has no cloudauth_config_from_env
# (older than this binding). The C function knows the keys of its own version.
KNOWN_KEYS = (
    "client_id",
    "client_secret",
    "client_secret_file",
    "token_url",
    "base_url",
    "scope",
    "auth_method",
    "timeout_ms",
    "connect_timeout_ms",
    "refresh_skew_s",
    "refresh_mode",
    "max_retries",
    "max_retry_wait_ms",
    "default_expires_in_s",
    "max_response_bytes",
    "user_agent",
    "ca_file",
    "proxy",
    "allow_insecure_http",
    "token_cache",
    "token_cache_dir",
    "redis_url",
    "token_cache_timeout_ms",
    "client_key_file",
    "client_key_id",
    "client_assertion_alg",
    "client_cert_file",
    "dpop",
    "dpop_key_file",
    "issuer",
    "audience",
    "resource",
    "grant_type",
    "client_assertion_file",
    "client_assertion_type",
    "client_assertion_aud",
    "assertion_issuer",
    "assertion_subject",
    "scope_in_assertion",
    "credentials_file",
    "subject_token_file",
    "subject_token_type",
    "requested_token_type",
    "actor_token_file",
    "actor_token_type",
    "token_cache_key_file",
)


def _apply_env(lib: ctypes.CDLL, config: Any, prefix: Optional[str], environ: Mapping[str, str]) -> None:
    prefix_b = None if prefix is None else _encode("prefix", prefix)
    if _ffi.has("cloudauth_config_from_env"):
        lib.cloudauth_config_from_env(config, prefix_b)
        return
    # Fallback for a library without it: the same rule (known keys only, a bad value names
    # the variable), done here.
    start = DEFAULT_PREFIX if prefix is None else prefix
    for key in KNOWN_KEYS:
        var = start + key.upper()
        value = environ.get(var)
        if value is None:
            continue
        try:
            lib.cloudauth_config_set(config, key.encode(), _encode(var, value))
        except InvalidArgument as e:
            raise InvalidArgument(f"environment variable {var}: {e.message}") from None


def _no_client_needed(opts: Mapping[str, object]) -> bool:
    """A service-account file names the client; token exchange may have none (an STS)."""
    return "credentials_file" in opts or opts.get("grant_type") == "token_exchange"


def new_session(
    lib: ctypes.CDLL,
    client_id: Optional[str],
    client_secret: Optional[str],
    options: Mapping[str, object],
    on_event: Optional[EventHandler],
) -> Tuple[Any, int]:
    """A new ``cloudauth_session`` handle and its events key (see ``_events.unregister``).

    A ``None`` secret is left unset (``client_secret_file`` or the environment may provide
    it; the library says what is missing otherwise); so is a ``None`` client_id from
    ``from_env``.
    """
    opts = dict(options)
    from_env = ENV_PREFIX_OPTION in opts
    prefix = opts.pop(ENV_PREFIX_OPTION, None)
    if prefix is not None and not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
    # Only the environment, or a workload identity with no client, may leave it out.
    if client_id is None and not from_env and not _no_client_needed(opts):
        raise TypeError("client_id must be a str, not NoneType")
    settings: List[Tuple[str, object]] = []
    if client_id is not None:
        settings.append(("client_id", client_id))
    if client_secret is not None:
        settings.append(("client_secret", client_secret))
    settings.extend(_options.expand(opts))
    encoded = [
        (_encode("option name", key), _encode(key, _option_text(key, value)))
        for key, value in settings
    ]
    key = _events.register(on_event)
    config = lib.cloudauth_config_new()
    try:
        if from_env:
            _apply_env(lib, config, prefix, os.environ)
        for key_bytes, value_bytes in encoded:
            lib.cloudauth_config_set(config, key_bytes, value_bytes)
        # A blocking call's events run the callback on its (Python) thread, before it returns;
        # those of library threads come through the queue (no Python on library threads).
        lib.cloudauth_config_set_event_callback(config, _events.EVENT_CALLBACK, key)
        lib.cloudauth_config_set_event_queue(config, _events.event_queue(), key)
        handle = _ffi.SessionPtr()
        lib.cloudauth_session_new(config, ctypes.byref(handle))
    except BaseException:
        _events.unregister(key, flush_first=False)
        raise
    finally:
        lib.cloudauth_config_free(config)
    return handle, key
