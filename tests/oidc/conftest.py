"""Fixtures of the real-provider suite: key material made by make_material.sh, and oidc-provider
plus the resource server (servers.mjs) started once for the run, on ephemeral loopback ports.

The servers exit by themselves after their lifetime and as soon as this process closes their
stdin (or dies), so nothing outlives the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import cloudauth

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIFETIME_S = 600
START_TIMEOUT_S = 30
CLIENT_SECRET = "oidc-test-secret-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"  # provider.mjs's

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_of(path: Path, kind: str) -> bytes:
    """A PEM file's DER (``kind`` "x509" for a certificate, "pkey" for a key's public half)."""
    if kind == "x509":
        args = ["openssl", "x509", "-outform", "DER"]
    else:
        args = ["openssl", "pkey", "-pubout", "-outform", "DER"]
    return subprocess.run(args + ["-in", str(path)], capture_output=True, check=True, timeout=30).stdout


def cert_thumbprint(path: Path) -> str:
    """x5t#S256 of a certificate (RFC 8705 §3.1)."""
    return b64url(hashlib.sha256(der_of(path, "x509")).digest())


def p256_jwk_thumbprint(key: Path) -> str:
    """RFC 7638 thumbprint of an EC P-256 key: its SubjectPublicKeyInfo ends with 04 || x || y."""
    point = der_of(key, "pkey")[-64:]
    jwk = {"crv": "P-256", "kty": "EC", "x": b64url(point[:32]), "y": b64url(point[32:])}
    canonical = json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()
    return b64url(hashlib.sha256(canonical).digest())


@dataclass
class Servers:
    issuer: str
    mtls: str
    api: str
    api_other: str
    control: str
    material: Path

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    @property
    def mtls_token_url(self) -> str:
        return self.mtls + "/token"

    @property
    def ca_file(self) -> str:
        return str(self.material / "ca.pem")

    def file(self, name: str) -> str:
        return str(self.material / name)

    def records(self, kind: str, client: str) -> List[Dict[str, Any]]:
        """What the provider or the API saw for this client, oldest first."""
        with _opener.open(self.control + "/records", timeout=10) as r:
            every: List[Dict[str, Any]] = json.load(r)
        return [x for x in every if x["kind"] == kind and x["client"] == client]

    def reset(self) -> None:
        request = urllib.request.Request(self.control + "/reset", data=b"", method="POST")
        _opener.open(request, timeout=10).close()

    def api_stats(self) -> Dict[str, Any]:
        import ssl

        context = ssl.create_default_context(cafile=self.ca_file)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        with opener.open(self.api + "/_rs/stats", timeout=10) as r:
            stats: Dict[str, Any] = json.load(r)
        return stats


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    material = tmp_path_factory.mktemp("material")
    subprocess.run([str(HERE / "make_material.sh"), str(material)], check=True, timeout=120)
    log = open(material / "servers.log", "w")
    proc = subprocess.Popen(
        ["node", str(HERE / "servers.mjs"), "--material", str(material), "--lifetime", str(LIFETIME_S)],
        cwd=HERE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        proc.wait(10)
        log.close()
        raise RuntimeError(f"servers.mjs did not start: {(material / 'servers.log').read_text()[-2000:]}")
    ports = json.loads(line)
    try:
        yield Servers(material=material, **ports)
    finally:
        proc.stdin.close()  # servers.mjs exits when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def session(servers: Servers) -> Iterator[Any]:
    """``session(client_id, secret=None, **options)``: a Session on the resource server with the
    test CA trusted and the provider's token endpoint, closed after the test."""
    made: List[cloudauth.Session] = []

    def make(client_id: str, secret: Any = None, **options: Any) -> cloudauth.Session:
        options.setdefault("ca_file", servers.ca_file)
        options.setdefault("base_url", servers.api)
        if "issuer" not in options:
            options.setdefault("token_url", servers.token_url)
        options.setdefault("timeout_ms", 15_000)
        options.setdefault("refresh_mode", "inline")
        s = cloudauth.Session(client_id, secret, **options)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def pytest_report_header(config: pytest.Config) -> str:
    return f"cloudauth library: {cloudauth.library_path()}; node: {os.popen('node --version').read().strip()}"
