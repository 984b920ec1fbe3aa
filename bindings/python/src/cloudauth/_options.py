"""The session options: one typed list for type checkers, ``help()`` and the tests."""

from __future__ import annotations

from typing import List, Literal, Tuple, TypedDict


class Options(TypedDict, total=False):
    """The keyword options of :class:`cloudauth.Session`: the C library's configuration keys.

    ``Session(..., **options: Unpack[Options])`` lets mypy or pyright reject a misspelled
    option or a value of the wrong type before the program runs.
    """

    token_url: str
    base_url: str
    scope: str
    auth_method: Literal["client_secret_post", "client_secret_basic"]
    timeout_ms: int
    connect_timeout_ms: int
    refresh_skew_s: int
    max_retries: int
    max_retry_wait_ms: int
    default_expires_in_s: int
    max_response_bytes: int
    user_agent: str
    ca_file: str
    proxy: str
    allow_insecure_http: bool
    refresh_mode: Literal["background", "eager", "inline"]
    client_secret_file: str
    token_cache: Literal["memory", "file", "redis"]
    token_cache_dir: str
    redis_url: str
    token_cache_timeout_ms: int


# (name, default, meaning), in the order of Options; help(Session) shows them.
OPTION_DOCS: Tuple[Tuple[str, str, str], ...] = (
    ("token_url", "https://api.aspose.cloud/connect/token", "the OAuth2 token endpoint"),
    ("base_url", "https://api.aspose.cloud", "joined with relative request paths"),
    ("scope", "unset", "sent as `scope` when set"),
    ("auth_method", "client_secret_post", "or client_secret_basic (HTTP Basic)"),
    ("timeout_ms", "30000", "total time of one attempt of a network call"),
    ("connect_timeout_ms", "10000", "time to connect"),
    ("refresh_skew_s", "60", "a token counts as expired this long before it does"),
    ("max_retries", "2", "retries of transient token-endpoint failures (connect, 5xx, 429)"),
    ("max_retry_wait_ms", "10000", "cap on one wait between retries, Retry-After included"),
    ("default_expires_in_s", "3600", "lifetime assumed when a token response has no expires_in"),
    ("max_response_bytes", "67108864", "cap on a response body (TooLarge)"),
    ("user_agent", "cloudauth/<version>", "the User-Agent header"),
    ("ca_file", "system trust store", "extra PEM roots, added to the system's"),
    ("proxy", "from the environment", "a proxy URL, or 'none' to bypass the environment's"),
    ("allow_insecure_http", "False", "plain http to a non-loopback host (loopback always works)"),
    ("refresh_mode", "background", "background, eager or inline token refresh"),
    ("client_secret_file", "unset", "read the secret from this file at every token request"),
    ("token_cache", "memory", "memory; file (shared by this user's processes); redis"),
    ("token_cache_dir", "$XDG_CACHE_HOME/cloudauth", "directory of the file cache"),
    ("redis_url", "unset", "redis:// or rediss:// URL of the Redis cache"),
    ("token_cache_timeout_ms", "250", "bound on one file or Redis cache operation"),
)


def options_doc() -> str:
    """The options as an indented table for a docstring."""
    width = max(len(name) for name, _, _ in OPTION_DOCS)
    lines: List[str] = []
    for name, default, meaning in OPTION_DOCS:
        lines.append(f"    {name:<{width}}  default {default}: {meaning}")
    return "\n".join(lines) + "\n"
