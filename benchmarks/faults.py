"""Faults against the real services: does every reading a meter handed over get stored once?

Each scenario runs a private Mosquitto from meterhub's generated configuration (dynamic security,
persistence with the default autosave), a fresh PostgreSQL database, ``meterhub ingest`` workers
as processes, and meters that publish with their own credentials and client ids, resending what the
broker did not deliver (a failure PUBACK, 0x10 "no matching subscribers" included), as
docs/mqtt-contract.md tells firmware to. Then it breaks something mid-stream and counts:

- ``sent``: readings the meters published; ``delivered``: those the broker acknowledged with
  success (what the platform is held to); ``stored``: delivered readings in the database;
- ``lost``: delivered but not stored; ``doubled``: a (meter, ts) stored twice, or a reading stored
  that no meter sent.

Scenarios: broker restarts (SIGTERM, twice), broker crash (SIGKILL) mid-stream and with readings
queued for a stopped worker, worker SIGKILL, a worker gone for good (then retired), database
connections terminated and refused, a meter credential trying ``$share`` and the worker's client
id, and hostile payloads between good readings.

    .venv/bin/python benchmarks/faults.py                  # all scenarios, default size
    .venv/bin/python benchmarks/faults.py --meters 50 --readings 400 broker_restart

Prints one line per scenario and ends with one JSON object (``lost``, ``doubled``, ``scenarios``,
``machine``). tests/integration/test_faults.py runs every scenario small, in CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "benchmarks", ROOT / "tests", ROOT / "tests" / "integration"):
    sys.path.insert(0, str(extra))

import paho.mqtt.client as mqtt  # noqa: E402
from ingest_support import worker_env, worker_process  # noqa: E402
from mosquitto_support import Broker, running_broker  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from _machine import machine_info  # noqa: E402
from meterhub.devices import mosquitto, registry  # noqa: E402
from meterhub.sim.engine import Publication  # noqa: E402
from meterhub.sim.publisher import MqttPublisher  # noqa: E402
from meterhub.store.db import make_engine  # noqa: E402
from meterhub.store.migrate import upgrade  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "meters"
STEP = timedelta(minutes=15)
HOSTILE_METER = "X-HOSTILE"


@dataclass
class Result:
    name: str
    sent: int = 0
    delivered: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"{self.name:<22} sent {self.sent:>7,}  delivered {self.delivered:>7,}  "
            f"stored {self.stored:>7,}  lost {self.lost:>5,}  doubled {self.doubled:>5,}  "
            f"{self.seconds:6.1f} s  {self.notes}"
        )


# -- the stage: database, broker, meters -----------------------------------------------------


@dataclass
class Stage:
    engine: Engine
    database: str
    broker: Broker
    secrets: dict[str, str]  # meter id -> MQTT password
    directory: Path
    base: datetime

    @property
    def mqtt_url(self) -> str:
        secret = self.broker.services[mosquitto.INGEST_ACCOUNT]
        return f"mqtt://{mosquitto.INGEST_ACCOUNT}:{secret}@127.0.0.1:{self.broker.plain_port}"

    def worker_env(self, worker_id: str, **extra: str) -> dict[str, str]:
        url = self.engine.url.render_as_string(hide_password=False)
        data_dir = self.directory / f"data-{worker_id}"
        env: dict[str, str] = worker_env(url, self.mqtt_url, PREFIX, worker_id, data_dir, **extra)
        return env

    @contextmanager
    def worker(self, worker_id: str = "meterhub-ingest-a") -> Iterator[Any]:
        with worker_process(self.worker_env(worker_id)) as running:
            yield running

    def meter_url(self, meter_id: str) -> str:
        return f"mqtt://{meter_id}:{self.secrets[meter_id]}@127.0.0.1:{self.broker.plain_port}"

    def stored_keys(self) -> list[tuple[str, datetime]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT meter_id, ts FROM readings")).all()
        return [(meter, ts) for meter, ts in rows]

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@contextmanager
def stage(meters: int, readings: int, *, hostile_meter: bool = False) -> Iterator[Stage]:
    """A fresh database with ``meters`` registered meters and a broker that knows them."""
    database = f"meterhub_faults_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    engine = make_engine(url)
    try:
        upgrade(engine)
        ids = [f"F-{n:05d}" for n in range(meters)]
        if hostile_meter:
            ids.append(HOSTILE_METER)
        secrets = {meter_id: registry.add_meter(engine, meter_id) for meter_id in ids}
        with tempfile.TemporaryDirectory(prefix="meterhub-faults-") as tmp:
            directory = Path(tmp)
            with running_broker(directory, engine) as broker:
                base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                yield Stage(engine, database, broker, secrets, directory, base - readings * STEP)
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# -- the stream: meters publishing with their own credentials ---------------------------------


class Stream:
    """Every meter publishes ``readings`` readings over ``seconds``, from its own client."""

    def __init__(self, stage_: Stage, readings: int, seconds: float) -> None:
        self.stage = stage_
        self.readings = readings
        self.seconds = seconds
        self.meters = [m for m in stage_.secrets if m != HOSTILE_METER]
        self.delivered: set[tuple[str, datetime]] = set()
        self.sent = 0
        self._lock = threading.Lock()
        self._publishers: list[MqttPublisher] = []

    def key(self, meter_id: str, index: int) -> tuple[str, datetime]:
        return meter_id, self.stage.base + index * STEP

    def _on_delivered(self, publication: Publication) -> None:
        meter_id = publication.topic.split("/")[1]
        ts = datetime.fromisoformat(orjson.loads(publication.payload)["ts"])
        with self._lock:
            self.delivered.add((meter_id, ts))

    def _publish(self, meter_id: str) -> None:
        publisher = MqttPublisher(
            self.stage.meter_url(meter_id),
            client_id=meter_id,
            on_delivered=self._on_delivered,
            connect_timeout_s=30,
        )
        self._publishers.append(publisher)
        publisher.connect()
        pause = self.seconds / self.readings
        for index in range(self.readings):
            _, ts = self.key(meter_id, index)
            body = {"ts": ts.isoformat(), "import_kwh": 100.0 + 0.25 * index, "voltage_v": 230.0}
            publisher.publish(Publication(f"{PREFIX}/{meter_id}/readings", orjson.dumps(body)))
            with self._lock:
                self.sent += 1
            time.sleep(pause)

    def run(self, faults: list[tuple[float, Callable[[], None]]]) -> None:
        """Publish; at each fraction of the stream's time, apply its fault."""
        threads = [threading.Thread(target=self._publish, args=(m,)) for m in self.meters]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for fraction, fault in sorted(faults, key=lambda f: f[0]):
            delay = started + fraction * self.seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fault()
        for thread in threads:
            thread.join(self.seconds * 10 + 120)

    def flush(self, timeout: float = 120.0) -> int:
        """Wait until every publication is delivered; close the clients; return how many were
        still not delivered when the time ran out."""
        deadline = time.monotonic() + timeout
        left = 0
        for publisher in self._publishers:
            publisher.flush(max(1.0, deadline - time.monotonic()))
            left += publisher.undelivered
            publisher.close()
        return left

    def wait_stored(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stored = set(self.stage.stored_keys())
            if self.delivered <= stored:
                return
            time.sleep(0.5)

    def tally(self, result: Result) -> Result:
        stored = self.stage.stored_keys()
        distinct = set(stored)
        expected = {self.key(m, i) for m in self.meters for i in range(self.readings)}
        good = {k for k in distinct if k[0] != HOSTILE_METER}
        result.sent = self.sent
        result.delivered = len(self.delivered)
        result.stored = len(self.delivered & distinct)
        missing = self.delivered - distinct
        result.lost = len(missing)
        if missing:
            result.notes["lost_keys"] = [f"{m} {ts.isoformat()}" for m, ts in sorted(missing)[:5]]
        result.doubled = (len(stored) - len(distinct)) + len(good - expected)
        return result


def finish(stream: Stream, result: Result, started: float) -> Result:
    undelivered = stream.flush()
    if undelivered:
        result.notes["never_delivered"] = undelivered
    stream.wait_stored()
    result.seconds = time.monotonic() - started
    return stream.tally(result)


# -- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    meters: int = 20
    readings: int = 100
    seconds: float = 8.0


def broker_restart(size: Size) -> Result:
    """Two clean broker restarts (SIGTERM) mid-stream."""
    result = Result("broker_restart")
    with stage(size.meters, size.readings) as s, s.worker():
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()
        stream.run([(0.3, s.broker.restart), (0.65, s.broker.restart)])
        return finish(stream, result, started)


def broker_crash(size: Size) -> Result:
    """The broker killed (SIGKILL) mid-stream and started again on its persistence."""
    result = Result("broker_crash")
    with stage(size.meters, size.readings) as s, s.worker():
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()

        def crash() -> None:
            s.broker.kill()
            time.sleep(0.5)
            s.broker.start()

        stream.run([(0.5, crash)])
        return finish(stream, result, started)


def broker_crash_queued(size: Size) -> Result:
    """Readings queued for a stopped worker, an autosave, then a broker crash (SIGKILL)."""
    result = Result("broker_crash_queued")
    with stage(size.meters, size.readings) as s:
        with s.worker():
            pass  # the worker's session and subscription exist; now it is stopped
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()
        stream.run([])
        result.notes["never_delivered"] = stream.flush()
        queued = len(stream.delivered)
        # The default generated configuration saves every DEFAULT_AUTOSAVE_SECONDS.
        time.sleep(mosquitto.DEFAULT_AUTOSAVE_SECONDS + 2)
        s.broker.kill()
        s.broker.start()
        with s.worker():
            stream.wait_stored()
        result.notes["queued_at_crash"] = queued
        result.seconds = time.monotonic() - started
        return stream.tally(result)


def worker_kill(size: Size) -> Result:
    """The ingest worker killed (SIGKILL) mid-stream and started again."""
    result = Result("worker_kill")
    with stage(size.meters, size.readings) as s:
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()
        with s.worker() as first:
            stream.run([(0.5, first.kill)])
        with s.worker():
            return finish(stream, result, started)


def worker_gone(size: Size) -> Result:
    """Two workers; one killed and kept down (its share strands), then retired."""
    result = Result("worker_gone")
    with stage(size.meters, size.readings) as s:
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()
        with s.worker("meterhub-ingest-a"), s.worker("meterhub-ingest-b") as gone:
            stream.run([(0.4, gone.kill)])
            result.notes["never_delivered"] = stream.flush()
            time.sleep(2)
            result.notes["stranded_before_retire"] = len(stream.delivered - set(s.stored_keys()))
            retire = subprocess.run(
                [sys.executable, "-m", "meterhub.cli", "ingest", "--retire", "meterhub-ingest-b"],
                env=s.worker_env("meterhub-ingest-b"),
                cwd=ROOT,
                capture_output=True,
                timeout=120,
                check=False,
            )
            result.notes["retire_exit"] = retire.returncode
            stream.wait_stored()
        result.seconds = time.monotonic() - started
        return stream.tally(result)


def database_outage(size: Size) -> Result:
    """Database connections terminated three times, then refused for two seconds."""
    result = Result("database_outage")
    with stage(size.meters, size.readings) as s, s.worker():
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()

        def terminate() -> None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (s.database,),
                )

        def refuse() -> None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{s.database}" ALLOW_CONNECTIONS false')
            terminate()
            time.sleep(2)
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{s.database}" ALLOW_CONNECTIONS true')

        stream.run([(0.2, terminate), (0.3, terminate), (0.4, terminate), (0.6, refuse)])
        finish(stream, result, started)
        result.notes["dead_letters"] = s.count("dead_letters")
        return result


def _try_meter(s: Stage, client_id: str, subscribe: str | None) -> dict[str, str]:
    """Connect with the hostile meter's credential; report what the broker answered."""
    answers: dict[str, str] = {}  # what the broker said: connack, suback
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(HOSTILE_METER, s.secrets[HOSTILE_METER])

    def on_connect(c: mqtt.Client, u: object, f: object, rc: Any, p: object) -> None:
        answers["connack"] = str(rc)
        if subscribe is not None and not rc.is_failure:
            c.subscribe(subscribe, qos=1)
        else:
            done.set()

    def on_subscribe(c: mqtt.Client, u: object, mid: int, codes: Any, p: object) -> None:
        answers["suback"] = ",".join(str(code) for code in codes)
        done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.connect("127.0.0.1", s.broker.plain_port)
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()
    return dict(answers)


def hostile_meter(size: Size) -> Result:
    """A meter's credential tries the ingest share and the worker's client id mid-stream."""
    result = Result("hostile_meter")
    with stage(size.meters, size.readings, hostile_meter=True) as s, s.worker():
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()

        def attack() -> None:
            share = f"$share/meterhub-ingest/{PREFIX}/+/readings"
            result.notes["share_subscription"] = _try_meter(s, HOSTILE_METER, share).get("suback")
            result.notes["wildcard_subscription"] = _try_meter(s, HOSTILE_METER, "#").get("suback")
            result.notes["worker_client_id"] = _try_meter(s, "meterhub-ingest-a", None).get(
                "connack"
            )

        stream.run([(0.3, attack)])
        return finish(stream, result, started)


def hostile_payloads(count: int, seed: int = 2026) -> list[tuple[str, bytes]]:
    """The issue's crashers plus a generated set from tests/hostile_payloads.py, each on one of
    the hostile meter's own topics (the broker refuses any other)."""
    import random

    from hypothesis import HealthCheck, given, settings

    from hostile_payloads import hostile_messages

    deep, deeper = b"[" * 300 + b"]" * 300, b"[" * 1000 + b"]" * 1000
    stamp = b'"ts": "2026-01-01T00:00:00Z"'
    fixed = [
        ("readings", b'{"ts": "0001-01-01T00:00:00+01:00", "import_kwh": 1}'),
        ("readings", b'{"ts": "9999-12-31T23:30:00-01:00", "import_kwh": 1}'),
        ("events", b'{"ts": "9999-12-31T23:30:00-01:00", "type": "tamper"}'),
        ("readings", b'{"readings": [' + b"[" * 300 + b"]" * 300 + b"]}"),
        ("readings", b"{" + stamp + b', "import_kwh": 1, "seq": 9223372036854775808}'),
        ("readings", b"{" + stamp + b', "import_kwh": 1, "x": ' + deep + b"}"),
        ("status", b'{"online": true, "x": ' + deeper + b"}"),
        ("events", b"{" + stamp + b', "type": "x", "x": ' + deeper + b"}"),
        ("status", b'{"online": true, "fw": "1.0\\u0000"}'),
        ("events", b"{" + stamp + b', "type": "ta\\u0000mper"}'),
    ]  # fmt: skip
    messages = [(f"{PREFIX}/{HOSTILE_METER}/{kind}", body) for kind, body in fixed]
    drawn: list[tuple[str, bytes]] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(hostile_messages(PREFIX, HOSTILE_METER))
    def collect(message: tuple[str, bytes]) -> None:
        # Larger packets are refused by the broker itself (max_packet_size), which disconnects
        # the meter: nothing of ingest's to test there.
        topic, payload = message
        own = topic.split("/")[1] == HOSTILE_METER and topic.count("/") == 2
        if own and len(payload) <= 200_000:
            drawn.append(message)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collect()
    random.Random(seed).shuffle(drawn)
    return messages + drawn[:count]


def poison_stream(size: Size, hostile: int = 200) -> Result:
    """Hostile payloads from a meter's own credential between the others' good readings."""
    result = Result("poison_stream")
    payloads = hostile_payloads(hostile)
    with stage(size.meters, size.readings, hostile_meter=True) as s, s.worker() as worker:
        stream = Stream(s, size.readings, size.seconds)
        started = time.monotonic()
        poisoner = MqttPublisher(s.meter_url(HOSTILE_METER), client_id=HOSTILE_METER)
        poisoner.connect()

        def poison() -> None:
            for topic, payload in payloads:
                poisoner.publish(Publication(topic, payload))

        stream.run([(0.2, poison)])
        poisoner.flush(60)
        poisoner.close()
        finish(stream, result, started)
        time.sleep(1)
        result.notes["hostile_messages"] = len(payloads)
        result.notes["dead_letters"] = s.count("dead_letters")
        result.notes["worker_alive"] = worker.process.poll() is None
        return result


SCENARIOS: dict[str, Callable[[Size], Result]] = {
    "broker_restart": broker_restart,
    "broker_crash": broker_crash,
    "broker_crash_queued": broker_crash_queued,
    "worker_kill": worker_kill,
    "worker_gone": worker_gone,
    "database_outage": database_outage,
    "hostile_meter": hostile_meter,
    "poison_stream": poison_stream,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--meters", type=int, default=50)
    parser.add_argument("--readings", type=int, default=200, help="per meter")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each stream")
    args = parser.parse_args()
    size = Size(args.meters, args.readings, args.seconds)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    results = []
    for name in args.scenarios or list(SCENARIOS):
        result = SCENARIOS[name](size)
        print(result.line(), flush=True)
        results.append(result)
    summary = {
        "lost": sum(r.lost for r in results),
        "doubled": sum(r.doubled for r in results),
        "scenarios": [r.__dict__ for r in results],
        "size": size.__dict__,
        "machine": machine_info(),
    }
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
