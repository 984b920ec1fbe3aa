"""cloudauth.openapi.authorize with the official Aspose OCR SDK (aspose-ocr-cloud from PyPI,
installed by tests/run/python.sh): the SDK's RecognizeImage flow against the stand-in, every
call carrying the session's token, a revoked token replaced transparently."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

import cloudauth
import cloudauth.openapi

from conftest import SessionFactory, Standin

import aspose_ocr_cloud as ocr  # type: ignore[import-untyped]  # installed by run_python.sh

IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode("ascii")


def recognize(api: Any) -> Any:
    """The SDK's own example flow: post the image, poll for the result."""
    body = ocr.OCRRecognizeImageBody(image=IMAGE, settings=ocr.OCRSettingsRecognizeImage())
    task_id = api.post_recognize_image(body)
    for _ in range(20):
        result = api.get_recognize_image(task_id)
        if result.task_status == "Completed":
            return result
        time.sleep(0.05)
    raise AssertionError("the task never completed")


def sdk_client(server: Standin) -> Any:
    return ocr.ApiClient(ocr.Configuration(host=server.url))


def test_recognize_image_flow(make: SessionFactory, server: Standin) -> None:
    session = make()
    client = sdk_client(server)
    assert cloudauth.openapi.authorize(client, session) is client
    result = recognize(ocr.RecognizeImageApi(client))
    assert result.response_status_code == "Ok"
    text = base64.b64decode(result.results[0].data).decode("utf-8")
    assert text.startswith("Hello from the cloudauth stand-in")
    stats = server.stats()
    assert stats["token_requests"] == 1  # one token for the post and every poll
    assert stats["unauthorized"] == 0
    assert isinstance(client.configuration, ocr.Configuration)
    assert client.configuration.access_token == session.token()


def test_revoked_token_is_replaced_transparently(make: SessionFactory, server: Standin) -> None:
    session = make()
    client = cloudauth.openapi.authorize(sdk_client(server), session)
    api = ocr.RecognizeImageApi(client)
    body = ocr.OCRRecognizeImageBody(image=IMAGE, settings=ocr.OCRSettingsRecognizeImage())
    task_id = api.post_recognize_image(body)
    first = session.token()
    server.revoke()
    result = api.get_recognize_image(task_id)  # 401, then resent with a new token
    assert result.response_status_code == "Ok" and result.id == task_id
    assert session.token() != first
    stats = server.stats()
    assert stats["unauthorized"] == 1 and stats["token_requests"] == 2


def test_configuration_alone(make: SessionFactory, server: Standin) -> None:
    session = make()
    config = ocr.Configuration(host=server.url)
    other = ocr.Configuration(host=server.url)
    assert cloudauth.openapi.authorize(config, session) is config
    assert config.auth_settings()["JWT"]["value"] == "Bearer " + session.token()
    assert other.access_token is None  # only the object given is changed
    config.access_token = "ignored"  # what the SDK's own code may assign
    assert config.access_token == session.token()
    result = recognize(ocr.RecognizeImageApi(ocr.ApiClient(config)))
    assert result.response_status_code == "Ok"


def test_plain_http_to_a_remote_host_is_refused(make: SessionFactory, server: Standin) -> None:
    client = cloudauth.openapi.authorize(
        ocr.ApiClient(ocr.Configuration(host="http://ocr.example.invalid")),
        make(base_url="http://ocr.example.invalid"),
    )
    # The SDK reads the token while building the request; the library's rule stops the send.
    with pytest.raises(cloudauth.InsecureUrl, match="plain http"):
        ocr.RecognizeImageApi(client).get_recognize_image("x")


def test_a_call_to_another_origin_is_refused(
    make: SessionFactory, server: Standin, other: Standin
) -> None:
    # The SDK's host is the other stand-in; the session's base_url is the first one's.
    client = cloudauth.openapi.authorize(ocr.ApiClient(ocr.Configuration(host=other.url)), make())
    with pytest.raises(cloudauth.InvalidArgument, match="not to the session's origin") as e:
        ocr.RecognizeImageApi(client).get_recognize_image("x")
    assert server.url in str(e.value)
    assert other.stats()["api_log"] == []


def test_wrong_targets(make: SessionFactory) -> None:
    with pytest.raises(TypeError, match="Configuration"):
        cloudauth.openapi.authorize(object(), make())
    with pytest.raises(TypeError, match="cloudauth.Session"):
        cloudauth.openapi.authorize(ocr.Configuration(), None)  # type: ignore[arg-type]
