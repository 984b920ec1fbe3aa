#!/usr/bin/env python3
"""A fault-injecting TCP proxy for the network-fault suite (tests/netfault) and the soak.

Python 3.11, standard library only. Listens on --listen HOST:PORT (the test host's veth address,
or 127.0.0.1), forwards every connection to --upstream HOST:PORT, and stops by itself after
--lifetime seconds. What the kernel here cannot do (no netem), it does:

  Modes from the mode file, applied to every chunk (re-read when the file changes):
    {"delay_ms": 300, "jitter_ms": 100}  every chunk, each way, waits delay +- jitter (in order)
    {"segment": 1}                       responses go out 1 byte per TCP segment
  A fault armed by a request whose first line holds "fault=" (the mode file's "fault"):
    {"kind": "stall", "after": N}        after N response bytes, forwards nothing more
    {"kind": "reset", "after": N}        after N response bytes, resets the connection (RST)
    {"kind": "cmd", "after": N, "cmd": [...], "undo_ms": M, "undo": [...]}
                                         after N response bytes runs cmd (ip route add blackhole,
                                         ip link set down), goes on forwarding; after M ms runs
                                         undo (when given)
  The mode file is JSON; a missing or empty file means "no faults".

With --soak: random faults on requests marked "fault=" (reset, stall or a slow answer, chosen by
the seed). With --count-file: how often the upstream answered each request line with anything but
a 401 (the server acted on it; a 401 means it did not), written as JSON {"acted": {"<request line>": n}, "statuses": {...}}
with the statuses of every answer, when the proxy stops (SIGTERM): the soak checks that no request was acted on twice. (Clients do
not pipeline, so the first response bytes after a request are its answer.)
"""
import argparse
import collections
import fcntl
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

CHUNK = 65536


class Config:
    def __init__(self, args):
        self.args = args
        self.counts = {}
        self.statuses = {}  # request line -> status of each answer (for a failure's details)
        self.count_lock = threading.Lock()
        self.rng = random.Random(args.seed)
        self.rng_lock = threading.Lock()

    def mode(self):
        """The mode file's JSON, re-read when it changed; {} without one."""
        path = self.args.mode_file
        if not path:
            return {}
        try:
            stamp = os.stat(path).st_mtime_ns
            if stamp != getattr(self, "_stamp", None):
                with open(path, encoding="utf-8") as f:
                    text = f.read().strip()
                self._mode = json.loads(text) if text else {}
                self._stamp = stamp
            return self._mode
        except (OSError, ValueError):
            return {}


def run(cmd):
    try:
        subprocess.run(cmd, check=False, timeout=10, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"proxy: {cmd}: {e}", file=sys.stderr)


def reset(sock):
    """Closes with SO_LINGER 0: the peer gets a RST, not a FIN. (shutdown(SHUT_RD) first wakes the
    thread blocked in recv on it, whose call would otherwise keep the socket alive.)"""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


SIOCOUTQNSD = 0x894B  # bytes in the send queue not yet sent (linux/sockios.h)


def unsent(sock):
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQNSD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


class Pipe:
    """One direction of one connection: src -> dst, with the connection's mode."""

    def __init__(self, conn, src, dst, upstream_bound):
        self.conn = conn
        self.src = src
        self.dst = dst
        self.upstream_bound = upstream_bound
        self.due = 0.0  # delay: when the previous chunk went out (keeps order)

    def write(self, data):
        mode = self.conn.cfg.mode()  # changes apply to connections already open, too
        delay = mode.get("delay_ms")
        if delay:
            jitter = mode.get("jitter_ms", 0)
            wait = (delay + random.uniform(-jitter, jitter)) / 1000.0
            self.due = max(self.due, time.monotonic() + wait)
            pause = self.due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        if mode.get("segment") and not self.upstream_bound:
            # One segment per send: wait until the kernel has put each on the wire, else it
            # appends the next bytes to a segment still waiting for the window.
            step = int(mode["segment"])
            for i in range(0, len(data), step):
                self.dst.sendall(data[i:i + step])
                deadline = time.monotonic() + 1.0
                while unsent(self.dst) and time.monotonic() < deadline:
                    time.sleep(0.0001)
        else:
            self.dst.sendall(data)


class Connection:
    def __init__(self, cfg, client):
        self.cfg = cfg
        self.client = client
        self.armed = None  # the fault for the response now coming
        self.sent = 0  # response bytes sent since armed
        self.lock = threading.Lock()
        self.buffer = b""  # request bytes not yet parsed (soak counting)
        self.waiting = collections.deque()  # request lines sent upstream, not yet answered
        self.closed = False

    def start(self):
        try:
            self.upstream = socket.create_connection(self.cfg.upstream, timeout=10)
            self.upstream.settimeout(None)
        except OSError:
            reset(self.client)
            return
        for s in (self.client, self.upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up = Pipe(self, self.client, self.upstream, True)
        down = Pipe(self, self.upstream, self.client, False)
        threading.Thread(target=self.pump, args=(up,), daemon=True).start()
        threading.Thread(target=self.pump, args=(down,), daemon=True).start()

    def close(self, hard=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        if hard:
            reset(self.client)
        else:
            try:
                self.client.close()
            except OSError:
                pass
        try:
            self.upstream.close()
        except OSError:
            pass

    def on_request_bytes(self, data):
        """Sees request bytes before they go upstream: arms faults, counts request lines."""
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 1 << 20:
                    self.buffer = b""
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        length = 0
            if len(self.buffer) < end + 4 + length:
                return  # the rest of the body comes later; count when complete
            self.buffer = self.buffer[end + 4 + length:]
            first = head.split("\r\n", 1)[0]
            self.on_request(first)

    def on_request(self, first):
        cfg = self.cfg
        if cfg.args.count_file:
            self.waiting.append(first)
        if "fault=" not in first:
            return
        if cfg.args.soak:
            with cfg.rng_lock:
                pick = cfg.rng.random()
            fault = None
            if pick < cfg.args.soak_reset:
                fault = {"kind": "reset", "after": cfg.rng.randint(0, 400)}
            elif pick < cfg.args.soak_reset + cfg.args.soak_stall:
                fault = {"kind": "stall", "after": cfg.rng.randint(0, 400)}
            elif pick < cfg.args.soak_reset + cfg.args.soak_stall + cfg.args.soak_slow:
                fault = {"kind": "slow", "after": 0}
        else:
            fault = cfg.mode().get("fault")
        with self.lock:
            self.armed = dict(fault) if fault else None
            self.sent = 0

    def on_answer(self, data):
        """The first bytes of the answer to the oldest request waiting: counts it unless 401."""
        try:
            first = self.waiting.popleft()
        except IndexError:
            return
        cfg = self.cfg
        with cfg.count_lock:
            cfg.statuses.setdefault(first, []).append(data[9:12].decode("latin-1"))
            if data[9:12] != b"401":
                cfg.counts[first] = cfg.counts.get(first, 0) + 1

    def pump(self, pipe):
        try:
            while True:
                data = pipe.src.recv(CHUNK)
                if not data:
                    break
                if pipe.upstream_bound:
                    self.on_request_bytes(data)
                    pipe.write(data)
                    continue
                if self.waiting:
                    self.on_answer(data)
                if not self.response_chunk(pipe, data):
                    return
        except OSError:
            pass
        if pipe.upstream_bound:
            # The client closed its side: pass the close on.
            try:
                self.upstream.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        else:
            self.close()

    def response_chunk(self, pipe, data):
        """Forwards one response chunk, applying an armed fault; False when the connection ends."""
        with self.lock:
            fault = self.armed
        if not fault:
            pipe.write(data)
            return True
        after = fault.get("after", 0)
        kind = fault["kind"]
        if kind == "slow":
            time.sleep(0.3)
            pipe.write(data)
            return True
        if self.sent + len(data) <= after:
            self.sent += len(data)
            pipe.write(data)
            return True
        head = max(0, after - self.sent)
        if head:
            pipe.write(data[:head])
        self.sent = after
        if kind == "reset":
            time.sleep(0.05)  # let the head reach the client first
            self.close(hard=True)
            return False
        if kind in ("stall", "drop"):
            # Forwards nothing more; the connection ends when the client gives up and closes.
            with self.lock:
                self.armed = {"kind": "drop", "after": 0}
            return True
        if kind == "cmd":
            with self.lock:
                self.armed = None
            run(fault["cmd"])
            if fault.get("undo"):
                timer = threading.Timer(fault.get("undo_ms", 1000) / 1000.0, run, args=(fault["undo"],))
                timer.daemon = True
                timer.start()
            pipe.write(data[head:])
            return True
        pipe.write(data)
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", required=True, help="HOST:PORT (127.0.0.1 or a test host's address)")
    parser.add_argument("--upstream", required=True, help="HOST:PORT")
    parser.add_argument("--mode-file")
    parser.add_argument("--lifetime", type=float, default=600)
    parser.add_argument("--ready-file", help="written once listening")
    parser.add_argument("--soak", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--soak-reset", type=float, default=0.3)
    parser.add_argument("--soak-stall", type=float, default=0.2)
    parser.add_argument("--soak-slow", type=float, default=0.3)
    parser.add_argument("--count-file")
    args = parser.parse_args()

    host, port = args.listen.rsplit(":", 1)
    uhost, uport = args.upstream.rsplit(":", 1)
    cfg = Config(args)
    cfg.upstream = (uhost, int(uport))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(256)
    port = listener.getsockname()[1]

    def stop(*_):
        if args.count_file:
            with cfg.count_lock:
                counts = {"acted": dict(cfg.counts), "statuses": dict(cfg.statuses)}
            with open(args.count_file + ".tmp", "w", encoding="utf-8") as f:
                json.dump(counts, f)
            os.replace(args.count_file + ".tmp", args.count_file)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Timer(args.lifetime, stop).start()
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            continue
        Connection(cfg, client).start()


if __name__ == "__main__":
    main()
