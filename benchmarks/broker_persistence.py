"""What one Mosquitto persistence save costs at a utility's state: the figure behind autosave.

Mosquitto 2.0 writes its whole in-memory database (retained messages, persistent sessions with
their subscriptions, queued QoS 1 messages) on every save, in its single thread: while it writes,
it delivers nothing. ``autosave_interval`` / ``autosave_on_changes`` (docs/deploy.md) trade that
cost against what a SIGKILL or a power loss may take, so this script measures it.

It starts its own anonymous Mosquitto on a free loopback port with persistence in a temporary
directory and automatic saves off (``autosave_interval`` one day), builds the state with a minimal
MQTT 3.1.1 client on plain sockets (pre-encoded packets, so the client costs almost nothing):

* ``--meters`` retained status messages (about 300 bytes each, one per meter), and as many
  persistent meter sessions (clean session off) each subscribed to its own ``cmd`` topic;
* one persistent ingest session subscribed to ``meters/+/readings`` and then disconnected, so
  that every reading published afterwards is queued for it (a worker that is down);
* queued readings (about 400 bytes each) in steps up to ``--queue`` messages.

At each step it sends SIGUSR1 (Mosquitto's "save now") and times, from the signal, the moment the
new persistence file is renamed into place; meanwhile another client sends PINGREQs back to back
and the longest wait for a PINGRESP is reported as the stall that clients see. At the end it
restarts the broker and times how long it takes until it listens again (the load of the file).

    .venv/bin/python benchmarks/broker_persistence.py [--meters 100000] [--queue 1000000]

Table, then the last line: one JSON object with the figures and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info

MOSQUITTO = "/usr/sbin/mosquitto"
STATUS_BYTES = 300
READING_BYTES = 400
SESSION_THREADS = 4
WAIT_S = 600.0


# -- MQTT 3.1.1 packets ------------------------------------------------------------------------


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, *, clean: bool) -> bytes:
    body = _string("MQTT") + bytes([4, 0x02 if clean else 0x00]) + struct.pack("!H", 600)
    body += _string(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(topic_filter: str, packet_id: int = 1) -> bytes:
    body = struct.pack("!H", packet_id) + _string(topic_filter) + b"\x01"
    return b"\x82" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int, *, retain: bool = False) -> bytes:
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x33 if retain else 0x32]) + remaining_length(len(body)) + body


DISCONNECT = b"\xe0\x00"
PINGREQ = b"\xc0\x00"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return bytes(data)


def _connected(port: int, client_id: str, *, clean: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    sock.sendall(connect_packet(client_id, clean=clean))
    connack = _recv_exact(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise RuntimeError(f"CONNACK {connack!r} for {client_id}")
    return sock


def publish_all(port: int, messages: Sequence[tuple[str, bytes]], *, retain: bool) -> None:
    """QoS 1 over one connection, in windows of 60,000 (packet ids are 16 bits)."""
    with _connected(port, f"bench-pub-{os.getpid()}", clean=True) as sock:
        for start in range(0, len(messages), 60_000):
            window = messages[start : start + 60_000]
            stream = b"".join(
                publish_packet(topic, payload, i + 1, retain=retain)
                for i, (topic, payload) in enumerate(window)
            )
            sock.sendall(stream)
            _recv_exact(sock, 4 * len(window))  # the PUBACKs
        sock.sendall(DISCONNECT)


def persistent_sessions(port: int, client_ids: Sequence[str]) -> None:
    """Each id: connect with clean session off, subscribe to its cmd topic, disconnect."""

    def run(ids: Sequence[str]) -> None:
        for client_id in ids:
            with _connected(port, client_id, clean=False) as sock:
                sock.sendall(subscribe_packet(f"meters/{client_id}/cmd"))
                _recv_exact(sock, 5)  # SUBACK
                sock.sendall(DISCONNECT)

    threads = [
        threading.Thread(target=run, args=(client_ids[n::SESSION_THREADS],))
        for n in range(SESSION_THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def offline_ingest_session(port: int) -> None:
    with _connected(port, "ingest-offline", clean=False) as sock:
        sock.sendall(subscribe_packet("meters/+/readings"))
        _recv_exact(sock, 5)
        sock.sendall(DISCONNECT)


# -- the broker ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def broker_conf(port: int, data: Path, log: Path) -> str:
    return "\n".join(
        [
            f"user {os.environ.get('USER') or 'root'}",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "max_inflight_messages 0",
            "max_queued_messages 0",
            "persistence true",
            f"persistence_location {data}/",
            # Saves only when this script asks (SIGUSR1); the restart at the end saves too.
            "autosave_interval 86400",
            f"log_dest file {log}",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def _wait_listening(process: subprocess.Popen[bytes], port: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < WAIT_S:
        if process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"mosquitto did not listen within {WAIT_S} s")


@contextmanager
def broker(conf: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process, _wait_listening(process, port)
    finally:
        process.terminate()
        try:
            process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT_S)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Pinger:
    """PINGREQ after PINGRESP, back to back: the longest round trip is the broker's stall."""

    def __init__(self, port: int) -> None:
        self.sock = _connected(port, "bench-pinger", clean=True)
        self.longest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            sent = time.monotonic()
            self.sock.sendall(PINGREQ)
            _recv_exact(self.sock, 2)
            self.longest = max(self.longest, time.monotonic() - sent)
            time.sleep(0.001)

    def reset(self) -> None:
        self.longest = 0.0

    def close(self) -> None:
        self.stop.set()
        self.thread.join(WAIT_S)
        self.sock.close()


def timed_save(process: subprocess.Popen[bytes], db: Path) -> float:
    """SIGUSR1, then wait for the renamed file (a new inode or mtime)."""
    before = db.stat() if db.exists() else None
    started = time.monotonic()
    process.send_signal(signal.SIGUSR1)
    while time.monotonic() - started < WAIT_S:
        if db.exists():
            now = db.stat()
            if before is None or (now.st_ino, now.st_mtime_ns) != (
                before.st_ino,
                before.st_mtime_ns,
            ):
                return time.monotonic() - started
        time.sleep(0.0005)
    raise RuntimeError("no save within the wait")


def reading(meter: str, n: int) -> tuple[str, bytes]:
    body = json.dumps({"ts": f"2026-11-01T00:{n % 60:02d}:00Z", "import_kwh": n}).encode()
    return f"meters/{meter}/readings", body.ljust(READING_BYTES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--queue", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    steps = sorted({0, args.queue // 10, args.queue // 2, args.queue})
    meters = [f"M{n:07d}" for n in range(args.meters)]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="meterhub-persist-") as tmp:
        work = Path(tmp)
        port, db = free_port(), work / "mosquitto.db"
        conf = work / "mosquitto.conf"
        conf.write_text(broker_conf(port, work, work / "mosquitto.log"))
        with broker(conf, port) as (process, _):
            started = time.monotonic()
            publish_all(port, [(f"meters/{m}/status", b"{}".ljust(STATUS_BYTES)) for m in meters],
                        retain=True)  # fmt: skip
            persistent_sessions(port, meters)
            offline_ingest_session(port)
            print(f"state built in {time.monotonic() - started:.1f} s", file=sys.stderr)
            pinger = Pinger(port)
            queued = 0
            for step in steps:
                batch = [reading(meters[n % len(meters)], n) for n in range(queued, step)]
                if batch:
                    publish_all(port, batch, retain=False)
                queued = step
                time.sleep(0.5)
                pinger.reset()
                seconds = timed_save(process, db)
                time.sleep(0.2)
                rows.append(
                    {
                        "queued": queued,
                        "save_s": round(seconds, 3),
                        "longest_ping_s": round(pinger.longest, 3),
                        "file_mb": round(db.stat().st_size / 1e6, 1),
                        "broker_rss_mb": round(rss_mb(process.pid), 1),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
            pinger.close()
        with broker(conf, port) as (process, load_s):
            restart = {"load_s": round(load_s, 2), "broker_rss_mb": round(rss_mb(process.pid), 1)}
    print(f"{'queued':>10} {'save s':>8} {'longest ping s':>15} {'file MB':>8} {'RSS MB':>8}")
    for row in rows:
        print(
            f"{row['queued']:>10,} {row['save_s']:>8.3f} {row['longest_ping_s']:>15.3f} "
            f"{row['file_mb']:>8.1f} {row['broker_rss_mb']:>8.1f}"
        )
    print(f"restart with the last state: listening after {restart['load_s']} s")
    summary = {
        "meters": args.meters,
        "retained_status_bytes": STATUS_BYTES,
        "reading_bytes": READING_BYTES,
        "saves": rows,
        "restart": restart,
        "machine": machine_info(),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
