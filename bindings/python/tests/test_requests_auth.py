"""cloudauth.BearerAuth with the requests package."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Iterator

import pytest
import requests

import cloudauth

from conftest import CLIENT_ID, CLIENT_SECRET, Standin


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as h:
        h.trust_env = False  # no proxy from the environment: the stand-in is on loopback
        yield h


@pytest.fixture
def auth(session: cloudauth.Session) -> cloudauth.BearerAuth:
    return cloudauth.BearerAuth(session)


def test_adds_the_bearer_header(
    http: requests.Session, auth: cloudauth.BearerAuth, session: cloudauth.Session, server: Standin
) -> None:
    r = http.get(server.url + "/headers", auth=auth, timeout=30)
    assert r.status_code == 200
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token()
    assert r.history == []
    # The same URL without it is refused, so the header is what made the difference.
    assert http.get(server.url + "/headers", timeout=30).status_code == 401


def test_retries_once_after_revoke(
    http: requests.Session, auth: cloudauth.BearerAuth, session: cloudauth.Session, server: Standin
) -> None:
    first = session.token()
    assert http.get(server.url + "/headers", auth=auth, timeout=30).status_code == 200
    server.revoke()
    r = http.get(server.url + "/headers", auth=auth, timeout=30)
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [401]
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token() != "Bearer " + first
    assert server.stats()["token_requests"] == 2


def test_works_with_requests_get(auth: cloudauth.BearerAuth, server: Standin) -> None:
    with requests.Session() as h:
        h.trust_env = False
        r = h.request("GET", server.url + "/headers", auth=auth, timeout=30)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "make_body",
    [lambda: b"\x00payload\xff" * 1000, lambda: io.BytesIO(b"\x00stream\xff" * 1000)],
    ids=["bytes", "file"],
)
def test_body_is_sent_again_on_retry(
    http: requests.Session, auth: cloudauth.BearerAuth, server: Standin, make_body: object
) -> None:
    body = make_body()  # type: ignore[operator]
    expected = body if isinstance(body, bytes) else body.getvalue()
    auth.session.token()
    server.revoke()
    r = http.post(server.url + "/echo", data=body, auth=auth, timeout=30)
    assert r.status_code == 200
    assert len(r.history) == 1
    assert r.content == expected


def test_a_persistent_401_is_retried_only_once(
    http: requests.Session, auth: cloudauth.BearerAuth, server: Standin
) -> None:
    r = http.get(server.url + "/status/401", auth=auth, timeout=30)
    assert r.status_code == 401
    assert len(r.history) == 1
    assert server.stats()["token_requests"] == 2
    # The resend's 401 answered the fresh token: dropped too.
    auth.session.token()
    assert server.stats()["token_requests"] == 3


def test_token_errors_surface_from_requests(server: Standin, http: requests.Session) -> None:
    with cloudauth.Session(
        "demo-client", "wrong", token_url=server.token_url, base_url=server.url, proxy="none"
    ) as s:
        with pytest.raises(cloudauth.AuthRejected):
            http.get(server.url + "/headers", auth=cloudauth.BearerAuth(s), timeout=30)


def test_needs_a_session() -> None:
    with pytest.raises(TypeError):
        cloudauth.BearerAuth("demo-secret")  # type: ignore[arg-type]


def test_requests_is_optional_at_import() -> None:
    code = (
        "import sys, cloudauth\n"
        "assert 'requests' not in sys.modules, 'import cloudauth imported requests'\n"
        "cloudauth.BearerAuth\n"
        "assert 'requests' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_message_without_requests(tmp_path: object) -> None:
    # A `requests` that fails to import stands in for a missing one.
    from pathlib import Path

    fake = Path(str(tmp_path)) / "requests"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no requests here')\n")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import cloudauth\n"
        "try:\n"
        "    cloudauth.BearerAuth\n"
        "except ImportError as e:\n"
        "    print(e)\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "pip install requests" in out.stdout


# -- origins: the token goes only where it was attached, and only a 401 from there drops it


REMOTE = "http://api.example.com/headers"  # plain http, not loopback


def _saw_a_token(server: Standin) -> list:
    return [e["path"] for e in server.stats()["api_log"] if "authorization" in e["headers"]]


@pytest.mark.parametrize("code", [302, 307])
def test_a_401_from_another_origin_after_a_redirect_gets_no_token(
    http: requests.Session,
    auth: cloudauth.BearerAuth,
    session: cloudauth.Session,
    server: Standin,
    other: Standin,
    code: int,
) -> None:
    token = session.token()
    target = other.url + "/headers"
    r = http.get(
        server.url + "/redirect", params={"to": target, "code": code}, auth=auth, timeout=30
    )
    assert r.status_code == 401
    assert r.url == target
    assert [h.status_code for h in r.history] == [code]
    # The other origin was asked once, never with a token (requests stripped it; our 401 hook
    # must not put a fresh one back and resend).
    assert [e["path"] for e in other.stats()["api_log"]] == ["/headers"]
    assert _saw_a_token(other) == []
    # Its 401 said nothing about our token: kept, and no new token request.
    assert session.token() == token
    assert server.stats()["token_requests"] == 1
    assert other.stats()["token_requests"] == 0


def test_a_401_after_a_redirect_within_the_origin_is_retried_there(
    http: requests.Session, auth: cloudauth.BearerAuth, session: cloudauth.Session, server: Standin
) -> None:
    first = session.token()
    r = http.get(
        server.url + "/redirect", params={"to": server.url + "/status/401"}, auth=auth, timeout=30
    )
    assert r.status_code == 401
    # The same origin got the token and rejected it: dropped, and the hop resent once.
    assert server.stats()["token_requests"] == 2
    assert session.token() != first
    paths = [e["path"] for e in server.stats()["api_log"]]
    assert paths[0].startswith("/redirect?") and paths[1:] == ["/status/401", "/status/401"]
    assert len(_saw_a_token(server)) == 3


def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent(
    http: requests.Session, make: object, server: Standin
) -> None:
    # The library's rule refuses a token on plain http to a remote host, and so must the
    # adapter, before fetching one. The stand-in is the proxy: nothing would leave the machine.
    s = make(base_url=REMOTE)  # type: ignore[operator]
    with pytest.raises(cloudauth.InsecureUrl) as e:
        http.get(REMOTE, auth=cloudauth.BearerAuth(s), proxies={"http": server.url}, timeout=30)
    assert "api.example.com" in str(e.value)
    assert server.stats()["token_requests"] == 0
    assert server.stats()["api_log"] == []


@pytest.mark.parametrize("value", ["true", "1", "yes", "ON", True])
def test_allow_insecure_http_is_the_librarys_rule(
    http: requests.Session, make: object, server: Standin, value: object
) -> None:
    s = make(allow_insecure_http=value, base_url=REMOTE)  # type: ignore[operator]
    r = http.get(REMOTE, auth=cloudauth.BearerAuth(s), proxies={"http": server.url}, timeout=30)
    assert r.status_code == 200
    assert r.json()["headers"]["authorization"] == "Bearer " + s.token()
    assert _saw_a_token(server) == [REMOTE]


def test_the_origin_is_the_sessions_base_url(
    make: object, server: Standin, other: Standin
) -> None:
    s = make(base_url=server.url + "/v4.0/ocr/")  # type: ignore[operator]
    assert s.origin == server.url
    assert make(base_url="HTTPS://API.Example.com:443/x").origin == "https://api.example.com"  # type: ignore[operator]
    # Without base_url: the default one's. Nothing is sent to find out.
    with cloudauth.Session(CLIENT_ID, CLIENT_SECRET, token_url=server.token_url) as default:
        assert default.origin == "https://api.aspose.cloud"
    assert server.stats()["token_requests"] == 0


def test_a_request_to_another_origin_gets_no_token(
    http: requests.Session, auth: cloudauth.BearerAuth, server: Standin, other: Standin
) -> None:
    # The session's origin is the stand-in's (base_url); the other stand-in records what it got.
    r = http.get(other.url + "/public/headers", auth=auth, timeout=30)
    assert r.status_code == 200
    assert "authorization" not in r.json()["headers"]
    # Its 401 is not about our token: returned as is, nothing fetched, nothing resent.
    r = http.get(other.url + "/headers", auth=auth, timeout=30)
    assert r.status_code == 401
    assert [e["path"] for e in other.stats()["api_log"]] == ["/headers"]  # /public is not logged
    assert _saw_a_token(other) == []
    assert server.stats()["token_requests"] == 0
    assert other.stats()["token_requests"] == 0
    # The same host on another port, or by another name, is another origin too.
    localhost = server.url.replace("127.0.0.1", "localhost")
    r = http.get(localhost + "/public/headers", auth=auth, timeout=30)
    assert "authorization" not in r.json()["headers"]
    assert server.stats()["token_requests"] == 0


def test_only_base_urls_origin_gets_the_token_not_the_token_servers(
    http: requests.Session, make: object, server: Standin, other: Standin
) -> None:
    # Tokens come from the stand-in, but base_url names the other origin: only it gets them.
    s = make(base_url=other.url)  # type: ignore[operator]
    auth = cloudauth.BearerAuth(s)
    r = http.get(server.url + "/public/headers", auth=auth, timeout=30)
    assert "authorization" not in r.json()["headers"]
    r = http.get(other.url + "/public/headers", auth=auth, timeout=30)
    assert r.json()["headers"]["authorization"] == "Bearer " + s.token()
    assert _saw_a_token(server) == []


def test_a_redirect_leaving_the_origin_strips_the_token(
    http: requests.Session, auth: cloudauth.BearerAuth, server: Standin, other: Standin
) -> None:
    target = other.url + "/public/headers"
    r = http.get(server.url + "/redirect", params={"to": target}, auth=auth, timeout=30)
    assert r.status_code == 200 and r.url == target
    assert "authorization" not in r.json()["headers"]
    assert _saw_a_token(other) == []
    # The first hop, to the session's origin, carried it.
    assert [p.split("?")[0] for p in _saw_a_token(server)] == ["/redirect"]
    # The adapter took it off the request requests copies for the next hop (requests would
    # strip it there too, except on an http to https upgrade of the same host on default
    # ports: the adapter's own strip covers that one).
    assert "Authorization" not in r.history[0].request.headers
    # And back: a hop from another origin to the session's gets no token added on the way.
    back = server.url + "/public/headers"
    r = http.get(other.url + "/public/redirect", params={"to": back}, auth=auth, timeout=30)
    assert r.status_code == 200 and r.url == back
    assert "authorization" not in r.json()["headers"]


def test_a_stream_body_is_not_resent_but_its_rejected_token_is_dropped(
    http: requests.Session, auth: cloudauth.BearerAuth, session: cloudauth.Session, server: Standin
) -> None:
    first = session.token()
    server.configure(api_script=[{"status": 401}])
    # A generator: sent chunked, consumed once, cannot be sent again.
    r = http.post(server.url + "/echo", data=(b"part" for _ in range(3)), auth=auth, timeout=30)
    assert r.status_code == 401 and r.history == []
    stats = server.stats()
    assert (stats["api_requests"], stats["token_requests"]) == (1, 1), "not resent"
    # The token that 401 answered is gone: the next request fetches a new one.
    r = http.get(server.url + "/headers", auth=auth, timeout=30)
    assert r.status_code == 200
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token() != "Bearer " + first
    assert server.stats()["token_requests"] == 2
