"""Rows the database refuses cost only themselves; a database that is away costs nothing.

Through the machine's Mosquitto and a real database. A trigger stands in for "a value the column
cannot take" (it raises the same SQLSTATE, 22003, as an out-of-range number would).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from sqlalchemy import Engine, select, text
from test_ingest_pipeline import register, settings_for

from conftest import PG_ADMIN_URL, WorkerThread, count_rows, publish_all, wait_until
from meterhub.ingest.batches import STORE_REFUSED
from meterhub.store import schema

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)
REFUSED_KWH = 666.0


def refuse_a_value(engine: Engine) -> None:
    """Make the database refuse any reading whose import register is REFUSED_KWH."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"IF NEW.import_kwh = {REFUSED_KWH} THEN RAISE EXCEPTION 'out of range' "
                    "USING ERRCODE = '22003'; END IF; RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_666 BEFORE INSERT ON readings "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_666()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_666 BEFORE INSERT ON readings "
                    f"WHEN NEW.import_kwh = {REFUSED_KWH} "
                    "BEGIN SELECT RAISE(ABORT, 'out of range'); END"
                )
            )


def body(i: int, kwh: float | None = None) -> dict[str, object]:
    ts = BASE + timedelta(minutes=15 * i)
    return {"ts": ts.isoformat(), "import_kwh": 10.0 + i if kwh is None else kwh}


def test_rows_the_database_refuses_are_dead_lettered_and_the_rest_stored(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1", "M-2")
    refuse_a_value(any_engine)
    topic = f"{topic_prefix}/M-1/readings"
    messages = [(topic, orjson.dumps(body(i))) for i in range(20)]
    messages.insert(5, (topic, orjson.dumps(body(100, REFUSED_KWH))))
    # A batch message: its good items are stored, the refused one kept on its own.
    batch = {"readings": [body(120), body(121, REFUSED_KWH), body(122)]}
    messages.insert(12, (f"{topic_prefix}/M-2/readings", orjson.dumps(batch)))
    settings = settings_for(any_engine, topic_prefix, mqtt_broker[1], batch_ms=200)
    with WorkerThread(settings, any_engine):
        publish_all(*mqtt_broker, messages)
        wait_until(
            lambda: (
                count_rows(any_engine, "readings") == 22
                and count_rows(any_engine, "dead_letters") == 2
            ),
            what="good readings stored and the refused ones dead-lettered",
        )
    with any_engine.connect() as conn:
        dead = conn.execute(
            select(schema.dead_letters.c.reason_code, schema.dead_letters.c.payload)
        ).all()
    assert {row.reason_code for row in dead} == {STORE_REFUSED}
    assert all(orjson.loads(row.payload)["import_kwh"] == REFUSED_KWH for row in dead)


def admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def terminate(database: str) -> None:
    with admin() as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


def test_connections_terminated_and_refused_lose_and_double_nothing(
    pg_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(pg_engine, "M-1")
    database = pg_engine.url.database
    assert database is not None
    topic = f"{topic_prefix}/M-1/readings"
    messages = [(topic, orjson.dumps(body(i))) for i in range(400)]
    settings = settings_for(pg_engine, topic_prefix, mqtt_broker[1])

    def publish_slowly() -> None:
        for start in range(0, len(messages), 20):
            publish_all(*mqtt_broker, messages[start : start + 20])
            time.sleep(0.05)

    with WorkerThread(settings, pg_engine, derive=False):
        publisher = threading.Thread(target=publish_slowly)
        publisher.start()
        wait_until(lambda: count_rows(pg_engine, "readings") >= 50, what="some readings")
        # Connections cut under the worker, three times.
        for _ in range(3):
            terminate(database)
            time.sleep(0.3)
        # Then the database refuses every new connection for a while.
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        terminate(database)
        time.sleep(2)
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        publisher.join(60)
        wait_until(
            lambda: count_rows(pg_engine, "readings") == len(messages),
            timeout=60,
            what="every reading after the outages",
        )
    assert count_rows(pg_engine, "dead_letters") == 0
    with pg_engine.connect() as db:
        distinct = db.execute(
            text("SELECT count(DISTINCT (meter_id, ts)) FROM readings")
        ).scalar_one()
    assert distinct == len(messages)


def test_a_read_only_database_is_waited_for_not_dead_lettered(
    pg_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(pg_engine, "M-1")
    database = pg_engine.url.database
    topic = f"{topic_prefix}/M-1/readings"
    settings = settings_for(pg_engine, topic_prefix, mqtt_broker[1])
    with WorkerThread(settings, pg_engine, derive=False):
        # As after a failover to a standby: every write is refused with SQLSTATE 25006.
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        terminate(str(database))
        publish_all(*mqtt_broker, [(topic, orjson.dumps(body(i))) for i in range(30)])
        time.sleep(2)
        assert count_rows(pg_engine, "readings") == 0
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        terminate(str(database))
        wait_until(lambda: count_rows(pg_engine, "readings") == 30, what="readings after")
    assert count_rows(pg_engine, "dead_letters") == 0


def test_a_database_outage_while_looking_meters_up_is_waited_for(
    pg_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(pg_engine, "M-1")
    database = str(pg_engine.url.database)
    settings = settings_for(pg_engine, topic_prefix, mqtt_broker[1])
    with WorkerThread(settings, pg_engine, derive=False) as running:
        publish_all(*mqtt_broker, [(f"{topic_prefix}/M-1/readings", orjson.dumps(body(0)))])
        wait_until(lambda: count_rows(pg_engine, "readings") == 1, what="the first reading")
        # A meter the worker has not seen yet: its first message makes the worker ask the
        # database, which is refusing connections just then.
        register(pg_engine, "M-2")
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        terminate(database)
        publish_all(*mqtt_broker, [(f"{topic_prefix}/M-2/readings", orjson.dumps(body(1)))])
        time.sleep(2)
        assert running.alive, "the worker waits for the database; it does not stop"
        with admin() as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_until(lambda: count_rows(pg_engine, "readings") == 2, what="the new meter's reading")
    assert count_rows(pg_engine, "dead_letters") == 0
