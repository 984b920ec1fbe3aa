"""examples/python/ocr_demo.py runs against the stand-in, prints the text, and not the token."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, Standin

DEMO = REPO / "examples" / "python" / "ocr_demo.py"


def test_ocr_demo(server: Standin) -> None:
    env = dict(os.environ, STANDIN_URL=server.url)
    out = subprocess.run(
        [sys.executable, str(DEMO)], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "recognized text: Hello from the cloudauth stand-in" in out.stdout
    assert "Completed" in out.stdout
    stats = server.stats()
    assert stats["token_requests"] == 1
    # The token the demo used is not in its output; only its length is.
    assert "token of " in out.stdout
    assert "Bearer" not in out.stdout + out.stderr
    assert "eyJ" not in out.stdout + out.stderr  # the stand-in's tokens are JWTs


def test_ocr_demo_needs_standin_url() -> None:
    env = {k: v for k, v in os.environ.items() if k != "STANDIN_URL"}
    out = subprocess.run([sys.executable, str(DEMO)], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "STANDIN_URL" in out.stderr
