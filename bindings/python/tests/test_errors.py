"""Result codes, the exception classes, and every error the library can be made to report."""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, List

import pytest

import cloudauth
from cloudauth import Result
from cloudauth._errors import EXCEPTIONS, error_for_code

from conftest import SessionFactory, Standin

EXPECTED_CLASSES = {
    Result.INVALID_ARGUMENT: cloudauth.InvalidArgument,
    Result.BUFFER_TOO_SMALL: cloudauth.BufferTooSmall,
    Result.INSECURE_URL: cloudauth.InsecureUrl,
    Result.NETWORK: cloudauth.NetworkError,
    Result.TIMEOUT: cloudauth.Timeout,
    Result.AUTH_REJECTED: cloudauth.AuthRejected,
    Result.TOKEN_ENDPOINT: cloudauth.TokenEndpointError,
    Result.BAD_TOKEN_RESPONSE: cloudauth.BadTokenResponse,
    Result.TOO_LARGE: cloudauth.TooLarge,
    Result.INTERNAL: cloudauth.InternalError,
    Result.CANCELLED: cloudauth.Cancelled,
    Result.WOULD_BLOCK: cloudauth.WouldBlock,
}


def test_result_enum_mirrors_the_library() -> None:
    for code in Result:
        assert cloudauth.result_name(code) == code.c_name
    assert [int(c) for c in Result] == list(range(13))
    assert cloudauth.result_name(13) == "CLOUDAUTH_UNKNOWN_RESULT"


@pytest.mark.parametrize("code", list(EXPECTED_CLASSES))
def test_one_exception_class_per_code(code: Result) -> None:
    cls = EXPECTED_CLASSES[code]
    assert EXCEPTIONS[code] is cls
    assert issubclass(cls, cloudauth.Error)
    err = error_for_code(int(code), "what went wrong")
    assert type(err) is cls
    assert err.code is code
    assert err.message == "what went wrong" == str(err)
    assert code.c_name in repr(err)


def test_exception_classes_are_distinct_and_have_builtin_bases() -> None:
    assert len(set(EXPECTED_CLASSES.values())) == len(EXPECTED_CLASSES)
    assert issubclass(cloudauth.Timeout, TimeoutError)
    assert issubclass(cloudauth.NetworkError, ConnectionError)
    assert issubclass(cloudauth.InvalidArgument, ValueError)
    assert issubclass(cloudauth.ClosedError, cloudauth.InvalidArgument)


def test_unknown_code_and_empty_message() -> None:
    err = error_for_code(42, "", "cloudauth_session_token")
    assert type(err) is cloudauth.Error
    assert err.code == 42
    assert "cloudauth_session_token" in str(err) and "42" in str(err)
    err = error_for_code(5, "")
    assert isinstance(err, cloudauth.Timeout)
    assert "CLOUDAUTH_ERR_TIMEOUT" in str(err)


# -- provoked through the library ---------------------------------------------------------------


def test_invalid_argument_unknown_key(make: SessionFactory) -> None:
    with pytest.raises(cloudauth.InvalidArgument) as info:
        make(tiemout_ms=5)
    assert info.value.code is Result.INVALID_ARGUMENT
    assert isinstance(info.value, ValueError)
    assert "tiemout_ms" in str(info.value)


@pytest.mark.parametrize(
    "key, value",
    [
        ("timeout_ms", "soon"),
        ("timeout_ms", -1),
        ("max_retries", 1000),
        ("auth_method", "telepathy"),
        ("allow_insecure_http", "maybe"),
        ("token_url", "not a url"),
        ("base_url", "ftp://127.0.0.1/"),
        ("client_id", ""),
    ],
)
def test_invalid_argument_bad_value_names_the_key(make: SessionFactory, key: str, value: object) -> None:
    with pytest.raises(cloudauth.InvalidArgument) as info:
        make(**{key: value})
    assert key in str(info.value)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Split": "a\r\nX-Evil: 1"},
        {"Bad Name": "v"},
        {"Authorization": "Bearer mine"},
        {"X-Ctl": "\x01"},
    ],
)
def test_invalid_argument_from_request_headers(make: SessionFactory, headers: Dict[str, str]) -> None:
    with pytest.raises(cloudauth.InvalidArgument):
        make().get("/headers", headers=headers)


def test_invalid_argument_bad_method(make: SessionFactory) -> None:
    with pytest.raises(cloudauth.InvalidArgument) as info:
        make().request("NOT A METHOD", "/echo")
    assert "method" in str(info.value)


def test_insecure_token_url_and_the_bool_option(make: SessionFactory, server: Standin) -> None:
    remote = "http://cloudauth-test.invalid/connect/token"
    with pytest.raises(cloudauth.InsecureUrl) as info:
        make(token_url=remote)
    assert info.value.code is Result.INSECURE_URL
    with pytest.raises(cloudauth.InsecureUrl):
        make(token_url=remote, allow_insecure_http=False)
    # True is passed as "true": the session is created (and sends nothing yet).
    make(token_url=remote, allow_insecure_http=True).close()
    assert server.stats()["token_requests"] == 0


def test_insecure_request_url_sends_nothing(make: SessionFactory, server: Standin) -> None:
    s = make()
    with pytest.raises(cloudauth.InsecureUrl):
        s.get("http://cloudauth-test.invalid/echo")
    assert server.stats()["api_requests"] == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_network_error(make: SessionFactory) -> None:
    s = make(token_url=f"http://127.0.0.1:{_closed_port()}/connect/token", max_retries=0)
    with pytest.raises(cloudauth.NetworkError) as info:
        s.token()
    assert info.value.code is Result.NETWORK
    assert isinstance(info.value, ConnectionError)


def test_timeout_on_token_request(make: SessionFactory, server: Standin) -> None:
    server.configure(token_delay_ms=3000)
    s = make(timeout_ms=200, max_retries=0)
    with pytest.raises(cloudauth.Timeout) as info:
        s.token()
    assert info.value.code is Result.TIMEOUT
    assert isinstance(info.value, TimeoutError)


def test_timeout_on_api_request(make: SessionFactory) -> None:
    s = make(timeout_ms=300)
    s.token()
    with pytest.raises(TimeoutError):
        s.get("/delay/3000")


def test_auth_rejected(make: SessionFactory) -> None:
    s = make(client_secret="wrong-secret-value")
    with pytest.raises(cloudauth.AuthRejected) as info:
        s.token()
    assert info.value.code is Result.AUTH_REJECTED
    assert "invalid_client" in str(info.value)
    assert "wrong-secret-value" not in str(info.value)


def test_token_endpoint_error(make: SessionFactory, server: Standin) -> None:
    server.configure(token_default={"status": 503})
    s = make(max_retries=0)
    with pytest.raises(cloudauth.TokenEndpointError) as info:
        s.token()
    assert info.value.code is Result.TOKEN_ENDPOINT
    assert "503" in str(info.value)


@pytest.mark.parametrize(
    "knobs",
    [
        {"token_script": [{"body": "this is not JSON"}]},
        {"token_script": [{"body": json.dumps({"expires_in": 3600, "token_type": "Bearer"})}]},
        {"token_type": "mac"},
        {"token_expires_in": "soon"},
    ],
    ids=["not-json", "no-access-token", "wrong-token-type", "bad-expires-in"],
)
def test_bad_token_response(make: SessionFactory, server: Standin, knobs: Dict[str, Any]) -> None:
    server.configure(**knobs)
    with pytest.raises(cloudauth.BadTokenResponse) as info:
        make(max_retries=0).token()
    assert info.value.code is Result.BAD_TOKEN_RESPONSE


def test_too_large_api_response(make: SessionFactory) -> None:
    s = make(max_response_bytes=1000)
    assert len(s.get("/big?bytes=1000").content) == 1000
    with pytest.raises(cloudauth.TooLarge) as info:
        s.get("/big?bytes=5000")
    assert info.value.code is Result.TOO_LARGE


def test_too_large_token_response(make: SessionFactory, server: Standin) -> None:
    server.configure(token_script=[{"pad_bytes": 2 * 1024 * 1024}])
    with pytest.raises(cloudauth.TooLarge):
        make(max_retries=0).token()


def test_all_errors_are_catchable_as_cloudauth_error(make: SessionFactory) -> None:
    s = make(client_secret="nope")
    with pytest.raises(cloudauth.Error):
        s.get("/headers")


# -- secrets stay out of messages ------------------------------------------------------------

SECRET = "Zq7-very-SECRET-value-91"


def _messages(exc: BaseException) -> str:
    return f"{exc}\n{exc!r}\n{exc.args!r}"


def test_messages_never_contain_the_secret(make: SessionFactory, server: Standin) -> None:
    failures: List[BaseException] = []
    # Rejected by the token endpoint, in both client authentication methods.
    for method in ("client_secret_post", "client_secret_basic"):
        s = make(client_secret=SECRET, auth_method=method)
        with pytest.raises(cloudauth.AuthRejected) as info:
            s.token()
        failures.append(info.value)
        with pytest.raises(cloudauth.AuthRejected) as info:
            s.get("/headers")
        failures.append(info.value)
    # Refused before reaching C.
    with pytest.raises(cloudauth.InvalidArgument) as info1:
        make(client_secret=SECRET + "\0")
    failures.append(info1.value)
    with pytest.raises(cloudauth.InvalidArgument) as info2:
        make(client_secret=SECRET + "\ud800")
    assert info2.value.__context__ is None  # no UnicodeEncodeError holding the value
    failures.append(info2.value)
    with pytest.raises(TypeError) as info3:
        make(client_secret=[SECRET])
    failures.append(info3.value)
    # The session itself never shows it.
    s = make(client_secret=SECRET)
    assert SECRET not in repr(s) and SECRET not in str(s)
    for exc in failures:
        assert SECRET not in _messages(exc)
        assert "Zq7" not in _messages(exc)
    # The rejections came from the server, which saw the secret.
    assert server.stats()["token_requests"] >= 4


def test_messages_never_contain_the_token(make: SessionFactory, server: Standin) -> None:
    s = make(max_response_bytes=10)
    token = s.token()
    with pytest.raises(cloudauth.TooLarge) as info:
        s.get("/big?bytes=100")
    assert token not in _messages(info.value)
    bad = {"access_token": "tok-SHOULD-NOT-SHOW", "expires_in": "x", "token_type": "Bearer"}
    server.configure(token_script=[{"body": json.dumps(bad)}])
    s2 = make(max_retries=0)
    with pytest.raises(cloudauth.BadTokenResponse) as info2:
        s2.token()
    assert "tok-SHOULD-NOT-SHOW" not in _messages(info2.value)
