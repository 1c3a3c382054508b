"""Registering a fleet: `meterhub meter import` of N meters, then the broker loading them.

On a fresh PostgreSQL database (127.0.0.1:5432, created and dropped here) with N consumers:

1. a CSV of N meters, each with its consumer, phase, position, model and firmware;
2. the import as `meterhub meter import` does it (``importer.import_file``): checks, a secret and
   its PBKDF2 hash per meter (1,000 iterations, on every core), one transaction, the 0600
   credentials file; then the broker's dynamic-security state written once from the table;
3. a private Mosquitto (its own port, plain loopback listener, persistence in a temporary
   directory) started on that state: seconds until it listens, and its resident memory;
4. one imported meter connects with its secret and its id as client id (the proof);
5. with N meters loaded: `meterhub meter add` as a subprocess, pushing the new meter to the
   running broker through $CONTROL (what an operator waits for), and the $CONTROL round trip
   of one command on its own (Mosquitto 2.0.11 rewrites its whole plugin state per command);
6. what the restart costs afterwards: --reconnects imported meters (default 2,000) connect over
   TLS (ECDSA P-256, TLS 1.2+) and PBKDF2, 4 at a time, and the broker's CPU seconds per connection
   are multiplied out to the whole fleet coming back after a restart.

    .venv/bin/python benchmarks/meter_import.py [--meters 100000]

Table, then the last line: one JSON object with the figures and the machine.
"""

from __future__ import annotations

import argparse
import csv
import getpass
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info
from meterhub.devices import broker_state, control, credentials, dynsec, importer, mosquitto
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MOSQUITTO = "/usr/sbin/mosquitto"
WAIT_S = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_csv(path: Path, meters: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "consumer", "phase", "lat", "lon", "model", "firmware"])
        for n in range(meters):
            writer.writerow(
                [f"M-{n:07d}", f"C-{n:07d}", 3 if n % 10 == 0 else 1,
                 f"{27.6 + (n % 1000) / 10000:.4f}", f"{85.3 + (n // 1000) / 10000:.4f}",
                 "EM-3", "1.4.2"]
            )  # fmt: skip


def create_database(meters: int) -> str:
    name = f"meterhub_bench_import_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    rows = [{"id": f"C-{n:07d}", "name": f"Consumer {n}", "created_at": now} for n in range(meters)]
    with engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(schema.consumers), rows[start : start + 20_000])
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def self_signed(work: Path) -> tuple[Path, Path]:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(work / "server.key"), "-out", str(work / "server.crt"),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return work / "server.crt", work / "server.key"


class Broker:
    def __init__(self, work: Path, state: Path) -> None:
        self.port, self.tls_port = free_port(), free_port()
        self.conf = work / "mosquitto.conf"
        (work / "data").mkdir()
        cert, key = self_signed(work)
        self.conf.write_text(
            mosquitto.mosquitto_conf_text(
                dynsec_plugin=broker_state.find_dynsec_plugin(),
                dynsec_state=state,
                persistence_location=work / "data",
                tls=mosquitto.TlsListener(
                    cafile=cert,
                    certfile=cert,
                    keyfile=key,
                    port=self.tls_port,
                    bind_address="127.0.0.1",
                ),
                plain_port=self.port,
                log_dest=f"file {work / 'mosquitto.log'}",
                run_as_user=getpass.getuser(),
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        started = time.monotonic()
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while time.monotonic() - started < WAIT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not listen in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT_S)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connects(port: int, meter_id: str, secret: str, *, tls: bool = False) -> bool:
    done = threading.Event()
    outcome: dict[str, bool] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=meter_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(meter_id, secret)
    if tls:  # the broker's side of the handshake is what is measured; no need to verify it
        client.tls_set(cert_reqs=ssl.CERT_NONE)
        client.tls_insecure_set(True)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        outcome["ok"] = not reason.is_failure
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        done.wait(30)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome.get("ok", False)


def cli_meter_add(url: str, state: Path, control_url: str, meter_id: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERHUB_")}
    env.update(
        METERHUB_DATABASE_URL=url,
        METERHUB_MOSQUITTO_DYNSEC_FILE=str(state),
        METERHUB_MOSQUITTO_CONTROL_URL=control_url,
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "meter", "add", meter_id],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S, check=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    if "The running broker has the change." not in done.stdout:
        raise RuntimeError(f"meter add did not reach the broker:\n{done.stdout}{done.stderr}")
    match = re.search(r"MQTT password: (\S+)", done.stdout)
    assert match is not None
    return seconds, match.group(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--meters", type=int, default=100_000)
    parser.add_argument("--reconnects", type=int, default=2_000)
    args = parser.parse_args(argv)
    n = args.meters
    url = create_database(n)
    broker: Broker | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="meterhub-import-") as tmp:
            work = Path(tmp)
            source, secrets_file = work / "meters.csv", work / "secrets.csv"
            write_csv(source, n)
            state = work / "dynamic-security.json"
            service_secrets = {
                a: credentials.generate_secret() for a in mosquitto.PRODUCTION_ACCOUNTS
            }
            engine = make_engine(url)
            topics = dynsec.Topics()
            broker_state.write_state(
                engine, state, topics,
                services={a: credentials.hash_secret(s) for a, s in service_secrets.items()},
            )  # fmt: skip
            broker = Broker(work, state)
            broker.start()

            started = time.monotonic()
            result = importer.import_file(engine, source, secrets_file, zone=ZoneInfo("UTC"))
            written = broker_state.write_state(engine, state, topics)
            total = time.monotonic() - started
            # The broker reads its state when it starts: the batch costs one restart.
            broker.stop()
            load_s = broker.start()
            assert broker.process is not None
            rss = rss_mb(broker.process.pid)
            with secrets_file.open() as handle:
                rows = list(csv.DictReader(handle))
            sample = rows[len(rows) // 2]
            if not connects(broker.port, sample["meter_id"], sample["mqtt_password"]):
                raise RuntimeError(f"imported meter {sample['meter_id']} could not connect")

            admin = quote(service_secrets[mosquitto.ADMIN_ACCOUNT], safe="")
            control_url = f"mqtt://{mosquitto.ADMIN_ACCOUNT}:{admin}@127.0.0.1:{broker.port}"
            # Three adds, the median reported: one sample on a shared 2-core machine is noise.
            adds = [cli_meter_add(url, state, control_url, f"M-LIVE-{k}") for k in (1, 2, 3)]
            add_s = sorted(seconds for seconds, _ in adds)[1]
            if not connects(broker.port, "M-LIVE-1", adds[0][1]):
                raise RuntimeError("the meter added live could not connect")
            pushed = time.monotonic()
            control.send_commands(
                control_url, dynsec.set_password_commands("M-LIVE-1", "x" * 32), timeout=WAIT_S
            )
            command_s = time.monotonic() - pushed

            sample_rows = rows[: min(args.reconnects, len(rows))]
            cpu_before, wall_before = cpu_seconds(broker.process.pid), time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                results = list(
                    pool.map(
                        lambda r: connects(
                            broker.tls_port, r["meter_id"], r["mqtt_password"], tls=True
                        ),
                        sample_rows,
                    )
                )
            reconnect_wall = time.monotonic() - wall_before
            reconnect_cpu = cpu_seconds(broker.process.pid) - cpu_before
            if not all(results):
                raise RuntimeError(f"{results.count(False)} TLS reconnects were refused")
            engine.dispose()
    finally:
        if broker is not None:
            broker.stop()
        drop_database(url)

    figures = {
        "meters": n,
        "import_s": round(total, 1),
        "meters_per_s": round(n / total),
        "checks_s": round(result.parse_s, 1),
        "hashing_s": round(result.hash_s, 1),
        "database_s": round(result.database_s, 1),
        "broker_state_write_s": round(written.seconds, 2),
        "broker_state_mb": round(written.bytes / 1e6, 1),
        "broker_load_s": round(load_s, 2),
        "broker_rss_mb": round(rss, 1),
        "meter_add_cli_s": round(add_s, 2),
        "control_command_s": round(command_s, 2),
        "tls_reconnects": len(sample_rows),
        "tls_reconnects_per_s": round(len(sample_rows) / reconnect_wall),
        "broker_cpu_ms_per_tls_connect": round(1000 * reconnect_cpu / len(sample_rows), 2),
        "fleet_reconnect_broker_cpu_s": round(reconnect_cpu / len(sample_rows) * n),
    }
    print(f"meters imported               {n:>10,}")
    print(f"import (all steps)            {figures['import_s']:>10} s  "
          f"({figures['meters_per_s']:,} meters/s)")  # fmt: skip
    print(f"  checks                      {figures['checks_s']:>10} s")
    print(f"  hashing (PBKDF2, all cores) {figures['hashing_s']:>10} s")
    print(f"  database + credentials file {figures['database_s']:>10} s")
    print(f"  broker state written        {figures['broker_state_write_s']:>10} s  "
          f"({figures['broker_state_mb']} MB)")  # fmt: skip
    print(f"broker start on that state    {figures['broker_load_s']:>10} s")
    print(f"broker RSS after the load     {figures['broker_rss_mb']:>10} MB")
    print(f"meter add (CLI, live push)    {figures['meter_add_cli_s']:>10} s  (median of 3)")
    print(f"one $CONTROL command           {figures['control_command_s']:>9} s")
    print(
        f"TLS reconnects                {figures['tls_reconnects']:>10,}  "
        f"({figures['tls_reconnects_per_s']:,}/s, "
        f"{figures['broker_cpu_ms_per_tls_connect']} ms broker CPU each)"
    )
    print(f"whole fleet back after a restart: about "
          f"{figures['fleet_reconnect_broker_cpu_s']:,} s of broker CPU")  # fmt: skip
    print(json.dumps({**figures, "machine": machine_info()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
