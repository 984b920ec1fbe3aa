"""Interpreter shutdown with a daemon thread inside a blocking call that reports an event."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# A daemon thread fetches tokens without pause (each fetch takes 0.2 s at the server here), with
# an on_event handler; the main thread exits. During finalization an object's __del__ asks for
# the token: it joins the daemon's fetch in flight. Before the fix, that fetch's TOKEN_FETCHED
# event called into the finalizing interpreter, which ended the daemon thread inside the
# callback, before the fetch woke its waiters: the __del__ waited for ever.
PROGRAM = textwrap.dedent(
    """
    import gc, os, socket, sys, threading, time
    import cloudauth

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    port = listener.getsockname()[1]
    BODY = b'{"access_token":"tok","expires_in":3600,"token_type":"Bearer"}'

    def answer(conn):
        conn.settimeout(30)
        with conn:
            while conn.recv(65536):
                time.sleep(0.2)
                conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(BODY) + BODY)

    def serve():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    s = cloudauth.Session(
        "id", "secret",
        token_url=f"http://127.0.0.1:{port}/token", base_url=f"http://127.0.0.1:{port}",
        refresh_mode="inline", on_event=lambda event: None,
    )

    def fetch_for_ever():
        while True:
            s.token()
            s.invalidate()

    class AsksAtTeardown:
        # Defaults bind what module teardown would otherwise clear first.
        def __del__(self, write=os.write, session=s):
            write(1, b"teardown got " + session.token().encode() + b"\\n")

    threading.Thread(target=fetch_for_ever, daemon=True).start()
    gc.disable()
    cycle = AsksAtTeardown()
    cycle.me = cycle  # collected only by the interpreter's last collection, as it finalizes
    del cycle
    time.sleep(0.3)
    sys.exit(0)
    """
)


def test_a_daemon_threads_event_at_interpreter_exit_does_not_call_into_it(tmp_path: Path) -> None:
    program = tmp_path / "exit_with_daemon.py"
    program.write_text(PROGRAM)
    for run in range(20):
        done = subprocess.run(
            [sys.executable, str(program)], capture_output=True, text=True, timeout=20
        )
        assert done.returncode == 0, (run, done.returncode, done.stderr[-2000:])
        assert done.stdout == "teardown got tok\n", (run, done.stdout, done.stderr[-2000:])
