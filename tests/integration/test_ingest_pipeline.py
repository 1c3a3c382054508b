"""Publish -> validate -> store, against the machine's Mosquitto and a real database.

Each test gets its own topic prefix and a fresh database (SQLite file or PostgreSQL database).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine, insert, select, text

from conftest import WorkerThread, count_rows, publish_all, wait_until
from meterhub.config import Settings
from meterhub.store import schema

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def settings_for(engine: Engine, prefix: str, port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "mqtt_url": f"mqtt://127.0.0.1:{port}",
        "topic_prefix": prefix,
        "worker_id": f"test-{prefix}",
        "batch_ms": 20,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def register(engine: Engine, *meter_ids: str, sanctioned_load_kw: float = 5.0) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.meters),
            [
                {"id": m, "sanctioned_load_kw": sanctioned_load_kw, "created_at": now}
                for m in meter_ids
            ],
        )


def reading(ts: datetime, kwh: float, **extra: object) -> dict[str, object]:
    return {"ts": ts.isoformat(), "import_kwh": kwh, "voltage_v": 231.0, **extra}


def msg(prefix: str, meter_id: str, body: object, kind: str = "readings") -> tuple[str, bytes]:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return f"{prefix}/{meter_id}/{kind}", payload


def test_published_readings_are_stored_with_intervals(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    batch = {
        "readings": [reading(BASE + timedelta(minutes=15 * i), 100 + 0.25 * i) for i in range(9)]
    }
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", batch)])
        wait_until(lambda: count_rows(any_engine, "intervals") == 8, what="8 intervals")
    assert count_rows(any_engine, "readings") == 9
    with any_engine.connect() as conn:
        energies = (
            conn.execute(text("SELECT import_kwh FROM intervals ORDER BY start")).scalars().all()
        )
        qualities = set(conn.execute(text("SELECT quality FROM intervals")).scalars())
    # 9 readings 15 minutes apart, +0.25 kWh each: 8 intervals of 0.25 kWh
    assert energies == pytest.approx([0.25] * 8)
    assert qualities == {"actual"}


def test_redelivered_message_changes_nothing(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    one = msg(topic_prefix, "M-1", reading(BASE, 10.0))
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(*mqtt_broker, [one])
        wait_until(lambda: count_rows(any_engine, "readings") == 1, what="first copy")
        publish_all(*mqtt_broker, [one, one])
        wait_until(lambda: _counter(any_engine, "duplicate") == 2, what="two duplicates counted")
    assert count_rows(any_engine, "readings") == 1
    assert count_rows(any_engine, "events", "WHERE type = 'reading_conflict'") == 0


def test_same_key_with_other_values_is_a_conflict_event_not_an_overwrite(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", reading(BASE, 10.0))])
        wait_until(lambda: count_rows(any_engine, "readings") == 1, what="original")
        publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", reading(BASE, 99.0))])
        wait_until(
            lambda: count_rows(any_engine, "events", "WHERE type = 'reading_conflict'") == 1,
            what="conflict event",
        )
    with any_engine.connect() as conn:
        stored = conn.execute(select(schema.readings.c.import_kwh)).scalar_one()
        payload = conn.execute(
            select(schema.events.c.payload).where(schema.events.c.type == "reading_conflict")
        ).scalar_one()
    assert stored == 10.0
    assert payload["stored"]["import_kwh"] == 10.0
    assert payload["received"]["import_kwh"] == 99.0


def test_out_of_order_arrival_gives_the_same_intervals(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    readings = [reading(BASE + timedelta(minutes=15 * i), 50 + i * i * 0.1) for i in range(8)]
    shuffled = [readings[i] for i in (5, 0, 7, 2, 1, 6, 3, 4)]
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        # one message per reading, published in scrambled order, in separate batches
        for item in shuffled:
            publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", item)])
        wait_until(lambda: count_rows(any_engine, "readings") == 8, what="all readings")
        wait_until(
            lambda: (
                count_rows(any_engine, "intervals") == 7
                and count_rows(any_engine, "interval_work") == 0
            ),
            what="intervals recomputed",
        )
    with any_engine.connect() as conn:
        energies = (
            conn.execute(text("SELECT import_kwh FROM intervals ORDER BY start")).scalars().all()
        )
    # register i*i*0.1: interval i holds ((i+1)^2 - i^2) * 0.1 = (2i+1) * 0.1
    assert energies == pytest.approx([(2 * i + 1) * 0.1 for i in range(7)])


def test_late_reading_in_a_gap_replaces_estimates(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(
            *mqtt_broker,
            [
                msg(topic_prefix, "M-1", reading(BASE, 10.0)),
                msg(topic_prefix, "M-1", reading(BASE + timedelta(hours=1), 14.0)),
            ],
        )
        wait_until(lambda: count_rows(any_engine, "intervals") == 4, what="estimated intervals")
        assert count_rows(any_engine, "intervals", "WHERE quality = 'estimated'") == 4
        late = [
            reading(BASE + timedelta(minutes=m), kwh)
            for m, kwh in ((15, 10.5), (30, 12.0), (45, 13.0))
        ]
        publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", {"readings": late})])
        wait_until(
            lambda: count_rows(any_engine, "intervals", "WHERE quality = 'actual'") == 4,
            what="actual intervals",
        )
    with any_engine.connect() as conn:
        energies = (
            conn.execute(text("SELECT import_kwh FROM intervals ORDER BY start")).scalars().all()
        )
    assert energies == pytest.approx([0.5, 1.5, 1.0, 1.0])


HOSTILE: list[tuple[bytes, str]] = [
    (b"\x00\xff\xfe binary", "malformed_json"),
    (b'{"ts": 1764000000, "import_kwh": NaN}', "malformed_json"),
    (b"[" * 5000 + b"]" * 5000, "malformed_json"),
    (b'{"ts": 1764000000, "import_kwh": "12"}', "wrong_type"),
    (b'{"ts": "2099-01-01T00:00:00+00:00", "import_kwh": 1}', "ts_in_future"),
    (b'{"ts": "2001-01-01T00:00:00+00:00", "import_kwh": 1}', "ts_too_old"),
    (b'{"ts": "9999-12-31T23:30:00-01:00", "import_kwh": 1}', "bad_timestamp"),
    (b'{"meter_id": "M-2", "ts": 1764000000, "import_kwh": 1}', "meter_mismatch"),
    (b'{"ts": 1764000000, "import_kwh": -5}', "negative_register"),
    (b'{"ts": 1764000000, "voltage_v": 9000, "power_w": 5}', "value_out_of_range"),
    (b" " * 300_000, "payload_too_large"),
]


def test_hostile_payloads_are_dead_lettered_and_good_ones_around_them_stored(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    good = [
        msg(topic_prefix, "M-1", reading(BASE + timedelta(minutes=15 * i), 1.0 + i))
        for i in range(len(HOSTILE) + 1)
    ]
    messages: list[tuple[str, bytes]] = []
    for index, (payload, _) in enumerate(HOSTILE):
        messages.append(good[index])
        messages.append((f"{topic_prefix}/M-1/readings", payload))
    messages.append(good[-1])
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(*mqtt_broker, messages)
        wait_until(
            lambda: (
                count_rows(any_engine, "dead_letters") == len(HOSTILE)
                and count_rows(any_engine, "readings") == len(good)
            ),
            what="all messages handled",
        )
    with any_engine.connect() as conn:
        rows = conn.execute(
            select(
                schema.dead_letters.c.reason_code,
                schema.dead_letters.c.payload,
                schema.dead_letters.c.message,
            ).order_by(schema.dead_letters.c.id)
        ).all()
    assert [r.reason_code for r in rows] == [code for _, code in HOSTILE]
    assert all(r.message for r in rows)
    # raw bytes are kept exactly for whole-message rejections
    assert rows[0].payload == HOSTILE[0][0]


def test_unknown_meter_is_dead_lettered_by_default(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(*mqtt_broker, [msg(topic_prefix, "STRANGER", reading(BASE, 1.0))])
        wait_until(lambda: count_rows(any_engine, "dead_letters") == 1, what="dead letter")
    assert count_rows(any_engine, "dead_letters", "WHERE reason_code = 'unknown_meter'") == 1
    assert count_rows(any_engine, "readings") == 0
    assert count_rows(any_engine, "meters") == 0


def test_unknown_meter_is_registered_when_configured(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    settings = settings_for(any_engine, topic_prefix, mqtt_broker[1], unknown_meters="register")
    with WorkerThread(settings, any_engine):
        publish_all(*mqtt_broker, [msg(topic_prefix, "NEWCOMER", reading(BASE, 1.0))])
        wait_until(lambda: count_rows(any_engine, "readings") == 1, what="reading")
    assert count_rows(any_engine, "meters", "WHERE status = 'auto_registered'") == 1


def test_events_are_stored_once_and_status_sets_online_state(
    any_engine: Engine, mqtt_broker: tuple[str, int], topic_prefix: str
) -> None:
    register(any_engine, "M-1")
    tamper = msg(topic_prefix, "M-1", {"ts": BASE.isoformat(), "type": "cover_open"}, "events")
    with WorkerThread(settings_for(any_engine, topic_prefix, mqtt_broker[1]), any_engine):
        publish_all(
            *mqtt_broker,
            [
                tamper,
                tamper,
                msg(topic_prefix, "M-1", {"online": True, "fw": "1.4.2"}, "status"),
            ],
        )
        wait_until(lambda: _online(any_engine, "M-1") is True, what="online")
        # the broker publishes the last will when the meter drops off
        publish_all(*mqtt_broker, [msg(topic_prefix, "M-1", {"online": False}, "status")])
        wait_until(lambda: _online(any_engine, "M-1") is False, what="offline")
    assert count_rows(any_engine, "events", "WHERE type = 'cover_open'") == 1
    assert count_rows(any_engine, "events", "WHERE type = 'offline'") == 1
    with any_engine.connect() as conn:
        firmware = conn.execute(select(schema.meters.c.firmware)).scalar_one()
    assert firmware == "1.4.2"


def _online(engine: Engine, meter_id: str) -> bool | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(schema.meters.c.online).where(schema.meters.c.id == meter_id)
        ).scalar_one()
    return None if value is None else bool(value)


def _counter(engine: Engine, outcome: str) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT coalesce(sum(count), 0) FROM ingest_counters WHERE outcome = :o"),
            {"o": outcome},
        ).scalar_one()
    return int(value)
