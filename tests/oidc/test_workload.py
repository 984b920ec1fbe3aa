"""Workload identity against oidc-provider (issue 23): tokens with no stored secret.

- Federated client assertions: the client ``federated-client`` has only the key of the test's
  "platform issuer" (``Platform``), which writes short-lived assertions to a file and rewrites
  it while a session runs; each token request must carry the file's current content.
- The JWT-bearer grant (RFC 7523 §2.1) and token exchange (RFC 8693), registered on the
  provider by workload.mjs and validated there (signature, claims, jti replay, subject token);
  a Google-format service-account key file made here drives the JWT-bearer grant.

Every token is checked at the resource server, which verifies it against the provider's keys.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, List

import pytest

import cloudauth
from conftest import CLIENT_SECRET, Servers

PLATFORM_ISSUER = "https://platform.cloudauth.test"  # workload.mjs's
STS_AUDIENCE = "https://sts.cloudauth.test/pool/provider"
SA_EMAIL = "robot@cloudauth-test.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"
AUDIENCE_API = "https://audience.cloudauth.test/"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_rs256(key: str, claims: Dict[str, Any], kid: str) -> str:
    """A compact RS256 JWS, signed by openssl (PKCS#1 v1.5 over SHA-256 is what RS256 is)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key],
        input=signing_input.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return f"{signing_input}.{b64url(sig)}"


class Platform:
    """The test's platform issuer (a Kubernetes API server, Entra's federation, a SPIFFE
    agent): signs short-lived JWTs with platform.key and writes them as a platform does,
    by an atomic replace of the file."""

    def __init__(self, servers: Servers) -> None:
        self.key = servers.file("platform.key")
        self.written: List[str] = []

    def token(self, lifetime: int = 60, **claims: Any) -> str:
        now = int(time.time())
        body = {"iat": now, "exp": now + lifetime, "jti": b64url(os.urandom(12)), **claims}
        return sign_rs256(self.key, body, "platform")

    def write(self, path: Path, lifetime: int = 60, **claims: Any) -> str:
        """Writes a fresh token (with a trailing newline, as files often end) and returns its jti."""
        token = self.token(lifetime, **claims)
        temp = path.with_name(path.name + ".new")
        temp.write_text(token + "\n")
        temp.replace(path)
        jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
        self.written.append(jti)
        return str(jti)


def call_api(s: cloudauth.Session) -> Dict[str, Any]:
    r = s.get("/whoami")
    assert r.status == 200, f"{r.status} {r.text}"
    seen: Dict[str, Any] = r.json()
    return seen


def last(servers: Servers, kind: str, client: str) -> Dict[str, Any]:
    seen = servers.records(kind, client)
    assert seen, f"the provider saw no {kind} for {client}"
    return seen[-1]


def assert_no_jwt(message: str) -> None:
    assert "\n" not in message
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}", message), f"a JWT in the message: {message}"


# -- federated client assertions -----------------------------------------------------------


def federated_claims(servers: Servers) -> Dict[str, Any]:
    # oidc-provider's private_key_jwt wants iss = sub = the client; Entra and Keycloak map a
    # platform's own iss/sub to the client in their federation settings instead.
    return {"iss": "federated-client", "sub": "federated-client", "aud": servers.token_url}


def test_federated_assertion_is_read_at_every_token_request(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    platform = Platform(servers)
    path = tmp_path / "azure-identity-token"
    platform.write(path, **federated_claims(servers))
    s = session(
        "federated-client", auth_method="client_assertion", client_assertion_file=str(path)
    )
    for _ in range(3):
        jti = platform.write(path, **federated_claims(servers))
        s.invalidate()
        assert call_api(s)["client_id"] == "federated-client"
        assert last(servers, "assertion", "federated-client")["claims"]["jti"] == jti
    grant = last(servers, "grant", "federated-client")
    assert {"client_assertion", "client_assertion_type", "client_id"} <= set(grant["fields"])
    assert "client_secret" not in grant["fields"]


def test_federated_assertion_survives_rotation_while_the_session_runs(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    platform = Platform(servers)
    path = tmp_path / "token"
    platform.write(path, lifetime=5, **federated_claims(servers))
    s = session("federated-client", auth_method="client_assertion", client_assertion_file=str(path))
    servers.reset()
    stop = threading.Event()

    def rotate() -> None:
        while not stop.wait(0.05):
            platform.write(path, lifetime=5, **federated_claims(servers))

    rotator = threading.Thread(target=rotate)
    rotator.start()
    try:
        for _ in range(8):
            # oidc-provider refuses a jti twice (Entra does not): each request waits for the
            # platform's next rewrite, which happens on its own thread meanwhile.
            written = len(platform.written)
            deadline = time.monotonic() + 5
            while len(platform.written) == written and time.monotonic() < deadline:
                time.sleep(0.01)
            s.invalidate()
            assert call_api(s)["client_id"] == "federated-client"
    finally:
        stop.set()
        rotator.join(10)
    seen = [a["claims"]["jti"] for a in servers.records("assertion", "federated-client")]
    assert len(seen) == 8 and set(seen) <= set(platform.written)
    assert len(set(seen)) > 1, "the rotated files were not used"


def test_expired_assertion_then_rotated_file(session: Any, servers: Servers, tmp_path: Path) -> None:
    """The bug the issue names (AADSTS700024): a file read once fails an hour later. Here the
    file holds an expired assertion; once the platform rewrites it, the same session works."""
    platform = Platform(servers)
    path = tmp_path / "token"
    now = int(time.time())
    expired = sign_rs256(
        platform.key,
        {**federated_claims(servers), "iat": now - 600, "exp": now - 300, "jti": "old"},
        "platform",
    )
    path.write_text(expired)
    s = session("federated-client", auth_method="client_assertion", client_assertion_file=str(path))
    with pytest.raises(cloudauth.AuthRejected) as info:
        s.token()
    assert "invalid_client" in info.value.message
    assert expired not in info.value.message and expired.split(".")[2] not in info.value.message
    assert_no_jwt(info.value.message)
    platform.write(path, **federated_claims(servers))
    assert call_api(s)["client_id"] == "federated-client"


def test_federated_assertion_bad_files(session: Any, servers: Servers, tmp_path: Path) -> None:
    pem = Path(servers.file("rsa.key")).read_text()
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "pem").write_text(pem)
    (tmp_path / "json").write_text('{"access_token":"x"}')
    for name, why in [
        ("missing", "cannot read"),
        ("empty", "is empty"),
        ("pem", "characters a token cannot have"),
        ("json", "does not hold a JWT"),
    ]:
        with pytest.raises(cloudauth.InvalidArgument) as info:
            session(
                "federated-client",
                auth_method="client_assertion",
                client_assertion_file=str(tmp_path / name),
            )
        message = info.value.message
        assert message.startswith("client_assertion_file: ") and why in message, message
        assert "PRIVATE KEY" not in message and pem.splitlines()[1][:20] not in message
    # A file that goes bad after session_new: the fetch says so, naming the key.
    path = tmp_path / "token"
    Platform(servers).write(path, **federated_claims(servers))
    s = session("federated-client", auth_method="client_assertion", client_assertion_file=str(path))
    path.write_text("")
    with pytest.raises(cloudauth.InvalidArgument, match="^client_assertion_file: .* is empty"):
        s.token()
    # A secret does not fit with a federated assertion.
    with pytest.raises(cloudauth.InvalidArgument, match="^client_secret is set"):
        session(
            "federated-client",
            CLIENT_SECRET,
            auth_method="client_assertion",
            client_assertion_file=str(path),
        )


# -- the JWT-bearer grant ------------------------------------------------------------------


def service_account_file(servers: Servers, path: Path, **override: Any) -> Path:
    """A Google-format service-account key file (what `gcloud iam service-accounts keys
    create` writes), around the provider's registered sa.key."""
    account = {
        "type": "service_account",
        "project_id": "cloudauth-test",
        "private_key_id": "sa-key-1",
        "private_key": Path(servers.file("sa.key")).read_text(),
        "client_email": SA_EMAIL,
        "client_id": "104637237563424517023",
        "auth_uri": "https://accounts.google.invalid/o/oauth2/auth",
        "token_uri": servers.token_url,
        "auth_provider_x509_cert_url": "https://www.googleapis.invalid/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    account.update(override)
    path.write_text(json.dumps({k: v for k, v in account.items() if v is not None}))
    path.chmod(0o600)
    return path


def sa_session(servers: Servers, path: Path, **options: Any) -> cloudauth.Session:
    # No client_id and no token_url: the key file gives both.
    return cloudauth.Session(
        None,
        grant_type="jwt_bearer",
        credentials_file=str(path),
        ca_file=servers.ca_file,
        base_url=servers.api,
        refresh_mode="inline",
        timeout_ms=15_000,
        **options,
    )


def test_jwt_bearer_with_a_service_account_key_file(servers: Servers, tmp_path: Path) -> None:
    path = service_account_file(servers, tmp_path / "sa.json")
    with sa_session(servers, path, scope="api:read") as s:
        seen = call_api(s)
        assert (seen["client_id"], seen["scope"]) == (SA_EMAIL, "api:read")
        assert seen["workload"] == {"grant": "jwt_bearer", "sub": SA_EMAIL}
        first = last(servers, "jwt_bearer", SA_EMAIL)
        header, claims = first["header"], first["claims"]
        assert (header["alg"], header["kid"]) == ("RS256", "sa-key-1")
        assert (claims["iss"], claims["aud"]) == (SA_EMAIL, servers.token_url)
        assert "sub" not in claims
        assert 0 < claims["exp"] - claims["iat"] <= 3600
        # Google's way: scope is a claim, and the body holds only the grant and assertion.
        assert (first["scope_from"], claims["scope"]) == ("claim", "api:read")
        assert first["fields"] == ["assertion", "grant_type"]
        s.invalidate()
        call_api(s)
        assert last(servers, "jwt_bearer", SA_EMAIL)["claims"]["jti"] != claims["jti"]


def test_jwt_bearer_with_a_key_file_subject_and_issuer_audience(session: Any, servers: Servers) -> None:
    s = session(
        "jwt-bearer-client",
        grant_type="jwt_bearer",
        client_key_file=servers.file("ec256.key"),
        client_key_id="ec256",
        assertion_subject="user-42",
        scope="api:write",
        issuer=servers.issuer,
        client_assertion_aud="issuer",
    )
    seen = call_api(s)
    assert seen["workload"] == {"grant": "jwt_bearer", "sub": "user-42"}
    assert seen["scope"] == "api:write"
    record = last(servers, "jwt_bearer", "jwt-bearer-client")
    assert record["claims"]["aud"] == servers.issuer
    assert (record["claims"]["iss"], record["claims"]["sub"]) == ("jwt-bearer-client", "user-42")
    assert record["scope_from"] == "form" and "scope" not in record["claims"]
    assert record["fields"] == ["assertion", "grant_type", "scope"]


def post_token(servers: Servers, form: Dict[str, str]) -> Any:
    context = ssl.create_default_context(cafile=servers.ca_file)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(servers.token_url, data=urllib.parse.urlencode(form).encode())
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_the_provider_refuses_a_replayed_or_foreign_assertion(servers: Servers) -> None:
    """The grant handler's checks are real: the same assertion twice, or one signed by a key
    the client does not have, is refused."""
    now = int(time.time())
    claims = {"iss": SA_EMAIL, "aud": servers.token_url, "iat": now, "exp": now + 60, "jti": b64url(os.urandom(12))}
    assertion = sign_rs256(servers.file("sa.key"), claims, "sa-key-1")
    form = {"grant_type": JWT_BEARER, "assertion": assertion}
    assert post_token(servers, form)[0] == 200
    servers.reset()
    status, body = post_token(servers, form)
    assert (status, body["error"]) == (400, "invalid_grant")
    errors = [r.get("description") for r in servers.records("grant_error", SA_EMAIL)]
    assert "jti replayed" in errors, errors
    foreign = sign_rs256(servers.file("platform.key"), {**claims, "jti": "other"}, "sa-key-1")
    status, body = post_token(servers, {"grant_type": JWT_BEARER, "assertion": foreign})
    assert (status, body["error"]) == (400, "invalid_grant")


def test_service_account_file_errors_name_the_field(servers: Servers, tmp_path: Path) -> None:
    key_text = Path(servers.file("sa.key")).read_text()
    encrypted = Path(servers.file("encrypted.key")).read_text()
    cases = [
        ((tmp_path / "nojson").write_text(key_text) and tmp_path / "nojson", "is not JSON"),
        (service_account_file(servers, tmp_path / "a.json", client_email=None), "has no client_email"),
        (service_account_file(servers, tmp_path / "b.json", private_key=None), "has no private_key"),
        (service_account_file(servers, tmp_path / "c.json", private_key=encrypted), "encrypted"),
        (service_account_file(servers, tmp_path / "d.json", type="external_account"), "external_account"),
        (tmp_path / "missing.json", "cannot read"),
    ]
    for path, why in cases:
        with pytest.raises(cloudauth.InvalidArgument) as info:
            sa_session(servers, path)
        message = info.value.message
        assert message.startswith("credentials_file"), message
        assert why in message, message
        for line in key_text.splitlines()[1:-1] + encrypted.splitlines()[1:-1]:
            assert line[:24] not in message
    # Broken after session_new: the next fetch names it.
    path = service_account_file(servers, tmp_path / "later.json")
    with sa_session(servers, path) as s:
        path.write_text("{}")
        with pytest.raises(cloudauth.InvalidArgument, match="^credentials_file: .* has no client_email"):
            s.token()


# -- token exchange --------------------------------------------------------------------------


def subject_claims(sub: str = "system:serviceaccount:apps:reporter") -> Dict[str, Any]:
    return {"iss": PLATFORM_ISSUER, "sub": sub, "aud": STS_AUDIENCE}


def test_token_exchange_public_client_reads_the_subject_token_each_time(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    platform = Platform(servers)
    path = tmp_path / "k8s-token"
    platform.write(path, **subject_claims())
    s = session(
        "sts-public",
        grant_type="token_exchange",
        subject_token_file=str(path),
        audience=AUDIENCE_API,
        scope="api:read",
    )
    for _ in range(2):
        jti = platform.write(path, **subject_claims())
        s.invalidate()
        seen = call_api(s)
        assert seen["workload"] == {"grant": "token_exchange", "sub": "system:serviceaccount:apps:reporter", "act": None}
        assert (seen["aud"], seen["scope"]) == (AUDIENCE_API, "api:read")
        record = last(servers, "token_exchange", "sts-public")
        assert record["subject"]["jti"] == jti
    assert record["fields"] == sorted(
        ["audience", "client_id", "grant_type", "scope", "subject_token", "subject_token_type"]
    )
    assert record["requested"] == "urn:ietf:params:oauth:token-type:access_token"


def test_token_exchange_without_a_client_like_google_sts(servers: Servers, tmp_path: Path) -> None:
    path = tmp_path / "oidc-token"
    Platform(servers).write(path, **subject_claims("repo:octo/app:ref:refs/heads/main"))
    with cloudauth.Session(
        None,
        grant_type="token_exchange",
        subject_token_file=str(path),
        requested_token_type="urn:ietf:params:oauth:token-type:access_token",
        token_url=servers.token_url,
        ca_file=servers.ca_file,
        base_url=servers.api,
    ) as s:
        assert call_api(s)["workload"]["sub"] == "repo:octo/app:ref:refs/heads/main"
    assert "client_id" not in last(servers, "token_exchange", "sts-anonymous")["fields"]


def test_token_exchange_confidential_client_with_actor_and_jwt_answer(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    platform = Platform(servers)
    subject, actor = tmp_path / "subject", tmp_path / "actor"
    platform.write(subject, **subject_claims())
    platform.write(actor, **subject_claims("spiffe://cloudauth.test/gateway"))
    s = session(
        "sts-confidential",
        CLIENT_SECRET,
        auth_method="client_secret_basic",
        grant_type="token_exchange",
        subject_token_file=str(subject),
        actor_token_file=str(actor),
        requested_token_type=TYPE_JWT,  # answered with token_type N_A, used as Bearer
    )
    seen = call_api(s)
    assert seen["workload"]["act"] == "spiffe://cloudauth.test/gateway"
    assert seen["client_id"] == "sts-confidential"
    record = last(servers, "token_exchange", "sts-confidential")
    assert record["requested"] == TYPE_JWT
    assert {"actor_token", "actor_token_type"} <= set(record["fields"])
    assert "client_secret" not in record["fields"]  # Basic auth


def test_token_exchange_checks_what_it_gets(session: Any, servers: Servers, tmp_path: Path) -> None:
    platform = Platform(servers)
    path = tmp_path / "subject"
    platform.write(path, **subject_claims())
    # Asked for an ID token, the provider answers with an access token: refused.
    s = session(
        "sts-public",
        grant_type="token_exchange",
        subject_token_file=str(path),
        requested_token_type="urn:ietf:params:oauth:token-type:id_token",
    )
    with pytest.raises(cloudauth.BadTokenResponse, match="issued_token_type"):
        s.token()
    # A subject token the STS cannot verify: refused, the token never quoted.
    forged = sign_rs256(servers.file("sa.key"), {**subject_claims(), "iat": int(time.time()), "exp": int(time.time()) + 60}, "platform")
    path.write_text(forged)
    s = session("sts-public", grant_type="token_exchange", subject_token_file=str(path))
    with pytest.raises(cloudauth.AuthRejected) as info:
        s.token()
    assert "invalid_grant" in info.value.message
    assert_no_jwt(info.value.message)
    # Keys that need token exchange.
    with pytest.raises(cloudauth.InvalidArgument, match="^subject_token_file is set, but it needs grant_type=token_exchange"):
        session("post-client", CLIENT_SECRET, subject_token_file=str(path))


# -- shared caches without a secret ----------------------------------------------------------


def test_file_cache_without_a_secret_uses_a_per_user_key(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    platform = Platform(servers)
    path = tmp_path / "token"
    platform.write(path, **federated_claims(servers))
    cache = tmp_path / "cache"
    options = dict(
        auth_method="client_assertion",
        client_assertion_file=str(path),
        token_cache="file",
        token_cache_dir=str(cache),
    )
    first = session("federated-client", **options)
    token = first.token()
    key = cache / "sealing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    second = session("federated-client", **options)
    assert second.token() == token
    assert second.stats().shared_cache_hits == 1
    # Nothing in the cache directory holds the assertion or the token in the clear.
    for f in cache.iterdir():
        data = f.read_bytes()
        assert token.encode() not in data and path.read_text().strip().encode() not in data
    # Redis needs a key every host shares.
    with pytest.raises(cloudauth.InvalidArgument, match="^token_cache_key_file is not set"):
        session("federated-client", **{**options, "token_cache": "redis", "redis_url": "redis://127.0.0.1:9/"})


# -- the CLI: the README's recipes as CLOUDAUTH_* variables and --set ---------------------------


def run_cli(env: Dict[str, str], *args: str) -> Any:
    from conftest import REPO

    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDAUTH_")}
    return subprocess.run(
        [str(REPO / "target" / "release" / "cloudauth"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_federated_assertion_from_the_environment_shares_one_token(
    servers: Servers, tmp_path: Path
) -> None:
    """Azure's webhook variables mapped to CLOUDAUTH_*; the CLI's file cache (a per-user
    sealing key, no secret) lets the second invocation reuse the first one's token."""
    path = tmp_path / "azure-identity-token"
    platform = Platform(servers)
    platform.write(path, **federated_claims(servers))
    env = dict(
        CLOUDAUTH_CLIENT_ID="federated-client",
        CLOUDAUTH_AUTH_METHOD="client_assertion",
        CLOUDAUTH_CLIENT_ASSERTION_FILE=str(path),
        CLOUDAUTH_TOKEN_URL=servers.token_url,
        CLOUDAUTH_CA_FILE=servers.ca_file,
        CLOUDAUTH_BASE_URL=servers.api,
        CLOUDAUTH_TOKEN_CACHE_DIR=str(tmp_path / "cache"),
    )
    servers.reset()
    first = run_cli(env, "request", "--fail", "/whoami")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["client_id"] == "federated-client"
    second = run_cli(env, "token")
    assert second.returncode == 0, second.stderr
    assert len(servers.records("assertion", "federated-client")) == 1
    assert (tmp_path / "cache" / "sealing.key").stat().st_mode & 0o777 == 0o600
    # A broken file: exit 101 (invalid argument) naming the key, the file never quoted.
    path.write_text("not-a-jwt\n")
    bad = run_cli({**env, "CLOUDAUTH_TOKEN_CACHE": "memory"}, "token")
    assert bad.returncode == 101 and "client_assertion_file" in bad.stderr, bad.stderr


def test_cli_token_exchange_with_set(servers: Servers, tmp_path: Path) -> None:
    path = tmp_path / "gha-oidc-token"
    Platform(servers).write(path, **subject_claims("repo:octo/app:environment:prod"))
    done = run_cli(
        dict(CLOUDAUTH_CA_FILE=servers.ca_file, CLOUDAUTH_BASE_URL=servers.api,
             CLOUDAUTH_TOKEN_CACHE="memory"),
        "--set", f"token_url={servers.token_url}",
        "--set", "grant_type=token_exchange",
        "--set", f"subject_token_file={path}",
        "--set", f"audience={AUDIENCE_API}",
        "request", "--fail", "/whoami",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["workload"]["sub"] == "repo:octo/app:environment:prod"
