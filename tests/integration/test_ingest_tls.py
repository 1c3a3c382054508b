"""The production path: `meterhub db upgrade` and `meterhub ingest` against real infrastructure.

A real Mosquitto runs from meterhub's generated mosquitto.conf and dynamic-security state (TLS
listener with a test CA, see mosquitto_support.py); meters are registered in a fresh PostgreSQL
database; `meterhub ingest` runs as a subprocess configured only by METERHUB_* environment
variables, and connects with the `meterhub-ingest` service account over mqtts:// with
METERHUB_MQTT_CA_FILE.
Every wait is bounded; the broker and every subprocess are ended in finalizers, by their pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import paho.mqtt.client as mqtt
import pytest
from mosquitto_support import Broker, running_broker
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import Engine, insert, text

from conftest import ROOT, count_rows, wait_until
from meterhub.devices import credentials, mosquitto, registry
from meterhub.store import schema
from meterhub.store.db import make_engine

pytestmark = pytest.mark.integration

READINGS_PER_MESSAGE = 4
# Meters registered through registry.add_meter (the CLI's path); the rest are inserted in bulk
# with credentials.hash_secret, which is what add_meter stores (measured: about 1.2 ms a hash, so
# hashing is not the cost; one transaction per meter is).
VIA_ADD_METER = 5
# Generous: a loaded 2-core CI machine can take seconds per TLS handshake + PBKDF2 check.
WAIT_S = 30.0
SUBSCRIBE_WAIT_S = 30.0
# How long `meterhub ingest` with a refused CONNECT is given to give up.
REFUSED_EXIT_WAIT_S = 20.0
BAD_CREDENTIALS = {0x86, 0x87}
BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


# -- the fleet ---------------------------------------------------------------------------------


def register_fleet(engine: Engine, count: int, prefix: str = "TLS") -> dict[str, str]:
    """Register ``count`` meters with their own credentials; return meter id -> plaintext."""
    ids = [f"{prefix}-{n:05d}" for n in range(count)]
    secrets = {m: registry.add_meter(engine, m) for m in ids[:VIA_ADD_METER]}
    bulk = {m: credentials.generate_secret() for m in ids[VIA_ADD_METER:]}
    now = datetime.now(UTC)
    rows = [
        {
            "id": m,
            "status": "active",
            "credential_hash": credentials.hash_secret(secret),
            "created_at": now,
        }
        for m, secret in bulk.items()
    ]
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(schema.meters), rows)
    return secrets | bulk


def readings_payload(index: int) -> bytes:
    readings = [
        {
            "ts": (BASE + timedelta(minutes=15 * i)).isoformat(),
            "import_kwh": 100 + index + 0.25 * i,
            "voltage_v": 230.0,
        }
        for i in range(READINGS_PER_MESSAGE)
    ]
    return orjson.dumps({"readings": readings})


# -- `meterhub` subprocesses --------------------------------------------------------------------


def meterhub_env(**settings: str) -> dict[str, str]:
    """The parent's environment minus any METERHUB_* of its own, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERHUB_")}
    env.update({f"METERHUB_{name.upper()}": value for name, value in settings.items()})
    return env


def run_db_upgrade(database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "db", "upgrade"],
        cwd=ROOT,
        env=meterhub_env(database_url=database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def ingest_url(broker: Broker, *, tls: bool = True, password: str | None = None) -> str:
    account = mosquitto.INGEST_ACCOUNT
    secret = quote(broker.services[account] if password is None else password, safe="")
    if tls:
        # "localhost": the TLS hostname check runs against the server certificate's SAN.
        return f"mqtts://{account}:{secret}@localhost:{broker.tls_port}"
    return f"mqtt://{account}:{secret}@127.0.0.1:{broker.plain_port}"


@dataclass
class IngestProcess:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def stderr(self) -> str:
        if self.reader is not None and self.process.poll() is not None:
            self.reader.join(WAIT_S)  # the pipe is closed: read everything that is left
        return "".join(self.lines)


def _read_stderr(ingest: IngestProcess) -> None:
    assert ingest.process.stderr is not None
    for line in ingest.process.stderr:
        ingest.lines.append(line)
        if "subscribed" in line:
            ingest.subscribed.set()


def _end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(WAIT_S)


@contextmanager
def ingest_process(
    broker: Broker,
    database_url: str,
    *,
    tls: bool = True,
    password: str | None = None,
    trust_ca: bool = True,
) -> Iterator[IngestProcess]:
    """`python -m meterhub.cli ingest`, configured by METERHUB_* variables only."""
    settings = {
        "database_url": database_url,
        "mqtt_url": ingest_url(broker, tls=tls, password=password),
        "worker_id": f"ingest-{uuid.uuid4().hex[:8]}",
        "batch_ms": "20",
    }
    if tls and trust_ca:
        settings["mqtt_ca_file"] = str(broker.ca)
    process = subprocess.Popen(
        [sys.executable, "-m", "meterhub.cli", "ingest"],
        cwd=ROOT,
        env=meterhub_env(**settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ingest = IngestProcess(process)
    ingest.reader = threading.Thread(target=_read_stderr, args=(ingest,), daemon=True)
    ingest.reader.start()
    try:
        yield ingest
    finally:
        _end(process)


def wait_subscribed(ingest: IngestProcess, broker: Broker) -> None:
    if not ingest.subscribed.wait(SUBSCRIBE_WAIT_S):
        pytest.fail(
            f"meterhub ingest did not subscribe within {SUBSCRIBE_WAIT_S} s "
            f"(exit code {ingest.process.poll()}):\n{ingest.stderr()}\n"
            f"--- mosquitto log ---\n{broker.log.read_text()}"
        )


# -- MQTT clients: meters and the simulator account ---------------------------------------------


class Publisher:
    """A paho MQTT 5 client over TLS that waits, with timeouts, for CONNACK and PUBACKs.

    Its client id is its username: a meter's credential works with its meter id only."""

    def __init__(self, broker: Broker, username: str, password: str, *, tls: bool = True) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set(ca_certs=str(broker.ca))
        self.connack: ReasonCode | None = None
        self.pubacks: dict[int, int] = {}
        self.changed = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.connect(
            "localhost" if tls else "127.0.0.1",
            broker.tls_port if tls else broker.plain_port,
            keepalive=30,
        )
        self.client.loop_start()
        with self.changed:
            if not self.changed.wait_for(lambda: self.connack is not None, timeout=WAIT_S):
                self.close()
                pytest.fail(f"no CONNACK for {username} within {WAIT_S} s")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        with self.changed:
            self.connack = reason
            self.changed.notify_all()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self.changed:
            self.pubacks[mid] = reason.value
            self.changed.notify_all()

    def publish_all(self, messages: list[tuple[str, bytes]], timeout: float = 30.0) -> list[int]:
        """Publish at QoS 1; return each message's PUBACK reason code (0 = accepted)."""
        mids = [self.client.publish(topic, payload, qos=1).mid for topic, payload in messages]
        with self.changed:
            if not self.changed.wait_for(lambda: all(m in self.pubacks for m in mids), timeout):
                pytest.fail(f"{len(mids) - len(self.pubacks)} PUBACKs missing after {timeout} s")
            return [self.pubacks[m] for m in mids]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def publisher(
    broker: Broker, username: str, password: str, *, tls: bool = True
) -> Iterator[Publisher]:
    client = Publisher(broker, username, password, tls=tls)
    try:
        yield client
    finally:
        client.close()


def publish_as_meters(broker: Broker, meters: list[tuple[int, str, str]]) -> None:
    """Each meter connects with its own credential and publishes its own batch (one at a time)."""
    for index, meter_id, secret in meters:
        with publisher(broker, meter_id, secret) as meter:
            assert meter.connack is not None and not meter.connack.is_failure, meter.connack
            codes = meter.publish_all([(f"meters/{meter_id}/readings", readings_payload(index))])
            assert codes == [0], f"{meter_id}: PUBACK {codes}"


# -- tests --------------------------------------------------------------------------------------


FLEET = 2_000
# Meters that connect with their own credential, one TLS connection each (all 2,000 take about
# 20 s on 2 cores, 500 about 5 s); the rest are published by the meterhub-sim service account.
OWN_CREDENTIAL_SAMPLE = 200
PUBLISH_THREADS = 4


def test_thousands_of_meters_over_tls_are_stored_exactly_once_in_postgresql(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    started = time.monotonic()
    assert "database at revision" in run_db_upgrade(pg_url)  # idempotent on the fresh database
    secrets = register_fleet(pg_engine, FLEET)
    registered = time.monotonic()
    ids = sorted(secrets)
    own = [(i, m, secrets[m]) for i, m in enumerate(ids[:OWN_CREDENTIAL_SAMPLE])]
    via_sim = [(i, m) for i, m in enumerate(ids) if i >= OWN_CREDENTIAL_SAMPLE]
    with (
        running_broker(tmp_path, pg_engine, with_sim=True) as broker,
        ingest_process(broker, pg_url) as ingest,
    ):
        wait_subscribed(ingest, broker)
        chunks = [own[n::PUBLISH_THREADS] for n in range(PUBLISH_THREADS)]
        with ThreadPoolExecutor(PUBLISH_THREADS) as pool:
            futures = [pool.submit(publish_as_meters, broker, chunk) for chunk in chunks]
            sim = mosquitto.SIM_ACCOUNT
            with publisher(broker, sim, broker.services[sim]) as fleet:
                messages = [(f"meters/{m}/readings", readings_payload(i)) for i, m in via_sim]
                codes = fleet.publish_all(messages, timeout=60)
            for future in futures:
                future.result(timeout=120)
        assert [c for c in codes if c != 0] == []
        published = time.monotonic()
        expected = FLEET * READINGS_PER_MESSAGE
        wait_until(
            lambda: count_rows(pg_engine, "readings") >= expected,
            timeout=60,
            what=f"{expected} readings",
        )
        stored = time.monotonic()
        time.sleep(0.5)  # anything extra (a second copy of a batch) would show up now
    assert ingest.process.returncode == 0, ingest.stderr()
    with pg_engine.connect() as conn:
        per_meter: dict[str, int] = dict(
            conn.execute(text("SELECT meter_id, count(*) FROM readings GROUP BY meter_id")).all()
        )
        keys = conn.execute(text("SELECT count(DISTINCT (meter_id, ts)) FROM readings")).scalar()
        sample_kwh = conn.execute(
            text("SELECT import_kwh FROM readings WHERE meter_id = :m ORDER BY ts"),
            {"m": ids[7]},
        ).scalars()
        sample = list(sample_kwh)
    assert count_rows(pg_engine, "readings") == expected
    assert keys == expected
    assert per_meter == dict.fromkeys(ids, READINGS_PER_MESSAGE)
    assert sample == pytest.approx([107 + 0.25 * i for i in range(READINGS_PER_MESSAGE)])
    assert count_rows(pg_engine, "dead_letters") == 0
    print(
        f"\n{FLEET} meters: registered in {registered - started:.1f} s, published in "
        f"{published - registered:.1f} s, all {expected} readings stored "
        f"{stored - published:.1f} s later"
    )


def test_small_fleet_over_plain_mqtt_into_sqlite(tmp_path: Path) -> None:
    """The other two URL schemes: mqtt:// on the broker's loopback listener, sqlite:///."""
    database_url = f"sqlite:///{tmp_path / 'meterhub.db'}"
    assert "database at revision" in run_db_upgrade(database_url)
    engine = make_engine(database_url)
    try:
        secrets = register_fleet(engine, 20, prefix="PLAIN")
        ids = sorted(secrets)
        with (
            running_broker(tmp_path, engine) as broker,
            ingest_process(broker, database_url, tls=False) as ingest,
        ):
            wait_subscribed(ingest, broker)
            publish_as_meters(broker, [(i, m, secrets[m]) for i, m in enumerate(ids)])
            expected = len(ids) * READINGS_PER_MESSAGE
            wait_until(lambda: count_rows(engine, "readings") >= expected, timeout=30)
        assert count_rows(engine, "readings") == expected
        assert count_rows(engine, "dead_letters") == 0
    finally:
        engine.dispose()


def test_meter_with_a_wrong_password_is_refused_and_nothing_of_it_is_stored(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    secrets = register_fleet(pg_engine, 2, prefix="PW")
    good, bad = sorted(secrets)
    with (
        running_broker(tmp_path, pg_engine) as broker,
        ingest_process(broker, pg_url) as ingest,
    ):
        wait_subscribed(ingest, broker)
        with publisher(broker, bad, secrets[bad] + "x") as impostor:
            assert impostor.connack is not None
            assert impostor.connack.value in BAD_CREDENTIALS, str(impostor.connack)
            # paho queues a publish on a refused session; it must never reach the broker.
            impostor.client.publish(f"meters/{bad}/readings", readings_payload(1), qos=1)
        # Another meter's key is no good either: the broker checks the password per username.
        with publisher(broker, bad, secrets[good]) as borrowed:
            assert borrowed.connack is not None
            assert borrowed.connack.value in BAD_CREDENTIALS, str(borrowed.connack)
        # A barrier: the good meter's reading is stored, so the pipeline was live meanwhile.
        publish_as_meters(broker, [(0, good, secrets[good])])
        wait_until(lambda: count_rows(pg_engine, "readings") >= READINGS_PER_MESSAGE, timeout=30)
        time.sleep(0.5)
    assert count_rows(pg_engine, "readings", f"WHERE meter_id = '{bad}'") == 0
    assert count_rows(pg_engine, "readings") == READINGS_PER_MESSAGE
    assert count_rows(pg_engine, "dead_letters") == 0
    assert "not authorised" in broker.log.read_text().lower() or "denied" in (
        broker.log.read_text().lower()
    )


def test_ingest_with_a_wrong_password_exits_non_zero_with_a_readable_error(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    with running_broker(tmp_path, pg_engine) as broker:
        wrong = credentials.generate_secret()
        with ingest_process(broker, pg_url, password=wrong) as ingest:
            try:
                ingest.process.wait(REFUSED_EXIT_WAIT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(
                    f"meterhub ingest still running {REFUSED_EXIT_WAIT_S} s after the broker "
                    f"refused its password:\n{ingest.stderr()}"
                )
            output = ingest.stderr()
    # It exits at once (about 1 s) with code 1; the reason is the last line of a rich traceback:
    # "MQTTConnectError: code 135 (Connection Refused: Not authorized)".
    assert ingest.process.returncode not in (0, None), output
    assert not ingest.subscribed.is_set()
    lowered = " ".join(output.lower().split())  # rich wraps the traceback's last line
    assert "user name or password" in lowered or "not authori" in lowered, output


def test_ingest_without_the_ca_file_refuses_the_broker_certificate_and_exits(
    tmp_path: Path, pg_url: str, pg_engine: Engine
) -> None:
    """mqtts:// verifies the server: without METERHUB_MQTT_CA_FILE the test CA is not trusted."""
    with (
        running_broker(tmp_path, pg_engine) as broker,
        ingest_process(broker, pg_url, trust_ca=False) as ingest,
    ):
        try:
            ingest.process.wait(REFUSED_EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"meterhub ingest still running with an untrusted server:\n{ingest.stderr()}"
            )
        output = ingest.stderr()
    assert ingest.process.returncode not in (0, None), output
    assert not ingest.subscribed.is_set()
    assert "certificate_verify_failed" in output.lower(), output
