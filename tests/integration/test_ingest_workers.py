"""Ingest workers as real processes: a crash loses nothing, two workers split the load."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ingest_support
import orjson
import pytest
from ingest_support import worker_env
from sqlalchemy import Engine, insert, text

from conftest import count_rows, publish_all, wait_until
from meterhub.store import schema

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)


def register(engine: Engine, meter_ids: list[str]) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(schema.meters), [{"id": m, "created_at": now} for m in meter_ids])


@contextmanager
def worker_process(
    db_url: str, prefix: str, worker_id: str, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    data_dir = Path(tempfile.mkdtemp(prefix="meterhub-test-"))
    env = worker_env(db_url, f"mqtt://127.0.0.1:{port}", prefix, worker_id, data_dir)
    with ingest_support.worker_process(env) as worker:
        yield worker.process


def readings_messages(prefix: str, meters: list[str], per_meter: int) -> list[tuple[str, bytes]]:
    messages = []
    for i in range(per_meter):
        for meter in meters:
            body = {
                "ts": (BASE + timedelta(minutes=15 * i)).isoformat(),
                "import_kwh": 10 + 0.5 * i,
            }
            messages.append((f"{prefix}/{meter}/readings", orjson.dumps(body)))
    return messages


def publish_slowly(broker: tuple[str, int], messages: list[tuple[str, bytes]]) -> None:
    """A stream that lasts a few seconds, so that the worker can die in the middle of it."""
    for start in range(0, len(messages), 20):
        publish_all(*broker, messages[start : start + 20])
        time.sleep(0.1)


def test_worker_killed_mid_stream_and_restarted_loses_and_double_counts_nothing(
    pg_url: str, pg_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    meters = [f"K-{n}" for n in range(10)]
    register(pg_engine, meters)
    messages = readings_messages(topic_prefix, meters, per_meter=60)  # 600 messages
    worker_id = f"crash-{topic_prefix}"
    with worker_process(pg_url, topic_prefix, worker_id, mqtt_broker[1]) as first:
        publisher = threading.Thread(target=publish_slowly, args=(mqtt_broker, messages))
        publisher.start()
        wait_until(lambda: count_rows(pg_engine, "readings") >= 100, what="some readings stored")
        first.send_signal(signal.SIGKILL)  # no goodbye: un-acked messages stay with the broker
        first.wait(10)
        publisher.join(60)
    stored_at_crash = count_rows(pg_engine, "readings")
    assert stored_at_crash < len(messages), (
        "the worker must die mid-stream for this test to mean anything"
    )
    with worker_process(pg_url, topic_prefix, worker_id, mqtt_broker[1]):
        wait_until(
            lambda: count_rows(pg_engine, "readings") == len(messages),
            timeout=60,
            what="every reading after the restart",
        )
    # exactly once: every key once, and each meter's register rises by 0.5 kWh per reading
    with pg_engine.connect() as conn:
        per_meter: dict[str, float] = dict(
            conn.execute(
                text(
                    "SELECT meter_id, max(import_kwh) - min(import_kwh) FROM readings "
                    "GROUP BY meter_id"
                )
            ).all()
        )
    assert per_meter == {m: pytest.approx(59 * 0.5) for m in meters}
    assert count_rows(pg_engine, "dead_letters") == 0


def test_two_workers_with_a_shared_subscription_store_every_reading_exactly_once(
    pg_url: str, pg_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    meters = [f"S-{n}" for n in range(20)]
    register(pg_engine, meters)
    messages = readings_messages(topic_prefix, meters, per_meter=40)  # 800 messages
    with (
        worker_process(pg_url, topic_prefix, f"a-{topic_prefix}", mqtt_broker[1]),
        worker_process(pg_url, topic_prefix, f"b-{topic_prefix}", mqtt_broker[1]),
    ):
        publish_all(*mqtt_broker, messages)
        wait_until(
            lambda: count_rows(pg_engine, "readings") == len(messages),
            timeout=60,
            what="every reading",
        )
    with pg_engine.connect() as conn:
        per_worker: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT worker_id, count FROM ingest_counters "
                    "WHERE outcome = 'accepted' AND reason = 'reading'"
                )
            ).all()
        )
        duplicates = conn.execute(
            text("SELECT coalesce(sum(count), 0) FROM ingest_counters WHERE outcome = 'duplicate'")
        ).scalar_one()
    assert sum(per_worker.values()) == len(messages)
    assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker
    assert duplicates == 0
