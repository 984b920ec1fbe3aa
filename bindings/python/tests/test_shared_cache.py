"""The shared token caches' keys pass through the binding like every other key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cloudauth

from conftest import CLIENT_ID, CLIENT_SECRET, SessionFactory, Standin


def test_file_cache_shares_one_token_between_sessions(
    make: SessionFactory, server: Standin, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    a = make(token_cache="file", token_cache_dir=str(cache), token_cache_timeout_ms=500)
    b = make(token_cache="file", token_cache_dir=str(cache))
    assert a.token() == b.token()
    assert server.stats()["token_requests"] == 1
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for f in cache.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        data = f.read_bytes()
        assert a.token().encode() not in data and CLIENT_SECRET.encode() not in data


def test_another_process_takes_the_token_from_the_file_cache(
    make: SessionFactory, server: Standin, tmp_path: Path
) -> None:
    cache = str(tmp_path / "cache")
    token = make(token_cache="file", token_cache_dir=cache).token()
    child = textwrap.dedent(
        f"""
        import cloudauth
        s = cloudauth.Session({CLIENT_ID!r}, {CLIENT_SECRET!r}, token_url={server.token_url!r},
                              token_cache="file", token_cache_dir={cache!r})
        print(s.token())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == token
    assert server.stats()["token_requests"] == 1


def test_bad_cache_keys_raise_invalid_argument(make: SessionFactory) -> None:
    with pytest.raises(cloudauth.InvalidArgument, match="token_cache"):
        make(token_cache="disk")
    with pytest.raises(cloudauth.InvalidArgument, match="redis_url") as e:
        make(token_cache="redis", redis_url="http://:hunter2@cache:6379")
    assert "hunter2" not in str(e.value)
    with pytest.raises(cloudauth.InvalidArgument, match="redis_url"):
        make(token_cache="redis")
