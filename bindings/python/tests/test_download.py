"""Session.download: the response body written to a file object piece by piece, against the
stand-in."""

from __future__ import annotations

import io
from typing import Any, List

import pytest

import cloudauth

from conftest import SessionFactory, Standin


class Pieces(io.RawIOBase):
    """A file object that records the size of every write."""

    def __init__(self) -> None:
        self.sizes: List[int] = []
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.sizes.append(len(b))
        self.data += b
        return len(b)


def test_a_large_body_arrives_in_pieces_with_status_and_headers(make: SessionFactory) -> None:
    s = make()
    out = Pieces()
    r = s.download("GET", "/big?bytes=3000017", out)
    assert r.status == 200
    assert r.headers["Content-Length"] == "3000017"
    assert r.content == b""
    assert len(out.data) == 3000017 and set(out.data) == {ord("a")}
    assert len(out.sizes) > 1 and max(out.sizes) <= 1 << 20


def test_after_a_401_only_the_resent_answer_is_written(make: SessionFactory, server: Standin) -> None:
    s = make()
    s.token()
    server.revoke()
    out = io.BytesIO()
    r = s.download("POST", "/echo", out, data=b"hello")
    assert r.status == 200
    assert out.getvalue() == b"hello"
    assert server.stats()["unauthorized"] == 1


def test_the_cap_and_a_failing_file_stop_the_request(make: SessionFactory) -> None:
    s = make(max_response_bytes=1000)
    out = io.BytesIO()
    with pytest.raises(cloudauth.TooLarge):
        s.download("GET", "/big?bytes=1001", out)
    assert out.getvalue() == b""

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        make().download("GET", "/big?bytes=100000", Full())
    # the session still works
    assert s.get("/echo").status == 200
