"""What one MQTT message becomes: routing, readings, events, status and dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from meterhub.config import Settings
from meterhub.ingest import messages
from meterhub.ingest.messages import Inbound, IngestRules, process_message, route
from meterhub.readings.model import Rejection
from meterhub.readings.vee import ReadingLimits

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES = IngestRules("meters", ReadingLimits(), 256 * 1024, accept_unknown_meters=False)


def inbound(topic: str, body: object) -> Inbound:
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    return Inbound(topic, payload, NOW)


def test_topic_gives_meter_and_kind() -> None:
    assert route("meters/M-1/readings", "meters") == ("M-1", "readings")


@pytest.mark.parametrize(
    "topic",
    [
        "meters/M-1",
        "other/M-1/readings",
        "meters/M-1/readings/x",
        "meters/M-1/cmd",
        "meters//readings",
    ],
)
def test_topics_outside_the_contract_are_bad_topics(topic: str) -> None:
    routed = route(topic, "meters")
    assert isinstance(routed, Rejection)
    assert routed.code in (messages.BAD_TOPIC, messages.BAD_METER_ID)


@pytest.mark.parametrize("meter_id", ["M 1", "M1\n", "Ω1", "x" * 65, "M;1"])
def test_meter_ids_outside_the_alphabet_are_refused(meter_id: str) -> None:
    routed = route(f"meters/{meter_id}/readings", "meters")
    assert isinstance(routed, Rejection)
    assert routed.code == messages.BAD_METER_ID


def test_unknown_meter_is_dead_lettered_with_its_raw_bytes() -> None:
    msg = inbound("meters/M-9/readings", {"ts": NOW.isoformat(), "import_kwh": 1})
    outcome = process_message(msg, RULES, known_meter=False)
    (dead,) = outcome.dead_letters
    assert dead.reason_code == messages.UNKNOWN_METER
    assert dead.payload == msg.payload
    assert not outcome.readings


def test_single_reading_refused_by_validation_keeps_its_exact_bytes() -> None:
    body = b'{"ts": "2026-11-24T11:00:00+00:00", "import_kwh": -1}'
    outcome = process_message(inbound("meters/M-1/readings", body), RULES, known_meter=True)
    (dead,) = outcome.dead_letters
    assert dead.reason_code == "negative_register"
    assert dead.payload == body


def test_batch_envelope_naming_another_meter_is_refused_whole() -> None:
    body = {"meter_id": "M-2", "readings": [{"ts": NOW.isoformat(), "import_kwh": 1}]}
    outcome = process_message(inbound("meters/M-1/readings", body), RULES, known_meter=True)
    assert [d.reason_code for d in outcome.dead_letters] == ["meter_mismatch"]
    assert not outcome.readings


def test_a_clean_batch_gives_every_reading() -> None:
    items = [
        {"ts": (NOW - timedelta(minutes=15 * i)).isoformat(), "import_kwh": i} for i in range(5)
    ]
    outcome = process_message(inbound("meters/M-1/readings", {"readings": items}), RULES, True)
    # kept column by column, without an object per reading
    (block,) = outcome.blocks
    assert block.columns["import_kwh"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [r.import_kwh for r in block.readings()] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert not outcome.readings
    assert not outcome.dead_letters


def test_a_batch_with_one_bad_reading_keeps_the_others() -> None:
    items = [
        {"ts": (NOW - timedelta(minutes=15 * i)).isoformat(), "import_kwh": i} for i in range(4)
    ]
    items[2]["import_kwh"] = -1  # a negative register
    outcome = process_message(inbound("meters/M-1/readings", {"readings": items}), RULES, True)
    assert [r.import_kwh for r in outcome.readings] == [0.0, 1.0, 3.0]
    assert [d.reason_code for d in outcome.dead_letters] == ["negative_register"]
    assert not outcome.blocks


def test_event_gets_a_deterministic_id() -> None:
    body = {"ts": NOW.isoformat(), "type": "magnet"}
    first = process_message(inbound("meters/M-1/events", body), RULES, True).events[0]
    again = process_message(inbound("meters/M-1/events", body), RULES, True).events[0]
    assert first.id == again.id
    assert first.type == "magnet" and first.source == "meter"


@pytest.mark.parametrize(
    "body", [{"ts": 1764000000}, {"type": "tamper"}, {"ts": 1764000000, "type": ""}, [1, 2]]
)
def test_malformed_event_is_dead_lettered(body: object) -> None:
    outcome = process_message(inbound("meters/M-1/events", body), RULES, True)
    assert not outcome.events
    assert len(outcome.dead_letters) == 1


def test_status_carries_online_state_and_firmware() -> None:
    body = {"online": False, "fw": "2.0.1"}
    status = process_message(inbound("meters/M-1/status", body), RULES, True).status
    assert status is not None
    assert (status.online, status.firmware) == (False, "2.0.1")


def test_empty_retained_status_is_ignored_not_dead_lettered() -> None:
    outcome = process_message(inbound("meters/M-1/status", b""), RULES, True)
    assert outcome.status is None and not outcome.dead_letters


def test_status_with_non_boolean_online_is_dead_lettered() -> None:
    outcome = process_message(inbound("meters/M-1/status", {"online": "yes"}), RULES, True)
    assert [d.reason_code for d in outcome.dead_letters] == [messages.BAD_STATUS]


@pytest.mark.parametrize("prefix", ["a/b", "", "meters/#", "+"])
def test_topic_prefix_must_be_one_level(prefix: str) -> None:
    with pytest.raises(ValidationError):
        Settings(topic_prefix=prefix)
