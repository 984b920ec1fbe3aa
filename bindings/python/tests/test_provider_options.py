"""The identity-provider options (v2 keys): typed, documented, and turned into the C keys.

Against the stand-in, which logs each token request's form; the same options against a real
provider are tested by tests/oidc (tests/run/oidc.sh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest
from conftest import SessionFactory, Standin
from test_polish import run_mypy

import cloudauth
from cloudauth._options import expand


def token_form(server: Standin) -> Dict[str, Any]:
    last = server.stats()["last_token_request"]
    assert last is not None, "no token request reached the stand-in"
    form: Dict[str, Any] = last["form"]
    return form


def test_expand_turns_token_params_and_resource_lists_into_c_keys() -> None:
    expanded = list(
        expand(
            {
                "scope": "api",
                "token_params": {"tenant": "blue", "prompt": "none"},
                "resource": ["https://a.example/", "https://b.example/"],
            }
        )
    )
    assert expanded == [
        ("scope", "api"),
        ("token_param.tenant", "blue"),
        ("token_param.prompt", "none"),
        ("resource", "https://a.example/,https://b.example/"),
    ]
    assert list(expand({"resource": "https://a.example/"})) == [("resource", "https://a.example/")]


@pytest.mark.parametrize(
    "options, error, text",
    [
        ({"token_params": "tenant=blue"}, TypeError, "token_params must be a mapping"),
        ({"token_params": {"": "x"}}, TypeError, "non-empty"),
        ({"resource": ["https://a.example/", 3]}, TypeError, "resource items must be str"),
        ({"resource": ["https://a.example/x,y"]}, ValueError, "holds no comma"),
    ],
)
def test_expand_refuses_malformed_values(options: Dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        list(expand(options))


def test_audience_resource_and_token_params_reach_the_token_endpoint(
    make: SessionFactory, server: Standin
) -> None:
    s = make(
        audience="https://api.example/",
        resource="https://api.example/v2",
        token_params={"tenant": "blue"},
    )
    s.token()
    form = token_form(server)
    assert form["audience"] == "https://api.example/"
    assert form["resource"] == "https://api.example/v2"
    assert form["tenant"] == "blue"


def test_a_missing_client_key_file_names_the_key(make: SessionFactory, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.key"
    with pytest.raises(cloudauth.InvalidArgument, match="client_key_file"):
        make(client_secret=None, auth_method="private_key_jwt", client_key_file=str(missing))


def test_mypy_accepts_the_provider_options(tmp_path: Path) -> None:
    done = run_mypy(
        tmp_path,
        'auth_method="private_key_jwt", client_key_file="k.pem", client_assertion_alg="ES256",'
        ' dpop=True, issuer="https://idp.example", resource=["https://a/", "https://b/"],'
        ' token_params={"tenant": "x"}',
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_rejects_an_unknown_assertion_algorithm(tmp_path: Path) -> None:
    done = run_mypy(tmp_path, 'client_assertion_alg="HS512"')
    assert done.returncode != 0 and "client_assertion_alg" in done.stdout
