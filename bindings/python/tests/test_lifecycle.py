"""Token lifecycle in Python: stats, events (and their default logging), secret rotation,
client_secret_file and Session.from_env, against the stand-in."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List

import pytest

import cloudauth
from conftest import CLIENT_ID, CLIENT_SECRET, REPO, SessionFactory, Standin

FAST_RETRY = {"max_retry_wait_ms": 20}


def test_stats_and_events_on_a_scripted_run(server: Standin, make: SessionFactory) -> None:
    events: List[cloudauth.Event] = []
    server.configure(token_script=[{"status": 503}])
    s = make(on_event=events.append, **FAST_RETRY)
    assert s.stats().token_expires_in_ms == -1

    s.token()  # 503, retried, then a token
    assert [(e.kind, e.reason, e.http_status) for e in events] == [
        ("retry", "", 503),
        ("token_fetched", "first_use", 200),
    ]
    assert events[0].result == cloudauth.Result.TOKEN_ENDPOINT and events[0].message
    assert events[1].result == cloudauth.Result.OK and events[0].duration_ms >= 1

    server.revoke()
    assert s.get("/headers").status == 200  # 401, new token, resent
    assert [e.kind for e in events[2:]] == ["unauthorized", "token_fetched"]
    assert events[3].reason == "unauthorized"

    stats = s.stats()
    assert isinstance(stats, cloudauth.Stats)
    assert (stats.token_requests, stats.token_failures, stats.api_requests) == (3, 0, 2)
    assert stats.unauthorized_resends == 1
    assert (stats.shared_cache_hits, stats.shared_cache_errors) == (0, 0)
    assert 3_500_000 < stats.token_expires_in_ms <= 3_600_000
    assert server.stats()["token_requests"] == stats.token_requests


def test_a_failed_fetch_is_an_event_and_a_counter(server: Standin, make: SessionFactory) -> None:
    events: List[cloudauth.Event] = []
    s = make(on_event=events.append)
    server.configure(token_script=[{"status": 401, "body": {"error": "invalid_client"}}])
    with pytest.raises(cloudauth.AuthRejected):
        s.token()
    (event,) = events
    assert (event.kind, event.reason, event.http_status) == ("token_fetch_failed", "first_use", 401)
    assert event.result == cloudauth.Result.AUTH_REJECTED
    assert "invalid_client" in event.message and CLIENT_SECRET not in event.message
    assert (s.stats().token_requests, s.stats().token_failures) == (1, 1)


def test_events_go_to_the_cloudauth_logger_by_default(
    server: Standin, make: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cloudauth")
    s = make()
    s.token()
    server.configure(token_script=[{"status": 400, "body": {"error": "invalid_client"}}])
    s.invalidate()
    with pytest.raises(cloudauth.AuthRejected):
        s.token()
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "cloudauth"]
    assert len(records) == 2, records
    assert records[0][0] == logging.INFO and "token_fetched reason=first_use" in records[0][1]
    assert records[1][0] == logging.WARNING and "token_fetch_failed" in records[1][1]
    assert "CLOUDAUTH_ERR_AUTH_REJECTED" in records[1][1]
    token_now = s.stats()
    assert token_now.token_failures == 1
    for _, text in records:
        assert CLIENT_SECRET not in text


def test_an_exception_in_on_event_is_logged_not_raised(
    make: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    calls: List[str] = []

    def broken(event: cloudauth.Event) -> None:
        calls.append(event.kind)
        raise RuntimeError("bug in the user's callback")

    s = make(on_event=broken)
    assert s.get("/headers").status == 200
    assert calls == ["token_fetched"]
    errors = [r for r in caplog.records if r.name == "cloudauth" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "on_event" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "bug in the user's callback" in str(errors[0].exc_info[1])


def test_on_event_must_be_callable(make: SessionFactory) -> None:
    with pytest.raises(TypeError, match="on_event"):
        make(on_event="not a function")


def test_set_credentials_rotates_both_ways(server: Standin, make: SessionFactory) -> None:
    events: List[cloudauth.Event] = []
    s = make(on_event=events.append)
    first = s.token()
    server.configure(clients={CLIENT_ID: "rotated-secret"})
    s.invalidate()
    with pytest.raises(cloudauth.AuthRejected):
        s.token()

    s.set_credentials(CLIENT_ID, "rotated-secret")
    second = s.token()
    assert second != first
    assert events[-1].kind == "token_fetched" and events[-1].reason == "credentials_changed"
    assert server.stats()["last_token_request"]["form"]["client_secret"] == "rotated-secret"

    # And back: the current token stays until invalidated, then the old secret works again.
    server.configure(clients=None)
    s.set_credentials(CLIENT_ID, CLIENT_SECRET)
    assert s.token() == second
    s.invalidate()
    assert s.token() not in (first, second)
    assert server.stats()["last_token_request"]["form"]["client_secret"] == CLIENT_SECRET


def test_set_credentials_rejects_bad_values(make: SessionFactory) -> None:
    s = make()
    with pytest.raises(cloudauth.InvalidArgument):
        s.set_credentials(CLIENT_ID, "")
    with pytest.raises(TypeError):
        s.set_credentials(CLIENT_ID, None)  # type: ignore[arg-type]
    s.close()
    with pytest.raises(cloudauth.ClosedError):
        s.set_credentials(CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(cloudauth.ClosedError):
        s.stats()


def test_client_secret_file_is_read_at_every_fetch(
    server: Standin, tmp_path: Path, make: SessionFactory
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(CLIENT_SECRET + "\n")
    s = make(client_secret=None, client_secret_file=str(secret_file))
    first = s.token()
    assert server.stats()["last_token_request"]["form"]["client_secret"] == CLIENT_SECRET

    # Rotation with no code change: a new file, a server that wants the new secret.
    secret_file.write_text("from-the-new-file\n")
    server.configure(clients={CLIENT_ID: "from-the-new-file"})
    s.invalidate()
    assert s.token() != first
    assert server.stats()["last_token_request"]["form"]["client_secret"] == "from-the-new-file"


def test_client_secret_file_errors_name_the_path(server: Standin, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-secret"
    options = {"token_url": server.token_url, "proxy": "none"}
    with pytest.raises(cloudauth.InvalidArgument) as info:
        cloudauth.Session(CLIENT_ID, client_secret_file=str(missing), **options)
    assert str(missing) in str(info.value)

    # A file that vanishes later: the fetch fails, naming the path.
    present = tmp_path / "secret"
    present.write_text(CLIENT_SECRET)
    with cloudauth.Session(CLIENT_ID, client_secret_file=str(present), **options) as s:
        present.unlink()
        with pytest.raises(cloudauth.Error) as failed:
            s.token()
        assert str(present) in str(failed.value)

    present.write_text(CLIENT_SECRET)
    with pytest.raises(cloudauth.InvalidArgument, match="client_secret"):  # exclusive
        cloudauth.Session(CLIENT_ID, CLIENT_SECRET, client_secret_file=str(present), **options)


def _env(monkeypatch: pytest.MonkeyPatch, server: Standin, prefix: str = "CLOUDAUTH_") -> None:
    monkeypatch.setenv(prefix + "CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv(prefix + "CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv(prefix + "TOKEN_URL", server.token_url)
    monkeypatch.setenv(prefix + "BASE_URL", server.url)
    monkeypatch.setenv(prefix + "PROXY", "none")


def test_from_env(server: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, server)
    monkeypatch.setenv("CLOUDAUTH_NOT_A_KEY", "ignored")
    with cloudauth.Session.from_env() as s:
        assert s.get("/headers").status == 200
    assert server.stats()["last_token_request"]["form"]["client_id"] == CLIENT_ID


def test_from_env_overrides_win(server: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, server)
    monkeypatch.setenv("CLOUDAUTH_CLIENT_SECRET", "wrong-secret")
    monkeypatch.setenv("CLOUDAUTH_SCOPE", "from-env")
    events: List[Any] = []
    with cloudauth.Session.from_env(client_secret=CLIENT_SECRET, on_event=events.append) as s:
        s.token()
    form = server.stats()["last_token_request"]["form"]
    assert (form["client_secret"], form["scope"]) == (CLIENT_SECRET, "from-env")
    assert [e.kind for e in events] == ["token_fetched"]


def test_from_env_with_a_prefix_and_a_secret_file(
    server: Standin, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _env(monkeypatch, server, prefix="MYAPP_")
    monkeypatch.delenv("MYAPP_CLIENT_SECRET")
    secret_file = tmp_path / "secret"
    secret_file.write_text(CLIENT_SECRET)
    monkeypatch.setenv("MYAPP_CLIENT_SECRET_FILE", str(secret_file))
    monkeypatch.setenv("CLOUDAUTH_CLIENT_ID", "not-this-one")  # another prefix: not read
    with cloudauth.Session.from_env(prefix="MYAPP_") as s:
        s.token()
    assert server.stats()["last_token_request"]["form"]["client_id"] == CLIENT_ID


def test_from_env_names_a_malformed_variable(server: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, server)
    monkeypatch.setenv("CLOUDAUTH_TIMEOUT_MS", "soon")
    with pytest.raises(cloudauth.InvalidArgument, match="CLOUDAUTH_TIMEOUT_MS"):
        cloudauth.Session.from_env()


def test_stats_fields_are_the_headers_in_order() -> None:
    import dataclasses
    import re

    header = (REPO / "include" / "cloudauth.h").read_text()
    body = re.search(r"typedef struct cloudauth_stats \{(.*?)\} cloudauth_stats;", header, re.S)
    assert body is not None
    c_fields = re.findall(r"^\s*u?int64_t (\w+);", body.group(1), re.M)
    assert [f.name for f in dataclasses.fields(cloudauth.Stats)] == c_fields


def test_on_event_may_call_into_the_library(server: Standin, make: SessionFactory) -> None:
    seen: List[int] = []
    sessions: List[cloudauth.Session] = []

    def on_event(event: cloudauth.Event) -> None:
        seen.append(sessions[0].stats().token_requests)

    sessions.append(make(on_event=on_event))
    server.configure(token_script=[{"status": 503}])
    sessions[0].token()
    assert seen == [1, 2]  # during the retry, then after the fetch
