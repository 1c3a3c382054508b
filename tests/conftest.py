"""Shared fixtures. Integration fixtures use the machine's real PostgreSQL and Mosquitto.

In CI (CI=true) a missing service fails the run; on a laptop without them the test is skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, text

from meterhub.config import Settings
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade

# Wall-clock deadlines make property tests flaky on a noisy 2-core machine; we test behaviour.
settings.register_profile(
    "meterhub", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=200
)
settings.load_profile("meterhub")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PG_ADMIN_URL = os.environ.get("MH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MQTT_HOST = os.environ.get("MH_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("MH_TEST_MQTT_PORT", "1883"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def service_missing(what: str) -> None:
    """Fail in CI, skip elsewhere: a production path must never go untested in CI."""
    if in_ci():
        pytest.fail(f"{what} is required in CI but is not reachable")
    pytest.skip(f"{what} not reachable")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'meterhub.db'}")
    upgrade(engine)
    return engine


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, migrated, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        service_missing("PostgreSQL at " + PG_ADMIN_URL)
        raise
    name = f"meterhub_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """The same behaviour on the embedded default and on production PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_engine")  # type: ignore[no-any-return]
    return request.getfixturevalue("pg_engine")  # type: ignore[no-any-return]


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    if not reachable(MQTT_HOST, MQTT_PORT):
        service_missing(f"Mosquitto at {MQTT_HOST}:{MQTT_PORT}")
    return MQTT_HOST, MQTT_PORT


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of its own per test, so tests on the shared broker never see each other."""
    return f"t{uuid.uuid4().hex[:10]}"


# -- running an ingest worker and publishing, for integration tests --------------------------


class WorkerThread:
    """An ingest worker (and optionally the interval deriver) on its own event loop thread."""

    def __init__(self, settings: Settings, engine: Engine, *, derive: bool = True) -> None:
        from meterhub.ingest.worker import IngestWorker

        if settings.data_dir == Path("data"):
            # The crash journal goes to a directory of the test's, never the checkout's data/.
            settings = settings.model_copy(update={"data_dir": Path(tempfile.mkdtemp())})
        self.worker = IngestWorker(settings, engine)
        self.settings = settings
        self.engine = engine
        self.derive = derive
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from meterhub.ingest.deriver import IntervalDeriver
        from meterhub.ingest.service import derive_forever

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            tasks = [asyncio.create_task(self.worker.run(self._stop))]
            if self.derive:
                deriver = IntervalDeriver(self.settings, self.engine)
                tasks.append(asyncio.create_task(derive_forever(deriver, self._stop, 0.2)))
            await asyncio.gather(*tasks)

        asyncio.run(main())

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        if not self.worker.subscribed.wait(15):
            raise RuntimeError("ingest worker did not subscribe within 15 s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def call(self, function: Callable[[], object]) -> None:
        """Run ``function`` on the worker's event loop (gmqtt is not thread-safe)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(function)


def publish_all(
    host: str, port: int, messages: list[tuple[str, bytes]], *, qos: int = 1, client_id: str = ""
) -> None:
    """Publish and wait until the broker has acknowledged every message (QoS 1)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or uuid.uuid4().hex,
        protocol=mqtt.MQTTv5,
    )
    client.connect(host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def wait_until(
    predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def count_rows(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table} {where}")).scalar_one())
