"""Session: options, tokens, requests, responses, and argument checking."""

from __future__ import annotations

import gc
import json
import random
import threading
import weakref
from typing import Any, Callable, Dict, List

import pytest

import cloudauth
from cloudauth import _session

from conftest import CLIENT_SECRET, SessionFactory, Standin


def in_fresh_thread(fn: Callable[[], Any]) -> Any:
    """Runs fn on a new thread (with its own token buffer) and returns or raises its result."""
    box: Dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised on the caller's thread
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# -- tokens ---------------------------------------------------------------------------------


def test_token_is_fetched_once_and_cached(session: cloudauth.Session, server: Standin) -> None:
    token = session.token()
    assert isinstance(token, str) and len(token) > 10
    assert session.token() == token
    assert server.stats()["token_requests"] == 1


def test_token_is_sent_as_bearer(session: cloudauth.Session) -> None:
    r = session.get("/headers")
    assert r.status == 200
    assert r.json()["headers"]["authorization"] == "Bearer " + session.token()


@pytest.mark.parametrize("length", [1, 2047, 2048, 2049, 100_000])
def test_token_buffer_grows_on_demand(
    make: SessionFactory, server: Standin, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    monkeypatch.setattr(_session, "INITIAL_TOKEN_BUFFER", 2048)
    long_token = "".join(random.Random(length).choices("abcdefXYZ0123456789-_.", k=length))
    body = json.dumps({"access_token": long_token, "expires_in": 3600, "token_type": "Bearer"})
    server.configure(token_script=[{"body": body}])
    s = make()
    assert in_fresh_thread(s.token) == long_token
    assert in_fresh_thread(s.token) == long_token  # a second thread, a second buffer
    assert s.token() == long_token
    assert server.stats()["token_requests"] == 1


def test_a_shorter_token_after_a_longer_one(make: SessionFactory, server: Standin) -> None:
    tokens = ["L" * 5000, "s" * 10]
    server.configure(
        token_script=[
            {"body": json.dumps({"access_token": t, "expires_in": 3600, "token_type": "Bearer"})}
            for t in tokens
        ]
    )
    s = make()
    assert s.token() == tokens[0]
    s.invalidate()
    assert s.token() == tokens[1]


def test_invalidate_fetches_a_new_token(session: cloudauth.Session, server: Standin) -> None:
    first = session.token()
    session.invalidate()
    second = session.token()
    assert second != first
    assert server.stats()["token_requests"] == 2


def test_invalidate_with_a_stale_token_spares_the_current_one(
    session: cloudauth.Session, server: Standin
) -> None:
    first = session.token()
    session.invalidate(first)  # still current: dropped
    second = session.token()
    assert second != first
    session.invalidate(first)  # no longer current: the new token survives
    assert session.token() == second
    assert server.stats()["token_requests"] == 2
    with pytest.raises(TypeError):
        session.invalidate(b"bytes")  # type: ignore[arg-type]


def test_401_after_revoke_is_retried_with_a_new_token(
    session: cloudauth.Session, server: Standin
) -> None:
    first = session.token()
    assert session.get("/headers").status == 200
    server.revoke()
    r = session.get("/headers")
    assert r.status == 200
    assert r.json()["headers"]["authorization"] != "Bearer " + first
    stats = server.stats()
    assert stats["token_requests"] == 2
    assert stats["unauthorized"] == 1
    assert session.token() != first


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_odd_credentials_pass_through(make: SessionFactory, server: Standin, method: str) -> None:
    s = make(client_id="odd+id:%", client_secret="s3cr+t:with%odd chars&=", auth_method=method)
    assert s.get("/headers").status == 200
    last = server.stats()["last_token_request"]
    if method == "client_secret_basic":
        assert "authorization" in last["headers"]
    else:
        assert "authorization" not in last["headers"]


def test_int_options_are_passed_as_numbers(make: SessionFactory) -> None:
    s = make(timeout_ms=20000, connect_timeout_ms=5000, max_retries=0, refresh_skew_s=1)
    assert s.get("/headers").status == 200


# -- requests and responses -------------------------------------------------------------------


def test_one_mib_binary_round_trip(session: cloudauth.Session) -> None:
    body = bytearray(bytes(range(256)) * 4096)
    random.Random(7).shuffle(body)
    payload = bytes(body)
    assert len(payload) == 1 << 20 and b"\0" in payload
    r = session.post("/echo", data=payload)
    assert r.status == 200
    assert r.content == payload
    assert r.headers["X-Echo-Method"] == "POST"
    assert r.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"bytes\0body", b"bytes\0body"),
        (bytearray(b"bytearray"), b"bytearray"),
        (memoryview(b"memoryview"), b"memoryview"),
        ("h\u00e9llo \u2603", "h\u00e9llo \u2603".encode()),
        (b"", b""),
        (None, b""),
    ],
)
def test_body_types(session: cloudauth.Session, data: Any, expected: bytes) -> None:
    r = session.put("/echo", data=data)
    assert r.content == expected
    assert r.headers["x-echo-method"] == "PUT"


def test_text_and_json_helpers(session: cloudauth.Session) -> None:
    doc = {"k": [1, "\u00fc", None, True], "n": {"x": 1.5}}
    r = session.post("/echo", json=doc)
    assert r.json() == doc
    assert json.loads(r.text) == doc
    assert r.ok
    r = session.post("/echo", data="h\u00e9llo")
    assert r.text == "h\u00e9llo"
    assert r.encoding == "utf-8"


def test_json_sets_content_type_unless_given(session: cloudauth.Session) -> None:
    r = session.request("GET", "/headers", json={"a": 1})
    assert r.json()["headers"]["content-type"] == "application/json"
    r = session.request("GET", "/headers", json={"a": 1}, headers={"content-type": "application/x+json"})
    assert r.json()["headers"]["content-type"] == "application/x+json"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Custom": "v1", "X-Other": "two words"},
        [("X-Custom", "v1"), ["X-Other", "two words"]],
        (pair for pair in [("X-Custom", "v1"), ("X-Other", "two words")]),
    ],
    ids=["mapping", "pairs", "generator"],
)
def test_request_headers(session: cloudauth.Session, headers: Any) -> None:
    seen = session.get("/headers", headers=headers).json()["headers"]
    assert seen["x-custom"] == "v1"
    assert seen["x-other"] == "two words"


def test_query_string_and_absolute_url(session: cloudauth.Session, server: Standin) -> None:
    r = session.request("DELETE", server.url + "/echo?a=1&b=two")
    assert r.headers["X-Echo-Query"] == "a=1&b=two"
    assert r.headers["x-echo-method"] == "DELETE"
    assert r.method == "DELETE" and r.url == server.url + "/echo?a=1&b=two"


def test_response_headers_mapping(session: cloudauth.Session) -> None:
    h = session.post("/echo", data=b"x").headers
    assert isinstance(h, cloudauth.Headers)
    assert h["content-type"] == h["Content-Type"] == h["CONTENT-TYPE"]
    assert "X-Echo-Method" in h and "x-echo-method" in h
    assert "X-Absent" not in h and 42 not in h  # type: ignore[comparison-overlap]
    assert h.get("X-Absent") is None and h.get("x-absent", "dflt") == "dflt"
    with pytest.raises(KeyError):
        h["X-Absent"]
    names = list(h)
    assert names == [n.lower() for n in names] and len(names) == len(set(names)) == len(h)
    assert "content-length" in names
    assert h.get_all("Content-Type") == ["application/octet-stream"]
    assert h.get_all("x-absent") == []
    assert dict(h)["x-echo-method"] == "POST"


@pytest.mark.parametrize("code", [204, 404, 500])
def test_any_status_is_a_response(session: cloudauth.Session, code: int) -> None:
    r = session.get(f"/status/{code}")
    assert r.status == r.status_code == code
    if code == 204:
        assert r.ok and r.content == b""
        r.raise_for_status()
    else:
        assert not r.ok
        assert r.json() == {"status": code}
        with pytest.raises(cloudauth.HTTPError) as info:
            r.raise_for_status()
        assert info.value.status == code and info.value.response is r
        assert str(code) in str(info.value)
        assert isinstance(info.value, cloudauth.Error)
    assert repr(r) == f"<cloudauth.Response [{code}]>"


def test_persistent_401_is_retried_once_then_returned(
    session: cloudauth.Session, server: Standin
) -> None:
    r = session.get("/status/401")
    assert r.status == 401
    assert server.stats()["token_requests"] == 2


# -- argument checking: TypeError / ValueError before C, never a crash -------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"client_id": None},
        {"client_secret": b"secret-as-bytes"},
        {"timeout_ms": None},
        {"timeout_ms": 1.5},
        {"token_url": b"http://127.0.0.1/"},
        {"scope": ["a", "b"]},
        {"max_retries": object()},
    ],
)
def test_wrong_option_types_raise_type_error(
    make: SessionFactory, server: Standin, options: Dict[str, Any]
) -> None:
    with pytest.raises(TypeError) as info:
        make(**options)
    assert next(iter(options)) in str(info.value)


@pytest.mark.parametrize(
    "options",
    [{"client_id": "nul\0inside"}, {"user_agent": "x\0y"}, {"scope": "\udcff"}],
)
def test_unencodable_option_strings_raise_invalid_argument(
    make: SessionFactory, options: Dict[str, Any]
) -> None:
    with pytest.raises(cloudauth.InvalidArgument):
        make(**options)


def test_missing_credentials(server: Standin) -> None:
    with pytest.raises(TypeError):
        cloudauth.Session(token_url=server.token_url)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.request(None, "/echo"),
        lambda s: s.request(b"GET", "/echo"),
        lambda s: s.request("GET", None),
        lambda s: s.request("GET", 123),
        lambda s: s.get("/echo", headers="X-A: b"),
        lambda s: s.get("/echo", headers=5),
        lambda s: s.get("/echo", headers={"X-A": 1}),
        lambda s: s.get("/echo", headers={1: "a"}),
        lambda s: s.get("/echo", headers=[("X-A",)]),
        lambda s: s.get("/echo", headers=[("X-A", "b", "c")]),
        lambda s: s.post("/echo", data=123),
        lambda s: s.post("/echo", data={"a": 1}),
        lambda s: s.post("/echo", data=b"x", json={"a": 1}),
    ],
)
def test_wrong_argument_types_raise_type_error(session: cloudauth.Session, call: Any) -> None:
    with pytest.raises(TypeError):
        call(session)


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.request("GET", "/echo\0x"),
        lambda s: s.request("GE\0T", "/echo"),
        lambda s: s.get("/echo", headers={"X-A": "a\0b"}),
        lambda s: s.post("/echo", data="\ud800"),
        lambda s: s.post("/echo", json=float("nan")),
        lambda s: s.get("http://"),
    ],
)
def test_bad_argument_values_raise_value_error(
    session: cloudauth.Session, server: Standin, call: Any
) -> None:
    with pytest.raises(ValueError):
        call(session)
    assert server.stats()["api_requests"] == 0


# -- lifetime -----------------------------------------------------------------------------------


def test_close_twice_and_use_after_close(make: SessionFactory) -> None:
    s = make()
    assert not s.closed and "open" in repr(s)
    s.token()
    s.close()
    s.close()
    assert s.closed and "closed" in repr(s)
    for use in (s.token, s.invalidate, lambda: s.get("/headers"), lambda: s.post("/echo", data=b"x")):
        with pytest.raises(cloudauth.ClosedError) as info:
            use()
        assert isinstance(info.value, ValueError) and isinstance(info.value, cloudauth.Error)
        assert "closed" in str(info.value)


def test_context_manager_closes(server: Standin) -> None:
    with cloudauth.Session(
        "demo-client", CLIENT_SECRET, token_url=server.token_url, base_url=server.url, proxy="none"
    ) as s:
        assert s.get("/headers").status == 200
    assert s.closed
    with pytest.raises(cloudauth.ClosedError):
        s.token()


def test_close_after_exception_in_with_block(make: SessionFactory) -> None:
    with pytest.raises(RuntimeError):
        with make() as s:
            raise RuntimeError("boom")
    assert s.closed


def test_sessions_are_freed_by_garbage_collection(make: SessionFactory, server: Standin) -> None:
    refs: List["weakref.ref[cloudauth.Session]"] = []
    for _ in range(20):
        s = cloudauth.Session(
            "demo-client", CLIENT_SECRET, token_url=server.token_url, base_url=server.url, proxy="none"
        )
        s.token()
        refs.append(weakref.ref(s))
        del s
    # A session whose construction failed is collected cleanly too.
    with pytest.raises(cloudauth.InvalidArgument):
        make(no_such_key=1)
    gc.collect()
    assert all(r() is None for r in refs)
    assert server.stats()["token_requests"] == 20
