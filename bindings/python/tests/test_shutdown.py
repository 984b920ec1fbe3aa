"""Interpreter shutdown with a daemon thread inside a blocking call that reports an event."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import CLIENT_ID, CLIENT_SECRET, Standin

# A daemon thread fetches tokens without pause (each takes 0.2 s at the stand-in, another
# process), with an on_event handler; the main thread exits. During finalization an object's
# __del__ asks for the token, so the interpreter is still finalizing when the daemon's fetch
# ends and reports TOKEN_FETCHED. Before the fix, that event entered the ctypes callback;
# CPython ends a thread that asks for the GIL while it finalizes (pthread_exit), and that
# unwinding through the library's frames aborted the process ("FATAL: exception not
# rethrown", exit 134). Now the binding stops the library's callbacks at exit.
PROGRAM = textwrap.dedent(
    """
    import gc, os, sys, threading, time
    import cloudauth

    url, client_id, secret = sys.argv[1:4]
    s = cloudauth.Session(
        client_id, secret, token_url=url + "/connect/token", base_url=url,
        refresh_mode="inline", on_event=lambda event: None,
    )

    def fetch_for_ever():
        while True:
            s.token()
            s.invalidate()

    class AsksAtTeardown:
        # Defaults bind what module teardown would otherwise clear first.
        def __del__(self, write=os.write, session=s):
            write(1, b"teardown got a token: " + str(bool(session.token())).encode() + b"\\n")

    threading.Thread(target=fetch_for_ever, daemon=True).start()
    gc.disable()
    cycle = AsksAtTeardown()
    cycle.me = cycle  # collected only by the interpreter's last collection, as it finalizes
    del cycle
    time.sleep(0.3)
    sys.exit(0)
    """
)


def test_a_daemon_threads_event_at_interpreter_exit_does_not_call_into_it(
    tmp_path: Path, server: Standin
) -> None:
    server.configure(token_delay_ms=200)
    program = tmp_path / "exit_with_daemon.py"
    program.write_text(PROGRAM)
    for run in range(20):
        done = subprocess.run(
            [sys.executable, str(program), server.url, CLIENT_ID, CLIENT_SECRET],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])
        assert done.stdout == "teardown got a token: True\n", (run, done.stdout, done.stderr[-2000:])
