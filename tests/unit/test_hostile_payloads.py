"""Messages that once stopped ingestion for every meter become dead letters with a reason.

Each payload below is from the outside check of the landed code (issue 13): before, it ended the
worker (an exception escaped) or made the store retry its batch forever.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from meterhub.ingest import messages
from meterhub.ingest.messages import Inbound, IngestRules, process_message
from meterhub.protocols import json_limits, native
from meterhub.readings.vee import ReadingLimits

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RULES = IngestRules("meters", ReadingLimits(), 256 * 1024, accept_unknown_meters=False)
GOOD = {"ts": "2026-11-24T11:45:00+00:00", "import_kwh": 12.5}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def outcome_of(kind: str, payload: bytes) -> messages.Outcome:
    return process_message(Inbound(f"meters/M-1/{kind}", payload, NOW), RULES, known_meter=True)


def only_reason(outcome: messages.Outcome) -> str:
    assert not outcome.readings and not outcome.blocks and not outcome.events
    assert outcome.status is None
    (dead,) = outcome.dead_letters
    return dead.reason_code


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "1999-12-31T23:59:59Z"]
)
def test_a_timestamp_outside_2000_to_2099_is_a_bad_timestamp_in_a_reading(ts: str) -> None:
    payload = orjson.dumps({"ts": ts, "import_kwh": 1.0})
    assert only_reason(outcome_of("readings", payload)) == native.BAD_TIMESTAMP


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_an_extreme_timestamp_in_a_batch_refuses_that_item_and_keeps_the_rest(ts: str) -> None:
    payload = orjson.dumps({"readings": [GOOD, {"ts": ts, "import_kwh": 2.0}]})
    outcome = outcome_of("readings", payload)
    assert [r.import_kwh for r in outcome.readings] == [12.5]
    (dead,) = outcome.dead_letters
    assert dead.reason_code == native.BAD_TIMESTAMP


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_an_extreme_timestamp_in_an_event_is_a_bad_timestamp(ts: str) -> None:
    payload = orjson.dumps({"ts": ts, "type": "tamper"})
    assert only_reason(outcome_of("events", payload)) == native.BAD_TIMESTAMP


def test_a_batch_of_arrays_nested_300_deep_is_refused_item_by_item() -> None:
    payload = b'{"readings": [' + nested(300) + b"]}"
    outcome = outcome_of("readings", payload)
    (dead,) = outcome.dead_letters
    assert dead.reason_code == native.WRONG_SHAPE
    # The item cannot be re-encoded (orjson stops at 254 levels): the message is kept whole.
    assert dead.payload == payload


def test_a_batch_item_with_a_field_nested_300_deep_is_refused_and_kept() -> None:
    bad = b'{"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 1, "x": ' + nested(300) + b"}"
    payload = b'{"readings": [' + orjson.dumps(GOOD) + b", " + bad + b"]}"
    outcome = outcome_of("readings", payload)
    assert [r.import_kwh for r in outcome.readings] == [12.5]
    (dead,) = outcome.dead_letters
    assert dead.reason_code == native.NESTING_TOO_DEEP


def test_an_unknown_field_nested_deeper_than_the_limit_is_refused() -> None:
    depth = json_limits.MAX_NESTING
    payload = b'{"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 1, "x": ' + nested(depth) + b"}"
    assert only_reason(outcome_of("readings", payload)) == native.NESTING_TOO_DEEP


def test_an_unknown_field_nested_within_the_limit_is_kept() -> None:
    payload = b'{"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 1, "x": ' + nested(5) + b"}"
    (reading,) = outcome_of("readings", payload).readings
    assert "x" in reading.extra


@pytest.mark.parametrize("seq", [2**63, 2**64 - 1, -(2**63) - 1])
def test_a_sequence_number_beyond_64_bits_is_out_of_range(seq: int) -> None:
    payload = b'{"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 1, "seq": %d}' % seq
    assert only_reason(outcome_of("readings", payload)) in (
        native.VALUE_OUT_OF_RANGE,
        native.WRONG_TYPE,  # beyond 2**64 orjson reads a float
    )


def test_a_clean_batch_with_one_oversized_sequence_number_refuses_only_that_item() -> None:
    items = [dict(GOOD, seq=1), {"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 2, "seq": 2**63}]
    outcome = outcome_of("readings", orjson.dumps({"readings": items}))
    assert [r.seq for r in outcome.readings] == [1]
    (dead,) = outcome.dead_letters
    assert dead.reason_code == native.VALUE_OUT_OF_RANGE


@pytest.mark.parametrize("kind", ["events", "status"])
def test_an_event_or_status_holding_a_1000_deep_array_is_refused(kind: str) -> None:
    payload = b'{"ts": "2026-11-24T11:30:00+00:00", "type": "x", "deep": ' + nested(1000) + b"}"
    assert only_reason(outcome_of(kind, payload)) == native.NESTING_TOO_DEEP


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("status", b'{"online": true, "fw": "1.2\\u0000"}'),
        ("events", b'{"ts": "2026-11-24T11:30:00+00:00", "type": "tam\\u0000per"}'),
        ("readings", b'{"ts": "2026-11-24T11:30:00+00:00", "import_kwh": 1, "n\\u0000": 1}'),
    ],
)
def test_a_nul_character_anywhere_is_a_forbidden_character(kind: str, payload: bytes) -> None:
    assert only_reason(outcome_of(kind, payload)) == native.FORBIDDEN_CHARACTER


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    payload = b'{"online": true, "fw": "C:\\\\u0000"}'
    outcome = outcome_of("status", payload)
    assert outcome.status is not None
    assert outcome.status.firmware == "C:\\u0000"


def test_a_handler_that_raises_costs_a_dead_letter_for_its_message_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(messages, "_status", broken)
    payload = b'{"online": true}'
    message = Inbound("meters/M-1/status", payload, NOW)
    routed = messages.route(message.topic, "meters")
    outcome = messages.process_isolated(message, routed, RULES, known_meter=True)
    (dead,) = outcome.dead_letters
    assert dead.reason_code == messages.INTERNAL_ERROR
    assert dead.message.startswith("RecursionError")
    assert dead.payload == payload
