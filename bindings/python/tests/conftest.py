"""Fixtures: the shared stand-in server (tests/standin/server.py) and sessions pointed at it.

The server is the one named by STANDIN_URL when that is set (tests/standin/with_server.sh sets
it); otherwise this suite starts its own on a free port for the whole run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import cloudauth

REPO = Path(__file__).resolve().parents[3]
SERVER = REPO / "tests" / "standin" / "server.py"
CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-secret"

# Never through a proxy from the environment: the stand-in is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pytest_report_header(config: pytest.Config) -> str:
    try:
        library = cloudauth.library_path()
    except cloudauth.LibraryNotFoundError as e:
        library = f"NOT FOUND ({e})"
    return f"cloudauth package: {Path(cloudauth.__file__).parent}\ncloudauth library: {library}"


class Standin:
    """The stand-in's control API (no auth), called with the standard library only."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, payload: Optional[Any] = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        if data is None and method == "POST":
            data = b""
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with _opener.open(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def reset(self) -> None:
        self.call("POST", "/_control/reset")

    def configure(self, **knobs: Any) -> None:
        self.call("POST", "/_control/config", knobs)

    def revoke(self) -> None:
        self.call("POST", "/_control/revoke")

    def stats(self) -> Dict[str, Any]:
        result: Dict[str, Any] = self.call("GET", "/_control/stats")
        return result

    @property
    def token_url(self) -> str:
        return self.url + "/connect/token"


def _spawn_standin() -> Iterator[Standin]:
    """A stand-in of our own on a free port, stopped when the generator is closed."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--lifetime", "3600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the stand-in server did not start (first line: {line!r})")
        yield Standin(f"http://127.0.0.1:{int(line.split()[1])}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="session")
def standin() -> Iterator[Standin]:
    url = os.environ.get("STANDIN_URL")
    if url:
        yield Standin(url)
        return
    yield from _spawn_standin()


@pytest.fixture(scope="session")
def other_standin() -> Iterator[Standin]:
    """A second stand-in on another port: another origin, with its own logs and tokens."""
    yield from _spawn_standin()


@pytest.fixture
def other(other_standin: Standin) -> Standin:
    """The other origin, reset to its defaults."""
    other_standin.reset()
    return other_standin


@pytest.fixture
def server(standin: Standin) -> Standin:
    """The stand-in, reset to its defaults."""
    standin.reset()
    return standin


def make_session(server: Standin, **options: Any) -> cloudauth.Session:
    settings: Dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_url": server.token_url,
        "base_url": server.url,
        "proxy": "none",
    }
    settings.update(options)
    return cloudauth.Session(**settings)


@pytest.fixture
def session(server: Standin) -> Iterator[cloudauth.Session]:
    with make_session(server) as s:
        yield s


SessionFactory = Callable[..., cloudauth.Session]


@pytest.fixture
def make(server: Standin) -> Iterator[SessionFactory]:
    """Makes sessions against the reset stand-in (keywords override the defaults); closes them."""
    created: List[cloudauth.Session] = []

    def factory(**options: Any) -> cloudauth.Session:
        s = make_session(server, **options)
        created.append(s)
        return s

    yield factory
    for s in created:
        s.close()
