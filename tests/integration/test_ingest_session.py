"""The worker's connection stays subscribed and proves that it still delivers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine
from test_ingest_pipeline import register, settings_for

from conftest import WorkerThread, count_rows, publish_all, wait_until

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


def test_a_connection_that_delivers_nothing_is_made_again_with_its_subscriptions(
    sqlite_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(sqlite_engine, "M-1")
    settings = settings_for(sqlite_engine, topic_prefix, mqtt_broker[1], probe_seconds=0.3)
    with WorkerThread(settings, sqlite_engine, derive=False) as running:
        session = running.worker.session
        assert session.connections == 1
        # Behind the worker's back the broker forgets every subscription of the connection
        # (as Mosquitto does with $share after a restart): the connection is up and deaf.
        topics = [*session.filters, session.probe_topic]
        running.call(lambda: session.client.unsubscribe(topics))
        wait_until(
            lambda: session.connections == 2 and session.subscribed.is_set(),
            what="the deaf connection made again and subscribed",
        )
        body = {"ts": BASE.isoformat(), "import_kwh": 1.0}
        publish_all(*mqtt_broker, [(f"{topic_prefix}/M-1/readings", orjson.dumps(body))])
        wait_until(lambda: count_rows(sqlite_engine, "readings") == 1, what="the reading")


def test_a_busy_connection_is_never_taken_for_a_deaf_one(
    sqlite_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(sqlite_engine, "M-1")
    settings = settings_for(sqlite_engine, topic_prefix, mqtt_broker[1], probe_seconds=0.2)
    messages = [
        (
            f"{topic_prefix}/M-1/readings",
            orjson.dumps({"ts": (BASE + timedelta(minutes=i)).isoformat(), "import_kwh": 1.0 + i}),
        )
        for i in range(300)
    ]
    with WorkerThread(settings, sqlite_engine, derive=False) as running:
        publish_all(*mqtt_broker, messages)
        wait_until(lambda: count_rows(sqlite_engine, "readings") == 300, what="every reading")
        assert running.worker.session.connections == 1
