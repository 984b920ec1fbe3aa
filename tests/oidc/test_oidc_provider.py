"""cloudauth against oidc-provider, through the Python binding: one test per client
authentication method, DPoP, discovery, resource indicators, audience and extra parameters.

Every test gets its token from oidc-provider and calls the resource server, which answers
200 only when the token verifies against the provider's keys and its binding holds (see
resource_server.mjs); the tests then check what the provider and the server saw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Dict

import pytest

import cloudauth
from conftest import CLIENT_SECRET, HERE, REPO, Servers, cert_thumbprint, p256_jwk_thumbprint

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_RESOURCE = "urn:cloudauth:test-api"  # provider.mjs's


def call_api(s: cloudauth.Session, path: str = "/whoami") -> Dict[str, Any]:
    r = s.get(path)
    assert r.status == 200, f"{r.status} {r.text}"
    seen: Dict[str, Any] = r.json()
    return seen


def last(servers: Servers, kind: str, client: str) -> Dict[str, Any]:
    seen = servers.records(kind, client)
    assert seen, f"the provider saw no {kind} for {client}"
    return seen[-1]


def check_assertion(servers: Servers, client: str, alg: str) -> Dict[str, Any]:
    """The client assertion the provider verified: RFC 7523 §3 claims, a short lifetime."""
    assertion = last(servers, "assertion", client)
    header, claims = assertion["header"], assertion["claims"]
    assert header["alg"] == alg
    assert claims["iss"] == claims["sub"] == client
    assert claims["aud"] in (servers.token_url, servers.mtls_token_url, [servers.token_url])
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["iat"] <= time.time() + 5
    assert 0 < claims["exp"] - claims["iat"] <= 300
    grant = last(servers, "grant", client)
    assert {"client_assertion", "client_assertion_type"} <= set(grant["fields"])
    assert "client_secret" not in grant["fields"]
    return header


# -- shared secrets ------------------------------------------------------------------------


def test_client_secret_basic(session: Any, servers: Servers) -> None:
    s = session("basic-client", CLIENT_SECRET, auth_method="client_secret_basic")
    seen = call_api(s)
    assert (seen["client_id"], seen["scheme"], seen["aud"]) == ("basic-client", "Bearer", DEFAULT_RESOURCE)
    # The secret went in the Authorization header, not the body.
    assert "client_secret" not in last(servers, "grant", "basic-client")["fields"]


def test_client_secret_post(session: Any, servers: Servers) -> None:
    s = session("post-client", CLIENT_SECRET, auth_method="client_secret_post", scope="api:read")
    seen = call_api(s)
    assert (seen["client_id"], seen["scheme"], seen["scope"]) == ("post-client", "Bearer", "api:read")
    assert "client_secret" in last(servers, "grant", "post-client")["fields"]


# -- client assertions ---------------------------------------------------------------------


def test_client_secret_jwt(session: Any, servers: Servers) -> None:
    s = session("secret-jwt-client", CLIENT_SECRET, auth_method="client_secret_jwt")
    assert call_api(s)["client_id"] == "secret-jwt-client"
    check_assertion(servers, "secret-jwt-client", "HS256")


@pytest.mark.parametrize(
    "client, key, alg",
    [
        ("pkjwt-rs256", "rsa.key", "RS256"),
        ("pkjwt-es256", "ec256.key", "ES256"),
        ("pkjwt-eddsa", "ed25519.key", "EdDSA"),
    ],
)
def test_private_key_jwt(session: Any, servers: Servers, client: str, key: str, alg: str) -> None:
    s = session(client, auth_method="private_key_jwt", client_key_file=servers.file(key))
    assert call_api(s)["client_id"] == client
    check_assertion(servers, client, alg)
    first = last(servers, "assertion", client)["claims"]["jti"]
    # A fresh assertion for every token request.
    s.invalidate()
    assert call_api(s)["client_id"] == client
    assert last(servers, "assertion", client)["claims"]["jti"] != first


@pytest.mark.parametrize(
    "key, kid, alg_option, alg",
    [
        ("rsa.key", "rsa", "PS256", "PS256"),
        ("rsa_trad.key", "rsa-trad", None, "RS256"),  # PKCS#1 PEM
        ("ec256_sec1.key", "ec256-sec1", None, "ES256"),  # SEC1 PEM
        ("ec384.key", "ec384", None, "ES384"),
        ("ed25519.key", "ed25519", "EdDSA", "EdDSA"),
    ],
)
def test_private_key_jwt_key_forms_and_algorithms(
    session: Any, servers: Servers, key: str, kid: str, alg_option: Any, alg: str
) -> None:
    options: Dict[str, Any] = {"client_key_id": kid}
    if alg_option:
        options["client_assertion_alg"] = alg_option
    s = session("pkjwt-any", auth_method="private_key_jwt", client_key_file=servers.file(key), **options)
    assert call_api(s)["client_id"] == "pkjwt-any"
    assert check_assertion(servers, "pkjwt-any", alg)["kid"] == kid


def test_private_key_jwt_certificate_credential(session: Any, servers: Servers) -> None:
    """Entra ID's certificate credential: the assertion's header names the certificate."""
    s = session(
        "pkjwt-rs256",
        auth_method="private_key_jwt",
        client_key_file=servers.file("rsa.key"),
        client_cert_file=servers.file("rsa.pem"),
    )
    assert call_api(s)["client_id"] == "pkjwt-rs256"
    header = check_assertion(servers, "pkjwt-rs256", "RS256")
    assert header["x5t#S256"] == cert_thumbprint(Path(servers.file("rsa.pem")))


def test_rejected_client_wrong_key(session: Any, servers: Servers) -> None:
    s = session("pkjwt-rs256", auth_method="private_key_jwt", client_key_file=servers.file("wrong_rsa.key"))
    with pytest.raises(cloudauth.AuthRejected) as info:
        s.token()
    message = info.value.message
    assert "invalid_client" in message and "\n" not in message
    key_body = "".join(Path(servers.file("wrong_rsa.key")).read_text().splitlines()[1:-1])
    for chunk in (key_body[i : i + 16] for i in range(0, len(key_body) - 16, 16)):
        assert chunk not in message
    assert "PRIVATE KEY" not in message
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}", message), "an assertion in the message"


# -- mutual TLS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client, name",
    [("tls-client", "client_tls"), ("self-signed-client", "client_self")],
)
def test_mutual_tls(session: Any, servers: Servers, client: str, name: str) -> None:
    method = "tls_client_auth" if client == "tls-client" else "self_signed_tls_client_auth"
    s = session(
        client,
        auth_method=method,
        token_url=servers.mtls_token_url,
        client_cert_file=servers.file(name + ".pem"),
        client_key_file=servers.file(name + ".key"),
    )
    seen = call_api(s)
    thumbprint = cert_thumbprint(Path(servers.file(name + ".pem")))
    # The token is bound to the certificate, and the API request presented it.
    assert seen["cnf"] == {"x5t#S256": thumbprint}
    assert seen["certificate"] == thumbprint
    assert seen["client_id"] == client
    # Another origin never gets the certificate, so the bound token is refused there.
    r = s.get(servers.api_other + "/whoami")
    assert r.status == 401 and "no client certificate" in r.json()["reason"]


def test_mutual_tls_through_discovery_uses_the_mtls_alias(session: Any, servers: Servers) -> None:
    s = session(
        "tls-client",
        auth_method="tls_client_auth",
        issuer=servers.issuer,
        client_cert_file=servers.file("client_tls.pem"),
        client_key_file=servers.file("client_tls.key"),
    )
    assert call_api(s)["certificate"] == cert_thumbprint(Path(servers.file("client_tls.pem")))
    assert last(servers, "grant", "tls-client")["endpoint"] == servers.mtls_token_url


# -- DPoP ----------------------------------------------------------------------------------


def test_dpop_with_token_endpoint_nonce(session: Any, servers: Servers) -> None:
    s = session("dpop-client", CLIENT_SECRET, dpop=True)
    first = call_api(s)
    second = call_api(s)  # a new proof (jti) per request: the server refuses a replay
    assert first["scheme"] == second["scheme"] == "DPoP"
    assert first["proof"]["jkt"] == first["cnf"]["jkt"] == second["proof"]["jkt"]
    assert first["proof"]["alg"] == "ES256"
    grant = last(servers, "grant", "dpop-client")
    # oidc-provider requires a nonce: the first proof was refused, the nonce learned.
    assert grant["dpop"]["claims"]["nonce"]
    assert grant["dpop"]["claims"]["htm"] == "POST"
    assert grant["dpop"]["claims"]["htu"] == servers.token_url
    assert grant["dpop"]["header"]["jwk"]["kty"] == "EC" and "d" not in grant["dpop"]["header"]["jwk"]
    assert s.stats().token_requests == 2  # the refused one and the resend


def test_dpop_private_key_jwt_pinned_key(session: Any, servers: Servers) -> None:
    """Okta's combination: private_key_jwt and DPoP, the DPoP key pinned by a file."""
    s = session(
        "dpop-pkjwt-client",
        auth_method="private_key_jwt",
        client_key_file=servers.file("ec256.key"),
        dpop=True,
        dpop_key_file=servers.file("dpop.key"),
    )
    seen = call_api(s)
    assert seen["scheme"] == "DPoP"
    assert seen["cnf"]["jkt"] == p256_jwk_thumbprint(Path(servers.file("dpop.key")))
    check_assertion(servers, "dpop-pkjwt-client", "ES256")


def test_dpop_api_nonce_is_learned_and_the_request_resent(session: Any, servers: Servers) -> None:
    s = session("dpop-client", CLIENT_SECRET, dpop=True)
    before = servers.api_stats()["nonce_challenges"]
    seen = call_api(s, "/nonce/report")
    assert seen["proof"]["nonce"]
    assert servers.api_stats()["nonce_challenges"] == before + 1
    # The nonce is kept: the next request carries it and is not challenged again.
    assert call_api(s, "/nonce/report")["proof"]["nonce"] == seen["proof"]["nonce"]
    assert servers.api_stats()["nonce_challenges"] == before + 1


# -- discovery, resource indicators, audience, extra parameters ------------------------------


def test_discovery_through_issuer(session: Any, servers: Servers) -> None:
    s = session("post-client", CLIENT_SECRET, issuer=servers.issuer)
    assert call_api(s)["client_id"] == "post-client"
    assert last(servers, "grant", "post-client")["endpoint"] == servers.token_url


def test_discovery_of_a_foreign_issuer_is_refused(session: Any, servers: Servers) -> None:
    # The same server under another name: its metadata names https://127.0.0.1:..., not this.
    foreign = servers.issuer.replace("127.0.0.1", "localhost")
    s = session("post-client", CLIENT_SECRET, issuer=foreign)
    with pytest.raises(cloudauth.Error) as info:
        s.token()
    assert "issuer" in info.value.message and "\n" not in info.value.message
    assert CLIENT_SECRET not in info.value.message


def test_resource_indicator(session: Any, servers: Servers) -> None:
    s = session("post-client", CLIENT_SECRET, resource="https://api.cloudauth.test/")
    assert call_api(s)["aud"] == "https://api.cloudauth.test/"
    assert last(servers, "grant", "post-client")["resource"] == "https://api.cloudauth.test/"


def test_two_resources_are_sent_as_two_fields(session: Any, servers: Servers) -> None:
    # oidc-provider issues a client-credentials token for one resource only, so naming two is
    # refused; its refusal proves both arrived as separate `resource` fields.
    s = session(
        "post-client",
        CLIENT_SECRET,
        resource=["https://api.cloudauth.test/", "https://other.cloudauth.test/"],
    )
    with pytest.raises(cloudauth.AuthRejected, match="invalid_target"):
        s.token()
    refused = last(servers, "grant_error", "post-client")
    assert refused["error"] == "invalid_target" and "single resource" in refused["description"]


def test_audience(session: Any, servers: Servers) -> None:
    s = session("post-client", CLIENT_SECRET, audience="https://audience.cloudauth.test/")
    assert call_api(s)["aud"] == "https://audience.cloudauth.test/"


def test_token_params(session: Any, servers: Servers) -> None:
    s = session(
        "basic-client", CLIENT_SECRET, auth_method="client_secret_basic", token_params={"tenant": "blue"}
    )
    assert call_api(s)["extra_params"] == {"tenant": "blue"}


# -- bad key material: a clear error naming the key, never its contents ----------------------


@pytest.mark.parametrize(
    "options, named",
    [
        ({"client_key_file": "encrypted.key"}, "client_key_file"),
        ({"client_key_file": "missing.key"}, "client_key_file"),
        ({"client_key_file": "ec256.key", "client_assertion_alg": "RS256"}, "client_assertion_alg"),
        ({"client_key_file": "ec256.key", "client_cert_file": "rsa.pem"}, "client_cert_file"),
    ],
)
def test_bad_key_material_is_invalid_argument(servers: Servers, options: Dict[str, str], named: str) -> None:
    resolved: Dict[str, Any] = {
        k: (servers.file(v) if k.endswith("_file") else v) for k, v in options.items()
    }
    with pytest.raises(cloudauth.InvalidArgument) as info:
        cloudauth.Session(
            "pkjwt-any",
            token_url=servers.token_url,
            ca_file=servers.ca_file,
            auth_method="private_key_jwt",
            **resolved,
        )
    message = info.value.message
    assert named in message and "\n" not in message
    assert "PRIVATE KEY" not in message and "MII" not in message


# -- the command-line tool -------------------------------------------------------------------


def test_cli_private_key_jwt_from_the_environment(servers: Servers, tmp_path: Path) -> None:
    """The CLI passes the new keys through CLOUDAUTH_* and --set (token_param.NAME included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDAUTH_")}
    env.update(
        CLOUDAUTH_CLIENT_ID="pkjwt-es256",
        CLOUDAUTH_AUTH_METHOD="private_key_jwt",
        CLOUDAUTH_CLIENT_KEY_FILE=servers.file("ec256.key"),
        CLOUDAUTH_ISSUER=servers.issuer,
        CLOUDAUTH_CA_FILE=servers.ca_file,
        CLOUDAUTH_BASE_URL=servers.api,
        CLOUDAUTH_TOKEN_CACHE_DIR=str(tmp_path / "cache"),
    )
    done = subprocess.run(
        [str(REPO / "target" / "release" / "cloudauth"), "--set", "token_param.tenant=cli"]
        + ["request", "--fail", "/whoami"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["client_id"], seen["extra_params"]) == ("pkjwt-es256", {"tenant": "cli"})


def test_cpp_mutual_tls(servers: Servers, tmp_path: Path) -> None:
    """The C++ binding passes the new keys straight to the library: tls_client_auth from C++."""
    exe = tmp_path / "smoke"
    subprocess.run(
        ["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", str(HERE / "smoke" / "smoke.cpp"),
         f"-I{REPO / 'include'}", f"-I{REPO / 'bindings' / 'cpp'}", f"-L{REPO / 'target' / 'release'}",
         f"-Wl,-rpath,{REPO / 'target' / 'release'}", "-lcloudauth", "-o", str(exe)],
        check=True,
        timeout=180,
    )
    done = subprocess.run(
        [str(exe), "client_id=tls-client", "auth_method=tls_client_auth",
         f"token_url={servers.mtls_token_url}", f"base_url={servers.api}", f"ca_file={servers.ca_file}",
         f"client_cert_file={servers.file('client_tls.pem')}",
         f"client_key_file={servers.file('client_tls.key')}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status, body = done.stdout.split("\n", 1)
    assert status == "200", body
    thumbprint = cert_thumbprint(Path(servers.file("client_tls.pem")))
    assert json.loads(body)["cnf"] == {"x5t#S256": thumbprint}


def test_dotnet_self_signed_mutual_tls(servers: Servers, tmp_path: Path) -> None:
    """The .NET binding passes the new keys straight to the library: self_signed_tls_client_auth."""
    exe = tmp_path / "Smoke.exe"
    sources = sorted(str(p) for p in (REPO / "bindings" / "dotnet" / "src").glob("*.cs"))
    subprocess.run(
        ["mcs", "-nologo", "-warnaserror+", "-nowarn:1591", "-r:System.Net.Http.dll", f"-out:{exe}",
         str(HERE / "smoke" / "Smoke.cs"), *sources],
        check=True,
        timeout=180,
    )
    env = dict(os.environ, LD_LIBRARY_PATH=str(REPO / "target" / "release"))
    done = subprocess.run(
        ["mono", str(exe), "client_id=self-signed-client", "auth_method=self_signed_tls_client_auth",
         f"issuer={servers.issuer}", f"base_url={servers.api}", f"ca_file={servers.ca_file}",
         f"client_cert_file={servers.file('client_self.pem')}",
         f"client_key_file={servers.file('client_self.key')}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    status, body = done.stdout.split("\n", 1)
    assert status == "200", body
    assert json.loads(body)["certificate"] == cert_thumbprint(Path(servers.file("client_self.pem")))


# -- key rotation, shared caches, a refused certificate --------------------------------------


def test_client_key_file_is_read_at_each_token_request(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    """Replacing the key file rotates the key: the next assertion is signed with the new one."""
    key = tmp_path / "client.key"
    key.write_text(Path(servers.file("ec256.key")).read_text())
    s = session("pkjwt-any", auth_method="private_key_jwt", client_key_file=str(key))
    assert call_api(s)["client_id"] == "pkjwt-any"
    check_assertion(servers, "pkjwt-any", "ES256")
    key.write_text(Path(servers.file("ec384.key")).read_text())
    s.invalidate()
    assert call_api(s)["client_id"] == "pkjwt-any"
    check_assertion(servers, "pkjwt-any", "ES384")


def test_shared_cache_holds_dpop_tokens_only_with_a_pinned_key(
    session: Any, servers: Servers, tmp_path: Path
) -> None:
    cache = {"token_cache": "file", "token_cache_dir": str(tmp_path / "cache")}
    pinned = {"dpop": True, "dpop_key_file": servers.file("dpop.key"), **cache}
    first = session("dpop-client", CLIENT_SECRET, **pinned)
    assert call_api(first)["scheme"] == "DPoP"
    second = session("dpop-client", CLIENT_SECRET, **pinned)
    assert call_api(second)["scheme"] == "DPoP"  # the cached token, with proofs of the same key
    assert (second.stats().shared_cache_hits, second.stats().token_requests) == (1, 0)
    # A key of the session's own: its token is for it alone, so the cache is not used.
    own = session("dpop-client", CLIENT_SECRET, dpop=True, **cache)
    assert call_api(own)["scheme"] == "DPoP"
    assert own.stats().shared_cache_hits == 0 and own.stats().token_requests >= 1


def test_tls_client_auth_with_a_certificate_the_ca_did_not_issue(session: Any, servers: Servers) -> None:
    s = session(
        "tls-client",
        auth_method="tls_client_auth",
        token_url=servers.mtls_token_url,
        client_cert_file=servers.file("client_self.pem"),
        client_key_file=servers.file("client_self.key"),
    )
    with pytest.raises(cloudauth.AuthRejected, match="invalid_client"):
        s.token()
    assert last(servers, "grant_error", "tls-client")["detail"] == "client certificate was not verified"
