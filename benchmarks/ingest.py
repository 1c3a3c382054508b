"""Ingest throughput: Mosquitto -> `meterhub ingest` worker process(es) -> PostgreSQL.

Run: ``.venv/bin/python benchmarks/ingest.py`` (about 3 to 5 minutes on 2 cores; ``--quick`` runs a
tenth of the sizes). Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) and
``/usr/sbin/mosquitto``; everything stays on 127.0.0.1.

What it measures, all against ONE Mosquitto that the benchmark starts itself on a free port:

* the raw broker ceiling: ``mosquitto_pub -l`` (QoS 1, chunks of at most 60,000 lines, one process
  per chunk, in parallel) to ``mosquitto_sub -q 1 -C N``, timed from the first publish to the exit
  of mosquitto_sub; and, for comparison, the benchmark's own publisher (below) to mosquitto_sub;
* (a) one reading per message and (b) 100 readings per message, each with 1 and 2 ingest worker
  processes (``meterhub ingest --no-derive``; 2 workers share the load through the MQTT 5 shared
  subscription, the default), timed from the first publish until PostgreSQL holds every reading;
* optionally (not with ``--no-derive``) ``meterhub derive`` draining the interval queue the batched
  run left behind.

Why its own broker: the worker acknowledges QoS 1 messages only after its batch is committed.
Mosquitto's defaults (max_inflight_messages 20, max_queued_messages 1000) silently drop QoS 1
messages for such a subscriber, so the benchmark's broker uses the limits meterhub recommends
(src/meterhub/devices/mosquitto.py: max_inflight_messages 0, a large queue - here 0, which the
mosquitto.conf man page documents as "no maximum" - and max_packet_size 256 KiB). It is anonymous
and without persistence (a benchmark has no passwords to protect and nothing to keep), which is why
the conf text is written here rather than by ``mosquitto_conf_text``, which insists on a password
file, an ACL and persistence.

The publisher: the consumer must be the slower side, or the benchmark measures the publisher. A
Python MQTT client (paho: about 20,000-30,000 msg/s on this kind of machine) is about as fast as the
worker is meant to be, and would share the two cores with it. So the publisher here is a minimal
MQTT 3.1.1 client on a plain socket: every PUBLISH packet (QoS 1, its own packet id) is encoded
before the clock starts, the timed part is one ``sendall`` of the pre-built bytes per connection
plus counting the 4-byte PUBACKs as they come back. It costs almost no CPU, so the broker and the
worker get the machine. Unlike ``mosquitto_pub -l`` (one topic for every line, i.e. one meter) it
publishes for a realistic fleet: 1,000 meters, each on its own topic ``meters/<id>/readings``,
in time order (every meter's reading for slot t, then slot t+1, ...), like a fleet simulator or a
concentrator would. Meters are split over parallel connections (at most 60,000 messages each, as
packet ids are 16 bits), each connection carrying whole meters so that a meter's readings stay in
order. Its own rate (publish to last PUBACK) is printed, so one can see it outran the consumer.

Readings are the v1 contract's objects with monotonic registers, a distinct ts per meter 15 minutes
apart, all within the last 21 days. The meters are registered before the run (rows in ``meters``),
the production path. Every run is checked: the exact count of stored readings (no loss, no double
count), no dead letters.

Table, then the last line: one JSON object with the figures and the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
MOSQUITTO = "/usr/sbin/mosquitto"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
TOPIC_PREFIX = "meters"
PROBE_METER = "bench-probe"
WORKER_IDS = ("bench-w1", "bench-w2")
MAX_IDS_PER_CONNECTION = 60_000
POLL_SECONDS = 0.2
STALL_SECONDS = 45.0
STEP = timedelta(minutes=15)


# -- payloads (pure) -------------------------------------------------------------------------


def meter_ids(count: int) -> list[str]:
    return [f"bm{i:05d}" for i in range(count)]


def reading(meter_index: int, slot: int, start: datetime) -> dict[str, Any]:
    """The v1 reading object of one meter at one 15-minute slot; registers grow with the slot."""
    load = 400.0 + (meter_index * 37 + slot * 11) % 1600
    return {
        "ts": (start + slot * STEP).isoformat(),
        "seq": slot,
        "import_kwh": round(1000.0 + meter_index + slot * 0.25, 3),
        "export_kwh": 0.0,
        "power_w": load,
        "voltage_v": 230.0 + (slot % 7) * 0.3,
        "current_a": round(load / 230.0, 2),
        "pf": 0.97,
        "freq_hz": 50.0,
    }


def single_messages(meters: int, slots: int, start: datetime) -> list[tuple[str, bytes]]:
    """(topic, payload) for one reading per message, in time order across the fleet."""
    ids = meter_ids(meters)
    return [
        (f"{TOPIC_PREFIX}/{ids[m]}/readings", orjson.dumps(reading(m, s, start)))
        for s in range(slots)
        for m in range(meters)
    ]


def batched_messages(
    meters: int, messages_per_meter: int, per_message: int, start: datetime
) -> list[tuple[str, bytes]]:
    """(topic, payload) with ``per_message`` consecutive readings in ``{"readings": [...]}``."""
    ids = meter_ids(meters)
    out = []
    for k in range(messages_per_meter):
        for m in range(meters):
            items = [reading(m, k * per_message + i, start) for i in range(per_message)]
            out.append((f"{TOPIC_PREFIX}/{ids[m]}/readings", orjson.dumps({"readings": items})))
    return out


def partition_by_meter(
    messages: Sequence[tuple[str, bytes]], max_per_part: int = MAX_IDS_PER_CONNECTION
) -> list[list[tuple[str, bytes]]]:
    """Split over connections, whole meters per connection (keeps each meter's order), each part
    at most ``max_per_part`` messages (16-bit packet ids), at least two parts when there is more
    than one topic."""
    topics = list(dict.fromkeys(t for t, _ in messages))
    parts_count = max(min(2, len(topics)), math.ceil(len(messages) / max_per_part))
    while True:
        owner = {t: i % parts_count for i, t in enumerate(topics)}
        parts: list[list[tuple[str, bytes]]] = [[] for _ in range(parts_count)]
        for message in messages:
            parts[owner[message[0]]].append(message)
        if max(len(p) for p in parts) <= max_per_part or parts_count >= len(topics):
            return parts
        parts_count += 1


# -- a minimal MQTT 3.1.1 publisher on a socket (pure encoders, then the I/O) ---------------


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: bytes) -> bytes:
    return struct.pack("!H", len(value)) + value


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    body = _string(b"MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive)
    body += _string(client_id.encode())
    return b"\x10" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """PUBLISH, QoS 1, not retained."""
    if not 1 <= packet_id <= 0xFFFF:
        raise ValueError("packet id must be 1..65535")
    body = _string(topic.encode()) + struct.pack("!H", packet_id) + payload
    return b"\x32" + remaining_length(len(body)) + body


def publish_stream(messages: Sequence[tuple[str, bytes]]) -> bytes:
    if len(messages) > 0xFFFF:
        raise ValueError("at most 65535 QoS 1 messages per connection")
    return b"".join(publish_packet(t, p, i + 1) for i, (t, p) in enumerate(messages))


PUBACK_SIZE = 4  # 0x40, 0x02, packet id (MQTT 3.1.1)
DISCONNECT = b"\xe0\x00"


@dataclass
class PublishRun:
    started: float = 0.0
    finished: float = 0.0
    messages: int = 0
    error: str | None = None

    @property
    def rate(self) -> float:
        return self.messages / max(self.finished - self.started, 1e-9)


class RawPublisher:
    """Connections opened and packets built up front; ``start`` sends, ``wait`` collects acks."""

    def __init__(self, port: int, parts: Sequence[Sequence[tuple[str, bytes]]], name: str) -> None:
        self.streams = [publish_stream(p) for p in parts]
        self.counts = [len(p) for p in parts]
        self.sockets: list[socket.socket] = []
        for i in range(len(parts)):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(connect_packet(f"{name}-{os.getpid()}-{i}"))
            connack = _recv_exact(sock, 4)
            if connack[0] != 0x20 or connack[3] != 0:
                raise RuntimeError(f"broker refused the publisher: CONNACK {connack!r}")
            self.sockets.append(sock)
        self.run = PublishRun(messages=sum(self.counts))
        self._threads: list[threading.Thread] = []
        self._errors: list[str] = []

    def start(self) -> float:
        self.run.started = time.perf_counter()
        for sock, stream, count in zip(self.sockets, self.streams, self.counts, strict=True):
            sender = threading.Thread(target=self._send, args=(sock, stream), daemon=True)
            acker = threading.Thread(target=self._acks, args=(sock, count), daemon=True)
            self._threads += [sender, acker]
            sender.start()
            acker.start()
        return self.run.started

    def _send(self, sock: socket.socket, stream: bytes) -> None:
        try:
            sock.sendall(stream)
        except OSError as exc:
            self._errors.append(f"send: {exc}")

    def _acks(self, sock: socket.socket, count: int) -> None:
        want = count * PUBACK_SIZE
        got = 0
        sock.settimeout(STALL_SECONDS)
        try:
            while got < want:
                chunk = sock.recv(min(1 << 20, want - got))
                if not chunk:
                    raise OSError("broker closed the connection")
                got += len(chunk)
        except OSError as exc:
            self._errors.append(f"acks: {exc} after {got // PUBACK_SIZE} of {count}")

    def wait(self) -> PublishRun:
        for thread in self._threads:
            thread.join()
        self.run.finished = time.perf_counter()
        self.run.error = "; ".join(self._errors) or None
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.sendall(DISCONNECT)
                sock.close()
        return self.run


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def publish_once(port: int, messages: Sequence[tuple[str, bytes]], name: str) -> PublishRun:
    publisher = RawPublisher(port, partition_by_meter(messages), name)
    publisher.start()
    return publisher.wait()


# -- the broker ------------------------------------------------------------------------------


def bench_mosquitto_conf(port: int) -> str:
    return "\n".join(
        [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_inflight_messages 0",
            "max_queued_messages 0",
            "max_packet_size 262144",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(bench_mosquitto_conf(port))
    log = (workdir / "mosquitto.log").open("wb")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mosquitto did not start: {(workdir / 'mosquitto.log').read_text()}"
                    ) from None
                time.sleep(0.05)
        yield port, proc
    finally:
        stop_process(proc)
        log.close()


def stop_process(proc: subprocess.Popen[Any], grace: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def clear_session(port: int, client_id: str) -> None:
    """Connect with a clean session and leave: drops a persistent session (and its shared
    subscription) that an earlier scenario's worker left on the broker."""
    subprocess.run(
        [
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-i",
            client_id,
            "-t",
            "bench/none",
            "-q",
            "1",
            "-E",
        ],
        check=True,
        timeout=10,
        capture_output=True,
    )


# -- CPU accounting from /proc (which process used the cores) ---------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    snap = {name: {pid: _cpu_seconds(pid) for pid in pids} for name, pids in groups.items()}
    snap["postgres"] = {pid: _cpu_seconds(pid) for pid in _postgres_pids()}
    return snap


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    return {
        name: sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in pids.items())
        for name, pids in after.items()
    }


# -- the database --------------------------------------------------------------------------------


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def create_database(name: str, meters: Sequence[str]) -> str:
    from meterhub.store.db import make_engine
    from meterhub.store.migrate import upgrade

    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.format(name=name)
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    with (
        psycopg.connect(url, autocommit=True) as conn,
        conn.cursor() as cur,
        cur.copy("COPY meters (id, status, created_at) FROM STDIN") as copy,
    ):
        for meter in [*meters, PROBE_METER]:
            copy.write_row((meter, "active", now))
    return url


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def accepted_readings(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(count), 0) FROM ingest_counters "
        "WHERE outcome = 'accepted' AND reason = 'reading'"
    ).fetchone()
    return int(row[0]) if row else 0


def verify(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        return {
            "stored": one(f"SELECT count(*) FROM readings WHERE meter_id <> '{PROBE_METER}'"),
            "distinct_keys": one(
                "SELECT count(*) FROM (SELECT DISTINCT meter_id, ts FROM readings "
                f"WHERE meter_id <> '{PROBE_METER}') k"
            ),
            "duplicates": one(
                "SELECT sum(count) FROM ingest_counters WHERE outcome IN ('duplicate', 'conflict')"
            ),
            "dead_letters": one("SELECT count(*) FROM dead_letters"),
        }


# -- scenarios -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    messages: int
    readings: int
    seconds: float = 0.0
    publisher: PublishRun | None = None
    check: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    derive: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.check.get("stored") == self.readings
            and self.check.get("distinct_keys") == self.readings
            and self.check.get("dead_letters", 1) == 0
        )

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def worker_env(url: str, port: int, worker_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        METERHUB_DATABASE_URL=url,
        METERHUB_MQTT_URL=f"mqtt://127.0.0.1:{port}",
        METERHUB_WORKER_ID=worker_id,
        METERHUB_TOPIC_PREFIX=TOPIC_PREFIX,
        METERHUB_UNKNOWN_METERS="reject",
    )
    return env


def wait_ready(port: int, url: str, workers: Sequence[tuple[subprocess.Popen[bytes], Path]]) -> int:
    """Both workers logged their subscription, and probe readings come through; returns the
    number of probe readings stored."""
    deadline = time.monotonic() + 60
    for proc, log in workers:
        while b"connected to" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
    probes = 0
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            probe = [
                (
                    f"{TOPIC_PREFIX}/{PROBE_METER}/readings",
                    orjson.dumps(reading(0, probes + i, start)),
                )
                for i in range(len(workers))
            ]
            probes += len(probe)
            publish_once(port, probe, "bench-probe")
            until = time.monotonic() + 3
            while time.monotonic() < until:
                if accepted_readings(conn) >= probes:
                    time.sleep(0.3)
                    return probes
                time.sleep(0.1)
    raise RuntimeError("probe readings never reached the database")


def run_ingest(
    name: str,
    port: int,
    messages: Sequence[tuple[str, bytes]],
    readings_total: int,
    meters: Sequence[str],
    workers: int,
    workdir: Path,
    derive_timeout: float | None = None,
) -> Outcome:
    outcome = Outcome(name, len(messages), readings_total)
    db = f"bench_ingest_{name.replace('-', '_')}_{os.getpid()}"
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        url = create_database(db, meters)
        for worker_id in WORKER_IDS:
            clear_session(port, worker_id)
        for worker_id in WORKER_IDS[:workers]:
            log = workdir / f"{name}-{worker_id}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [str(ROOT / ".venv/bin/meterhub"), "ingest", "--no-derive"],
                    env=worker_env(url, port, worker_id),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            procs.append((proc, log))
        probes = wait_ready(port, url, procs)
        publisher = RawPublisher(port, partition_by_meter(messages), f"bench-{name}")
        groups = {"workers": [p.pid for p, _ in procs], "broker": [], "bench": [os.getpid()]}
        groups["broker"] = [int(p) for p in _pids_of(MOSQUITTO)]
        with psycopg.connect(url, autocommit=True) as conn:
            before = cpu_snapshot(groups)
            t0 = publisher.start()
            target = readings_total + probes
            last, last_change = -1, time.monotonic()
            while True:
                time.sleep(POLL_SECONDS)
                count = accepted_readings(conn)
                now = time.perf_counter()
                if count >= target:
                    break
                if count != last:
                    last, last_change = count, time.monotonic()
                elif time.monotonic() - last_change > STALL_SECONDS:
                    raise RuntimeError(f"stalled at {count - probes} of {readings_total} readings")
            outcome.seconds = now - t0
            outcome.cpu = cpu_used(before, cpu_snapshot(groups))
            outcome.publisher = publisher.wait()
            time.sleep(1.0)  # anything arriving late would be a double count
        for proc, _ in procs:
            stop_process(proc)
        outcome.check = verify(url)
        if derive_timeout is not None:
            outcome.derive = run_derive(url, derive_timeout)
    except Exception as exc:
        outcome.error = str(exc)
        for _, log in procs:
            with contextlib.suppress(OSError):
                tail = log.read_text()[-1500:]
                outcome.error += f"\n--- {log.name} ---\n{tail}"
    finally:
        for proc, _ in procs:
            stop_process(proc)
        with contextlib.suppress(Exception):
            drop_database(db)
    return outcome


def _pids_of(binary: str) -> list[int]:
    """Our own broker is the only child of this process running ``binary``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == os.getpid() and os.readlink(entry / "exe") == binary:
                    pids.append(int(entry.name))
    return pids


def run_derive(url: str, timeout: float) -> dict[str, float]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
        readings = int(row[0]) if row else 0
    env = dict(os.environ, METERHUB_DATABASE_URL=url)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/meterhub"), "derive"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        proc.communicate(timeout=timeout)
        finished = proc.returncode == 0
    except subprocess.TimeoutExpired:
        stop_process(proc, grace=5)
        finished = False
    seconds = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM intervals").fetchone()
        intervals = int(row[0]) if row else 0
        row = conn.execute("SELECT count(*) FROM interval_work").fetchone()
        left = int(row[0]) if row else 0
    return {
        "readings": readings,
        "seconds": seconds,
        "readings_per_s": readings / seconds if finished else 0.0,
        "intervals": intervals,
        "meters_left_in_queue": left,
        "finished": float(finished),
    }


def run_broker_raw(port: int, messages: Sequence[tuple[str, bytes]], workdir: Path) -> Outcome:
    """mosquitto_pub -l (chunks of <= 60,000 lines, in parallel) -> mosquitto_sub -q 1 -C N."""
    outcome = Outcome("broker-raw", len(messages), len(messages))
    lines = [p for _, p in messages]
    chunks = math.ceil(len(lines) / MAX_IDS_PER_CONNECTION) if lines else 0
    chunks = max(chunks, 2)
    files = []
    size = math.ceil(len(lines) / chunks)
    for i in range(chunks):
        path = workdir / f"raw-{i}.txt"
        path.write_bytes(b"\n".join(lines[i * size : (i + 1) * size]) + b"\n")
        files.append(path)
    try:
        outcome.seconds = _timed_sub(
            port,
            len(messages),
            workdir,
            lambda: [
                subprocess.Popen(
                    [
                        "mosquitto_pub",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-q",
                        "1",
                        "-l",
                        "-t",
                        f"{TOPIC_PREFIX}/raw{i}/readings",
                    ],
                    stdin=f.open("rb"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i, f in enumerate(files)
            ],
        )
        outcome.check = {
            "stored": outcome.readings,
            "distinct_keys": outcome.readings,
            "dead_letters": 0,
        }
    except Exception as exc:
        outcome.error = str(exc)
    return outcome


def run_fastpub_raw(port: int, messages: Sequence[tuple[str, bytes]], workdir: Path) -> Outcome:
    """The benchmark's own publisher (1,000 topics) -> mosquitto_sub -q 1 -C N."""
    outcome = Outcome("fastpub-raw", len(messages), len(messages))
    try:
        publisher = RawPublisher(port, partition_by_meter(messages), "bench-fastpub")

        def start() -> list[subprocess.Popen[bytes]]:
            publisher.start()
            return []

        outcome.seconds = _timed_sub(port, len(messages), workdir, start)
        outcome.publisher = publisher.wait()
        outcome.check = {
            "stored": outcome.readings,
            "distinct_keys": outcome.readings,
            "dead_letters": 0,
        }
    except Exception as exc:
        outcome.error = str(exc)
    return outcome


def _timed_sub(port: int, count: int, workdir: Path, start_publishers: Any) -> float:
    """Start mosquitto_sub, wait until it has subscribed (it receives a retained marker), start
    the publishers, return seconds from their start to mosquitto_sub's exit."""
    marker = f"bench/ready/{time.monotonic_ns()}"
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
            "1",
            "-r",
            "-t",
            marker,
            "-m",
            "ready",
        ],
        check=True,
        timeout=10,
    )
    out = workdir / "sub.out"
    with out.open("wb") as sink:
        sub = subprocess.Popen(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-q",
                "1",
                "-C",
                str(count + 1),
                "-F",
                "%t",
                "-t",
                marker,
                "-t",
                f"{TOPIC_PREFIX}/+/readings",
            ],
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
    pubs: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 10
        while out.stat().st_size == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto_sub did not subscribe")
            time.sleep(0.02)
        t0 = time.perf_counter()
        pubs = start_publishers()
        sub.wait(timeout=180)
        seconds = time.perf_counter() - t0
        for pub in pubs:
            pub.wait(timeout=30)
    finally:
        for proc in [sub, *pubs]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-r", "-n", "-t", marker],
            timeout=10,
            check=False,
        )
    received = out.read_bytes().count(b"\n")
    if received != count + 1:
        raise RuntimeError(f"mosquitto_sub received {received - 1} of {count}")
    return seconds


# -- report --------------------------------------------------------------------------------------


def table(outcomes: Sequence[Outcome]) -> str:
    head = (
        f"{'scenario':<14} {'messages':>9} {'readings':>9} {'seconds':>8} {'msgs/s':>9} "
        f"{'readings/s':>11} {'pub msgs/s':>11} {'stored':>8} {'ok':>3}  "
        "cpu s (workers/broker/pg/bench)"
    )
    rows = [head, "-" * len(head)]
    for o in outcomes:
        pub = f"{o.publisher.rate:,.0f}" if o.publisher else "-"
        cpu = "/".join(
            f"{o.cpu.get(k, 0.0):.1f}" for k in ("workers", "broker", "postgres", "bench")
        )
        rows.append(
            f"{o.name:<14} {o.messages:>9,} {o.readings:>9,} {o.seconds:>8.2f} "
            f"{o.msgs_per_s:>9,.0f} "
            f"{o.readings_per_s:>11,.0f} {pub:>11} {o.check.get('stored', 0):>8,} "
            f"{'yes' if o.ok else 'NO':>3}  {cpu if o.cpu else '-'}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--no-derive", action="store_true", help="skip timing `meterhub derive`")
    parser.add_argument("--derive-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    meters = 1000 if not args.quick else 100
    single_slots = 100  # (a) 100,000 messages; quick: 10,000
    batch_per_meter, per_message = 5, 100  # (b) 5,000 x 100 = 500,000 readings; quick: 50,000
    start = (datetime.now(UTC) - timedelta(days=21)).replace(minute=0, second=0, microsecond=0)
    ids = meter_ids(meters)
    n_single = meters * single_slots
    single = single_messages(meters, single_slots, start)
    batched = batched_messages(meters, batch_per_meter, per_message, start)
    print(
        f"ingest benchmark: {len(single):,} single-reading messages; {len(batched):,} messages x "
        f"{per_message} readings; {meters:,} meters; QoS 1; broker and PostgreSQL on 127.0.0.1",
        flush=True,
    )
    outcomes: list[Outcome] = []
    workdir = Path(tempfile.mkdtemp(prefix="meterhub-bench-"))
    try:
        with mosquitto(workdir) as (port, _broker):
            plan: list[tuple[str, Any]] = [
                ("broker-raw", lambda: run_broker_raw(port, single, workdir)),
                ("fastpub-raw", lambda: run_fastpub_raw(port, single, workdir)),
                (
                    "single-1w",
                    lambda: run_ingest("single-1w", port, single, n_single, ids, 1, workdir),
                ),
                (
                    "single-2w",
                    lambda: run_ingest("single-2w", port, single, n_single, ids, 2, workdir),
                ),
                (
                    "batched-1w",
                    lambda: run_ingest(
                        "batched-1w", port, batched, len(batched) * per_message, ids, 1, workdir
                    ),
                ),
                (
                    "batched-2w",
                    lambda: run_ingest(
                        "batched-2w",
                        port,
                        batched,
                        len(batched) * per_message,
                        ids,
                        2,
                        workdir,
                        None if args.no_derive else args.derive_timeout,
                    ),
                ),
            ]
            for name, run in plan:
                print(f"  running {name} ...", flush=True)
                outcome = run()
                outcomes.append(outcome)
                if outcome.error:
                    print(f"  {name} FAILED: {outcome.error}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    by = {o.name: o for o in outcomes}
    raw = by["broker-raw"].msgs_per_s
    single_1w = by["single-1w"].msgs_per_s
    print()
    print(table(outcomes))
    derive = by["batched-2w"].derive
    if derive:
        print(
            f"\nmeterhub derive after batched-2w: {derive['readings']:,.0f} readings in "
            f"{derive['seconds']:.1f} s = {derive['readings_per_s']:,.0f} readings/s; "
            f"{derive['intervals']:,.0f} intervals, {derive['meters_left_in_queue']:,.0f} meters "
            f"left in the queue{'' if derive['finished'] else ' (stopped at the timeout)'}"
        )
    ratio = single_1w / raw if raw else 0.0
    batched_1w = by["batched-1w"].readings_per_s
    batched_2w = by["batched-2w"].readings_per_s
    # The batched goal names no worker count: workers are how ingest scales, so both are shown.
    best = max(batched_1w, batched_2w)
    print(
        f"\nsingle, 1 worker vs raw broker: {ratio:.0%} (goal >= 50%: "
        f"{'met' if ratio >= 0.5 else 'NOT met'}); batched: {batched_1w:,.0f} readings/s with 1 "
        f"worker, {batched_2w:,.0f} with 2 (goal >= 200,000: "
        f"{'met' if best >= 200_000 else 'NOT met'})"
    )
    figures: dict[str, Any] = {
        "benchmark": "ingest",
        "quick": args.quick,
        "broker_raw_msgs_per_s": round(raw),
        "broker_fastpub_msgs_per_s": round(by["fastpub-raw"].msgs_per_s),
        "single_msgs_per_s_1w": round(single_1w),
        "single_msgs_per_s_2w": round(by["single-2w"].msgs_per_s),
        "ratio_single_vs_broker": round(ratio, 3),
        "batched_readings_per_s_1w": round(batched_1w),
        "batched_readings_per_s_2w": round(by["batched-2w"].readings_per_s),
        "derive_readings_per_s": round(derive["readings_per_s"]) if derive else None,
        "publisher_msgs_per_s": {o.name: round(o.publisher.rate) for o in outcomes if o.publisher},
        "cpu_seconds": {
            o.name: {k: round(v, 2) for k, v in o.cpu.items()} for o in outcomes if o.cpu
        },
        "all_verified": all(o.ok for o in outcomes),
        "machine": machine_info(),
    }
    print(json.dumps(figures))
    return 0 if figures["all_verified"] else 1


if __name__ == "__main__":
    sys.exit(main())
