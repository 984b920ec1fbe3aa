"""HttpxAuth with httpx.Client and httpx.AsyncClient against the stand-in: the token, one
resend after a revoked token, and no token on a redirect to another origin."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any, Iterator

import httpx
import pytest

import cloudauth
from conftest import CLIENT_ID, CLIENT_SECRET, SERVER, SessionFactory, Standin


@pytest.fixture(scope="module")
def other_origin() -> Iterator[str]:
    """A second stand-in, on another port: another origin."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--lifetime", "600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10, **kwargs)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=10, **kwargs)


def make_async(server: Standin) -> cloudauth.AsyncSession:
    return cloudauth.AsyncSession(
        CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, base_url=server.url, proxy="none"
    )


def test_sync_client_adds_the_token(server: Standin, session: cloudauth.Session) -> None:
    with client(auth=cloudauth.HttpxAuth(session)) as http:
        r = http.get(server.url + "/headers")
    assert r.status_code == 200
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token()


def test_sync_client_with_a_revoked_token(server: Standin, session: cloudauth.Session) -> None:
    with client(auth=cloudauth.HttpxAuth(session)) as http:
        first = session.token()
        server.revoke()
        r = http.post(server.url + "/echo", content=b"payload")
        assert r.status_code == 200 and r.content == b"payload"
        assert len(r.history) == 1 and r.history[0].status_code == 401
        assert session.token() != first
    stats = server.stats()
    assert (stats["token_requests"], stats["unauthorized"], stats["api_requests"]) == (2, 1, 1)


def test_a_401_that_persists_is_returned_after_one_resend(
    server: Standin, session: cloudauth.Session
) -> None:
    server.configure(api_script=[{"status": 401}, {"status": 401}])
    with client(auth=cloudauth.HttpxAuth(session)) as http:
        r = http.get(server.url + "/headers")
    assert r.status_code == 401
    assert server.stats()["api_requests"] == 2 and server.stats()["token_requests"] == 2
    # The resend's 401 answered the fresh token: dropped too.
    session.token()
    assert server.stats()["token_requests"] == 3


def _chunks() -> Iterator[bytes]:
    yield from (b"part", b"part")  # a stream httpx reads once


def test_a_stream_body_is_not_resent_but_its_rejected_token_is_dropped(
    server: Standin, session: cloudauth.Session
) -> None:
    first = session.token()
    server.configure(api_script=[{"status": 401}])
    with client(auth=cloudauth.HttpxAuth(session)) as http:
        r = http.post(server.url + "/echo", content=_chunks())
        assert r.status_code == 401 and r.history == []
        stats = server.stats()
        assert (stats["api_requests"], stats["token_requests"]) == (1, 1), "not resent"
        # The token that 401 answered is gone: the next request fetches a new one.
        r = http.get(server.url + "/headers")
        assert r.status_code == 200
        assert r.json()["headers"]["authorization"] == "Bearer " + session.token() != "Bearer " + first
    assert server.stats()["token_requests"] == 2


def test_async_a_stream_body_is_not_resent_but_its_rejected_token_is_dropped(
    server: Standin,
) -> None:
    async def chunks() -> Any:
        yield b"part"

    async def main() -> None:
        async with make_async(server) as s, async_client(auth=cloudauth.HttpxAuth(s)) as http:
            first = await s.token()
            server.configure(api_script=[{"status": 401}])
            r = await http.post(server.url + "/echo", content=chunks())
            assert r.status_code == 401 and r.history == []
            stats = server.stats()
            assert (stats["api_requests"], stats["token_requests"]) == (1, 1), "not resent"
            r = await http.get(server.url + "/headers")
            assert r.status_code == 200
            assert r.json()["headers"]["authorization"] == "Bearer " + await s.token()
            assert await s.token() != first

    asyncio.run(asyncio.wait_for(main(), 30))
    assert server.stats()["token_requests"] == 2


def test_async_client_with_a_revoked_token(server: Standin) -> None:
    async def main() -> None:
        async with make_async(server) as s, async_client(auth=cloudauth.HttpxAuth(s)) as http:
            first = await s.token()
            r = await http.get(server.url + "/headers")
            assert r.json()["headers"]["authorization"] == "Bearer " + first
            server.revoke()
            r = await http.get(server.url + "/headers")
            assert r.status_code == 200 and len(r.history) == 1
            assert r.json()["headers"]["authorization"] == "Bearer " + await s.token()
            assert await s.token() != first

    asyncio.run(asyncio.wait_for(main(), 30))
    stats = server.stats()
    assert (stats["token_requests"], stats["unauthorized"]) == (2, 1)


def test_async_client_never_blocks_the_loop_during_the_first_fetch(server: Standin) -> None:
    server.configure(token_delay_ms=1000)

    async def main() -> float:
        gaps = [0.0]

        async def beat() -> None:
            last = asyncio.get_running_loop().time()
            while True:
                await asyncio.sleep(0.01)
                now = asyncio.get_running_loop().time()
                gaps.append(now - last)
                last = now

        async with make_async(server) as s, async_client(auth=cloudauth.HttpxAuth(s)) as http:
            ticker = asyncio.ensure_future(beat())
            r = await http.get(server.url + "/headers")
            ticker.cancel()
            assert r.status_code == 200
        assert len(gaps) > 10
        return max(gaps)

    # A loop blocked by the 1 s fetch would miss all of it; a busy machine delays some ticks.
    assert asyncio.run(asyncio.wait_for(main(), 30)) < 0.5


def test_a_plain_session_works_in_an_async_client(
    server: Standin, session: cloudauth.Session
) -> None:
    async def main() -> None:
        async with async_client(auth=cloudauth.HttpxAuth(session)) as http:
            r = await http.get(server.url + "/headers")
            assert r.json()["headers"]["authorization"] == "Bearer " + session.token()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("target", ["other port", "other host"])
def test_a_redirect_to_another_origin_never_carries_the_token(
    server: Standin, session: cloudauth.Session, other_origin: str, target: str
) -> None:
    # /public/headers echoes what arrived; "localhost" is another origin on the same server.
    base = other_origin if target == "other port" else server.url.replace("127.0.0.1", "localhost")
    url = f"{server.url}/redirect?to={base}/public/headers"
    with client(auth=cloudauth.HttpxAuth(session), follow_redirects=True) as http:
        r = http.get(url)
    assert r.status_code == 200 and len(r.history) == 1
    assert "authorization" not in r.json()["headers"]

    async def main() -> None:
        async with make_async(server) as s, async_client(
            auth=cloudauth.HttpxAuth(s), follow_redirects=True
        ) as http:
            r = await http.get(url)
            assert r.status_code == 200 and "authorization" not in r.json()["headers"]

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_401_from_another_origin_drops_nothing(
    server: Standin, session: cloudauth.Session, other_origin: str
) -> None:
    token = session.token()
    # The other origin answers 401 to a request without a token: not the token's fault.
    url = f"{server.url}/redirect?to={other_origin}/headers"
    with client(auth=cloudauth.HttpxAuth(session), follow_redirects=True) as http:
        r = http.get(url)
    assert r.status_code == 401 and len(r.history) == 1
    assert session.token() == token
    assert server.stats()["token_requests"] == 1


def test_same_origin_redirect_keeps_the_token(server: Standin, session: cloudauth.Session) -> None:
    with client(auth=cloudauth.HttpxAuth(session), follow_redirects=True) as http:
        r = http.get(f"{server.url}/redirect?to={server.url}/headers")
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token()


def test_no_token_over_plain_http_to_a_remote_host(make: SessionFactory) -> None:
    # base_url names a remote plain-http origin: refused before anything is sent.
    s = make(base_url="http://192.0.2.1")
    with client(auth=cloudauth.HttpxAuth(s)) as http:
        with pytest.raises(cloudauth.InsecureUrl):
            http.get("http://192.0.2.1/api")


def test_a_request_to_another_origin_gets_no_token(
    server: Standin, session: cloudauth.Session, other: Standin
) -> None:
    # The session's origin is the stand-in's (base_url); the other stand-in records what it got.
    with client(auth=cloudauth.HttpxAuth(session)) as http:
        r = http.get(other.url + "/public/headers")
        assert r.status_code == 200 and "authorization" not in r.json()["headers"]
        r = http.get(other.url + "/headers")
        assert r.status_code == 401  # not about our token: returned as is
        r = http.get(server.url.replace("127.0.0.1", "localhost") + "/public/headers")
        assert "authorization" not in r.json()["headers"]
    assert [e["path"] for e in other.stats()["api_log"]] == ["/headers"]  # /public is not logged
    assert not [e for e in other.stats()["api_log"] if "authorization" in e["headers"]]
    assert server.stats()["token_requests"] == 0

    async def main() -> None:
        async with make_async(server) as s, async_client(auth=cloudauth.HttpxAuth(s)) as http:
            r = await http.get(other.url + "/public/headers")
            assert r.status_code == 200 and "authorization" not in r.json()["headers"]
            r = await http.get(server.url + "/public/headers")
            assert r.json()["headers"]["authorization"] == "Bearer " + s.session.token()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_only_base_urls_origin_gets_the_token(
    server: Standin, make: SessionFactory, other: Standin
) -> None:
    s = make(base_url=other.url + "/v1/")
    with client(auth=cloudauth.HttpxAuth(s), follow_redirects=True) as http:
        r = http.get(server.url + "/public/headers")
        assert "authorization" not in r.json()["headers"]
        r = http.get(other.url + "/public/headers")
        assert r.json()["headers"]["authorization"] == "Bearer " + s.token()
        # A redirect from the session's origin to the token server's strips it.
        r = http.get(f"{other.url}/public/redirect?to={server.url}/public/headers")
        assert r.status_code == 200 and len(r.history) == 1
        assert "authorization" not in r.json()["headers"]
    assert not [e for e in server.stats()["api_log"] if "authorization" in e["headers"]]


def test_needs_a_session(make: SessionFactory) -> None:
    with pytest.raises(TypeError):
        cloudauth.HttpxAuth("token")  # type: ignore[arg-type]
