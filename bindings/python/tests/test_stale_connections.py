"""Kept-alive connections that the server closes under a request (what idle-timeout load
balancers do): ``cloudauth.Session`` sends an idempotent request once more on a new connection,
so the caller sees no error, and never a POST whose bytes left. The server is ours, on
127.0.0.1, and stops by itself."""

from __future__ import annotations

import socket
import threading
import time
from typing import BinaryIO, Dict, Iterator, List, Optional, Tuple

import pytest

import cloudauth

TOKEN_BODY = b'{"access_token":"tok","expires_in":3600,"token_type":"Bearer"}'


class ClosingServer:
    """Answers keep-alive (no ``Connection: close``); with ``drop_second`` it answers the first
    request of a connection and closes on the second without a word, otherwise it closes right
    after every answer. Counts what it received per (method, path)."""

    def __init__(self, drop_second: bool, life_s: float = 120.0) -> None:
        self.drop_second = drop_second
        self.seen: Dict[Tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + life_s
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.seen.get((method, path), 0)

    def stop(self) -> None:
        self._stop.set()

    def _accept(self) -> None:
        with self._listener:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                try:
                    conn, _ = self._listener.accept()
                except socket.timeout:
                    continue
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        with conn, conn.makefile("rb") as reader:
            nth = 0
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.seen[request] = self.seen.get(request, 0) + 1
                if self.drop_second and nth == 1:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                body = TOKEN_BODY if request[1] == "/token" else b"ok"
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                conn.sendall(head + body)
                if not self.drop_second:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                nth += 1


def _read_request(reader: BinaryIO) -> Optional[Tuple[str, str]]:
    try:
        line = reader.readline()
        if not line:
            return None
        method, path = line.decode().split()[:2]
        length = 0
        while True:
            header = reader.readline()
            if not header:
                return None
            if header == b"\r\n":
                break
            name, _, value = header.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            reader.read(length)
        return method, path
    except (OSError, ValueError):
        return None


@pytest.fixture
def closing_after_every_answer() -> Iterator[ClosingServer]:
    server = ClosingServer(drop_second=False)
    yield server
    server.stop()


@pytest.fixture
def dropping_second_request() -> Iterator[ClosingServer]:
    server = ClosingServer(drop_second=True)
    yield server
    server.stop()


def session_for(server: ClosingServer) -> cloudauth.Session:
    return cloudauth.Session(
        "id",
        "secret",
        token_url=server.url("/token"),
        base_url=server.url(""),
        timeout_ms=10000,
    )


def test_sequential_gets_over_connections_closed_after_every_answer_all_succeed(
    closing_after_every_answer: ClosingServer,
) -> None:
    with session_for(closing_after_every_answer) as s:
        for _ in range(1000):
            r = s.request("GET", "/api")
            assert (r.status, r.content) == (200, b"ok")
        stats = s.stats()
    assert stats.api_requests == 1000 + stats.connection_resends
    assert 1000 <= closing_after_every_answer.count("GET", "/api") <= stats.api_requests


def test_gets_from_eight_threads_over_connections_closed_after_every_answer_all_succeed(
    closing_after_every_answer: ClosingServer,
) -> None:
    failures: List[str] = []
    with session_for(closing_after_every_answer) as s:

        def work() -> None:
            for _ in range(25):
                try:
                    if s.request("GET", "/api").status != 200:
                        failures.append("status")
                except cloudauth.Error as e:
                    failures.append(str(e))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stats = s.stats()
    assert failures == []
    assert stats.api_requests == 200 + stats.connection_resends


def test_a_get_dropped_under_it_is_resent_and_a_post_is_not(
    dropping_second_request: ClosingServer,
) -> None:
    with session_for(dropping_second_request) as s:
        assert s.request("GET", "/api").status == 200
        assert s.request("GET", "/api").status == 200  # reused, dropped, resent
        assert s.stats().connection_resends == 1
        assert dropping_second_request.count("GET", "/api") == 3
        assert s.request("POST", "/api", data=b"{}").status == 200  # a new connection
        with pytest.raises(cloudauth.NetworkError):
            s.request("POST", "/api", data=b"{}")  # reused, dropped after its bytes left
        assert dropping_second_request.count("POST", "/api") == 2
        assert s.stats().connection_resends == 1
