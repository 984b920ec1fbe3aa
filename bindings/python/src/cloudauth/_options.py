"""The session options: one typed list for type checkers, ``help()`` and the tests."""

from __future__ import annotations

from typing import Iterable, List, Literal, Mapping, Sequence, Tuple, TypedDict, Union


class Options(TypedDict, total=False):
    """The keyword options of :class:`cloudauth.Session`: the C library's configuration keys.

    ``Session(..., **options: Unpack[Options])`` lets mypy or pyright reject a misspelled
    option or a value of the wrong type before the program runs.
    """

    token_url: str
    base_url: str
    scope: str
    auth_method: Literal[
        "client_secret_post",
        "client_secret_basic",
        "private_key_jwt",
        "client_secret_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
        "client_assertion",
        "none",
    ]
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
    client_key_file: str
    client_key_id: str
    client_assertion_alg: Literal["RS256", "PS256", "ES256", "ES384", "EdDSA"]
    client_cert_file: str
    dpop: bool
    dpop_key_file: str
    issuer: str
    audience: str
    resource: Union[str, Sequence[str]]
    token_params: Mapping[str, str]
    grant_type: Literal["client_credentials", "jwt_bearer", "token_exchange"]
    client_assertion_file: str
    client_assertion_type: str
    client_assertion_aud: str
    assertion_issuer: str
    assertion_subject: str
    scope_in_assertion: bool
    credentials_file: str
    subject_token_file: str
    subject_token_type: str
    requested_token_type: str
    actor_token_file: str
    actor_token_type: str
    token_cache_key_file: str


# (name, default, meaning), in the order of Options; help(Session) shows them.
OPTION_DOCS: Tuple[Tuple[str, str, str], ...] = (
    ("token_url", "https://api.aspose.cloud/connect/token", "the OAuth2 token endpoint"),
    ("base_url", "https://api.aspose.cloud", "joined with relative request paths"),
    ("scope", "unset", "sent as `scope` when set"),
    (
        "auth_method",
        "client_secret_post",
        "or client_secret_basic, private_key_jwt, client_secret_jwt, tls_client_auth,"
        " self_signed_tls_client_auth, client_assertion, none",
    ),
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
    ("client_key_file", "unset", "PEM private key: client assertions, or the mutual-TLS key"),
    ("client_key_id", "unset", "the assertion's kid header"),
    ("client_assertion_alg", "from the key", "RS256, PS256, ES256, ES384 or EdDSA"),
    ("client_cert_file", "unset", "PEM certificate: mutual TLS, or x5t#S256 of an assertion"),
    ("dpop", "False", "DPoP proofs on token and API requests (RFC 9449)"),
    ("dpop_key_file", "a key of the session's own", "pin the DPoP key (PEM)"),
    ("issuer", "unset", "discover token_endpoint from this issuer's metadata"),
    ("audience", "unset", "sent as `audience` (Auth0)"),
    ("resource", "unset", "RFC 8707 resource indicators: a str or a list of them"),
    ("token_params", "{}", "extra token-request fields, as token_param.NAME keys"),
    ("grant_type", "client_credentials", "or jwt_bearer (RFC 7523), token_exchange (RFC 8693)"),
    ("client_assertion_file", "unset", "auth_method=client_assertion: the platform's JWT, re-read per request"),
    (
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "the federated assertion's type",
    ),
    ("client_assertion_aud", "token_endpoint", "aud of signed assertions: token_endpoint, issuer or a value"),
    ("assertion_issuer", "client_id", "iss of the JWT-bearer grant's assertion"),
    ("assertion_subject", "unset", "sub of the JWT-bearer grant's assertion"),
    ("scope_in_assertion", "True with credentials_file", "JWT-bearer: scope as a claim, not a field"),
    ("credentials_file", "unset", "Google service-account key file (JWT-bearer grant)"),
    ("subject_token_file", "unset", "token exchange: the subject token, re-read per request"),
    ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt", "token exchange: its type"),
    ("requested_token_type", "unset", "token exchange: the type asked for"),
    ("actor_token_file", "unset", "token exchange: the actor token, re-read per request"),
    ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt", "token exchange: its type"),
    ("token_cache_key_file", "per-user key (file cache)", "seals shared entries without a secret"),
)


def expand(options: Mapping[str, object]) -> Iterable[Tuple[str, object]]:
    """The options as C configuration keys: ``token_params`` becomes one ``token_param.NAME``
    per entry and a list of ``resource`` values one comma-separated value."""
    for key, value in options.items():
        if key == "token_params":
            if not isinstance(value, Mapping):
                raise TypeError(f"token_params must be a mapping, not {type(value).__name__}")
            for name, field in value.items():
                if not isinstance(name, str) or not name:
                    raise TypeError("token_params names must be non-empty strings")
                yield f"token_param.{name}", field
        elif key == "resource" and isinstance(value, (list, tuple)):
            for item in value:
                if not isinstance(item, str):
                    raise TypeError(f"resource items must be str, not {type(item).__name__}")
                if "," in item:
                    raise ValueError(f"resource {item[:40]!r}: a resource holds no comma")
            yield key, ",".join(value)
        else:
            yield key, value


def options_doc() -> str:
    """The options as an indented table for a docstring."""
    width = max(len(name) for name, _, _ in OPTION_DOCS)
    lines: List[str] = []
    for name, default, meaning in OPTION_DOCS:
        lines.append(f"    {name:<{width}}  default {default}: {meaning}")
    return "\n".join(lines) + "\n"
