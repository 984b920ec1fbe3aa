"""What a new user reaches for first: params= and timeout= per call, typed options that a type
checker verifies, help() that lists them, raise_for_status inside cloudauth.Error, the token's
remaining life, client_secret_file instead of client_secret."""

from __future__ import annotations

import pydoc
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, get_type_hints

import pytest

import cloudauth
from cloudauth._options import OPTION_DOCS

from conftest import CLIENT_SECRET, REPO, SessionFactory, Standin


def echo_query(r: cloudauth.Response) -> str:
    return r.headers["x-echo-query"]


@pytest.mark.parametrize(
    "url, params, query",
    [
        ("/echo", {"a": "1", "b": "x y&z"}, "a=1&b=x+y%26z"),
        ("/echo", [("k", "v"), ("k", "w")], "k=v&k=w"),
        ("/echo", {"many": ["1", "2"], "n": 3, "f": True}, "many=1&many=2&n=3&f=True"),
        ("/echo?fixed=1", {"more": "2"}, "fixed=1&more=2"),
        ("/echo", "raw=1&x=%2F", "raw=1&x=%2F"),
        ("/echo", {}, ""),
        ("/echo#frag", {"a": "1"}, "a=1"),
    ],
)
def test_params(session: cloudauth.Session, url: str, params: Any, query: str) -> None:
    assert echo_query(session.get(url, params=params)) == query
    assert echo_query(session.post(url, params=params, data="x")) == query
    assert echo_query(session.request("PUT", url, params=params)) == query


def test_params_of_a_wrong_type(session: cloudauth.Session) -> None:
    for bad in (b"a=1", 5, object()):
        with pytest.raises(TypeError, match="params"):
            session.get("/echo", params=bad)  # type: ignore[arg-type]


def test_timeout_bounds_the_call(make: SessionFactory, server: Standin) -> None:
    s = make(timeout_ms=20_000)
    started = time.monotonic()
    with pytest.raises(cloudauth.Timeout) as info:
        s.get("/delay/5000", timeout=0.3, params={"secret-ish": "q"})
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 3, elapsed
    assert isinstance(info.value, cloudauth.Error) and isinstance(info.value, TimeoutError)
    assert "timeout=0.3" in str(info.value) and "secret-ish" not in str(info.value)
    # The session is unharmed, and a call within its bound gets its answer.
    r = s.get("/delay/50", timeout=5)
    assert r.status == 200 and r.json() == {"delayed_ms": 50}
    assert s.post("/echo", data=b"body", timeout=5).content == b"body"


def test_timeout_includes_the_token_fetch(make: SessionFactory, server: Standin) -> None:
    server.configure(token_delay_ms=3000)
    s = make()
    started = time.monotonic()
    with pytest.raises(cloudauth.Timeout):
        s.get("/headers", timeout=0.3)
    assert time.monotonic() - started < 2.5


def test_timeout_reports_library_errors(make: SessionFactory, server: Standin) -> None:
    s = make(client_secret="wrong")
    with pytest.raises(cloudauth.AuthRejected, match="invalid_client"):
        s.get("/headers", timeout=5)
    with pytest.raises(cloudauth.InvalidArgument):
        s.get("/headers", headers={"Bad": "a\r\nb"}, timeout=5)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive(session: cloudauth.Session, bad: float) -> None:
    with pytest.raises(cloudauth.InvalidArgument, match="timeout"):
        session.get("/headers", timeout=bad)
    with pytest.raises(TypeError, match="timeout"):
        session.get("/headers", timeout="1")  # type: ignore[arg-type]


def test_raise_for_status_is_a_cloudauth_error(session: cloudauth.Session) -> None:
    r = session.get("/status/503", params={"token": "not-to-be-shown"})
    with pytest.raises(cloudauth.Error) as info:
        r.raise_for_status()
    err = info.value
    assert isinstance(err, cloudauth.HTTPError)
    assert err.status == 503 and err.response is r and err.code == cloudauth.Result.OK
    assert str(err) == "HTTP 503 for GET /status/503"


def test_token_expires_in(make: SessionFactory, server: Standin) -> None:
    server.configure(token_expires_in=120)
    s = make(refresh_skew_s=0)
    left = s.token_expires_in()
    assert isinstance(left, int) and 118 <= left <= 120
    assert server.stats()["token_requests"] == 1
    s.token()
    assert server.stats()["token_requests"] == 1


def test_client_secret_file_instead_of_client_secret(
    make: SessionFactory, server: Standin, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET + "\n")
    s = make(client_secret=None, client_secret_file=str(secret))
    assert s.get("/headers").status == 200
    with pytest.raises(cloudauth.InvalidArgument, match="client_secret is not set"):
        make(client_secret=None)


def test_help_lists_every_option_and_its_default() -> None:
    text = pydoc.render_doc(cloudauth.Session, renderer=pydoc.plaintext)
    for name, default, _ in OPTION_DOCS:
        assert re.search(rf"\b{name}\b +default {re.escape(default)}:", text), name
    assert "https://api.aspose.cloud" in text  # the default base_url is the real API


def test_options_cover_every_library_key() -> None:
    typed = set(get_type_hints(cloudauth.Options))
    documented = [name for name, _, _ in OPTION_DOCS]
    assert sorted(documented) == sorted(typed)
    # The library lists its keys in the unknown-key message.
    with pytest.raises(cloudauth.InvalidArgument) as info:
        cloudauth.Session("id", "secret", no_such_key="x")  # type: ignore[call-arg]
    listed = str(info.value).split("known keys: ", 1)[1]
    # The message is bounded (512 characters): a key cut at the end is left out.
    library = {k.strip() for k in listed.split(",") if "…" not in k} - {"client_id", "client_secret"}
    assert library <= typed, library - typed


MYPY_PROGRAM = """
import cloudauth

s = cloudauth.Session("id", "secret", {options})
s.get("/x", params={{"a": "1"}}, timeout=1.5)
"""


def run_mypy(tmp_path: Path, options: str) -> "subprocess.CompletedProcess[str]":
    program = tmp_path / "program.py"
    program.write_text(MYPY_PROGRAM.format(options=options))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def test_mypy_accepts_correct_options(tmp_path: Path) -> None:
    done = run_mypy(tmp_path, 'timeout_ms=5000, auth_method="client_secret_basic", allow_insecure_http=True')
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    "options, complaint",
    [
        ("timeout=5000", '"timeout"'),
        ("timout_ms=5000", '"timout_ms"'),
        ('timeout_ms="5000"', "timeout_ms"),
        ('auth_method="basic"', "auth_method"),
    ],
)
def test_mypy_catches_a_misspelled_or_mistyped_option(
    tmp_path: Path, options: str, complaint: str
) -> None:
    done = run_mypy(tmp_path, options)
    assert done.returncode == 1, done.stdout + done.stderr
    assert complaint in done.stdout, done.stdout


def test_the_package_passes_mypy_strict(tmp_path: Path) -> None:
    # The session's modules (their source: mypy will not check files inside site-packages);
    # _requests.py, the requests adapter, is not part of this check (httpx's is: it is typed).
    package = REPO / "bindings" / "python" / "src" / "cloudauth"
    files = [
        str(package / f)
        for f in (
            "__init__.py", "_session.py", "_options.py", "_errors.py", "_ffi.py",
            "_events.py", "_config.py", "_lifecycle.py", "_async.py", "_httpx.py", "openapi.py", "_requests.py",
        )
    ]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", *files],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_wheel_is_pure_python_tagged_for_the_platform() -> None:
    # Installed from the repaired wheel (tests/run/python.sh): py3-none-manylinux_*.
    dist = Path(cloudauth.__file__).parent.parent / f"cloudauth-{cloudauth.__version__}.dist-info"
    wheel = (dist / "WHEEL").read_text()
    tags = re.findall(r"^Tag: (\S+)$", wheel, re.M)
    assert tags, wheel
    for tag in tags:
        assert re.fullmatch(r"py3-none-manylinux_\d+_\d+_x86_64|py3-none-manylinux\d+_x86_64", tag), tag
    assert "Root-Is-Purelib: false" in wheel  # it carries a native library
