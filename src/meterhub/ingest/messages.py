"""What one inbound MQTT message becomes: pure routing and decoding, no I/O.

The topic decides the meter and the kind of message; ``process_message`` turns the message into
readings, meter events, a status update and dead letters. Nothing is dropped: whatever cannot be
used becomes a ``DeadLetter`` carrying the raw bytes and a reason code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from meterhub.protocols import json_limits, native
from meterhub.readings.events import METER, DeadLetter, MeterEvent, StatusUpdate, event_id
from meterhub.readings.model import (
    METER_ID_PATTERN,
    Reading,
    ReadingBlock,
    Rejection,
    to_document,
)
from meterhub.readings.vee import ReadingLimits, check_reading, columns_within_limits

Kind = Literal["readings", "events", "status"]

BAD_TOPIC = "bad_topic"
BAD_METER_ID = "bad_meter_id"
UNKNOWN_METER = "unknown_meter"
BAD_EVENT = "bad_event"
BAD_STATUS = "bad_status"
# A message whose handling raised: a bug, not the meter's fault, but the message must not take
# the rest of the batch (or the worker) with it. Kept with its bytes for a replay once fixed.
INTERNAL_ERROR = "internal_error"

_MAX_EVENT_TYPE = 48


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    received_at: datetime


@dataclass(slots=True)
class Outcome:
    readings: list[Reading] = field(default_factory=list)
    blocks: list[ReadingBlock] = field(default_factory=list)
    events: list[MeterEvent] = field(default_factory=list)
    status: StatusUpdate | None = None
    dead_letters: list[DeadLetter] = field(default_factory=list)


def route(topic: str, prefix: str) -> tuple[str, Kind] | Rejection:
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != prefix or parts[2] not in ("readings", "events", "status"):
        return Rejection(BAD_TOPIC, f"topic {topic[:120]!r} is not {prefix}/{{id}}/<kind>")
    meter_id = parts[1]
    if not METER_ID_PATTERN.match(meter_id):
        return Rejection(BAD_METER_ID, "meter id must be 1-64 ASCII letters, digits, - or _")
    kind: Kind = parts[2]  # type: ignore[assignment]
    return meter_id, kind


def _dead(msg: Inbound, meter_id: str | None, raw: bytes, rejection: Rejection) -> DeadLetter:
    text = (
        rejection.message if rejection.field is None else f"{rejection.field}: {rejection.message}"
    )
    return DeadLetter(msg.topic, meter_id, raw, rejection.code, text, msg.received_at)


@dataclass(frozen=True, slots=True)
class IngestRules:
    topic_prefix: str
    limits: ReadingLimits
    max_payload_bytes: int
    accept_unknown_meters: bool


def process_message(msg: Inbound, rules: IngestRules, known_meter: bool) -> Outcome:
    return process_routed(msg, route(msg.topic, rules.topic_prefix), rules, known_meter)


def process_isolated(
    msg: Inbound, routed: tuple[str, Kind] | Rejection, rules: IngestRules, known_meter: bool
) -> Outcome:
    """``process_routed``, with any exception turned into a dead letter for this message only."""
    try:
        return process_routed(msg, routed, rules, known_meter)
    except Exception as exc:
        meter_id = None if isinstance(routed, Rejection) else routed[0]
        return internal_error(msg, meter_id, exc, rules.max_payload_bytes)


def internal_error(msg: Inbound, meter_id: str | None, exc: BaseException, limit: int) -> Outcome:
    # The store cannot keep U+0000 in text, and an exception may quote the payload.
    text = f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:500]
    rejection = Rejection(INTERNAL_ERROR, text)
    return Outcome(dead_letters=[_dead(msg, meter_id, msg.payload[:limit], rejection)])


def process_routed(
    msg: Inbound, routed: tuple[str, Kind] | Rejection, rules: IngestRules, known_meter: bool
) -> Outcome:
    outcome = Outcome()
    if isinstance(routed, Rejection):
        outcome.dead_letters.append(_dead(msg, None, msg.payload, routed))
        return outcome
    meter_id, kind = routed
    if not known_meter and not rules.accept_unknown_meters:
        rejection = Rejection(UNKNOWN_METER, f"meter {meter_id} is not registered")
        outcome.dead_letters.append(_dead(msg, meter_id, msg.payload, rejection))
        return outcome
    if kind == "readings":
        _readings(msg, meter_id, rules, outcome)
    elif kind == "events":
        _event(msg, meter_id, rules, outcome)
    else:
        _status(msg, meter_id, rules, outcome)
    return outcome


def _readings(msg: Inbound, meter_id: str, rules: IngestRules, outcome: Outcome) -> None:
    decoded = native.decode(
        meter_id, msg.payload, max_bytes=rules.max_payload_bytes, materialize=False
    )
    for item in decoded.rejections:
        outcome.dead_letters.append(_dead(msg, meter_id, item.raw, item.rejection))
    readings = decoded.readings
    block = decoded.block
    if block is not None:
        if columns_within_limits(
            block.stamps, block.columns, now=msg.received_at, limits=rules.limits
        ):
            outcome.blocks.append(block)
            return
        readings = block.readings()  # some reading fails: find which, one by one
    for reading in readings:
        problem = check_reading(reading, now=msg.received_at, limits=rules.limits)
        if problem is None:
            outcome.readings.append(reading)
        else:
            # A single reading keeps its exact bytes; an item of a batch is kept as its own
            # JSON document (the rest of the batch was stored).
            raw = (
                native.item_bytes(to_document(reading), msg.payload)
                if decoded.batch
                else msg.payload
            )
            outcome.dead_letters.append(_dead(msg, meter_id, raw, problem))


def _document(msg: Inbound, rules: IngestRules) -> tuple[Any, Rejection | None]:
    """An event's or status's JSON, refused if it breaks a limit of the store (it is stored
    whole, as the event payload or the meter's status)."""
    document, problem = native.parse_json(msg.payload, rules.max_payload_bytes)
    if problem is None:
        problem = native.forbidden_content(msg.payload, document)
    if (
        problem is None
        and json_limits.may_nest_deeper(msg.payload)
        and json_limits.exceeds_depth(document)
    ):
        problem = Rejection(
            native.NESTING_TOO_DEEP, f"more than {json_limits.MAX_NESTING} levels of nesting"
        )
    return document, problem


def _event(msg: Inbound, meter_id: str, rules: IngestRules, outcome: Outcome) -> None:
    document, problem = _document(msg, rules)
    if problem is None and not isinstance(document, dict):
        problem = Rejection(BAD_EVENT, "an event must be a JSON object")
    if problem is None:
        type_ = document.get("type")
        if not isinstance(type_, str) or not 0 < len(type_) <= _MAX_EVENT_TYPE:
            problem = Rejection(BAD_EVENT, "type must be a short string", "type")
    if problem is None:
        ts = native.parse_ts(document.get("ts"))
        if isinstance(ts, Rejection):
            problem = ts
    if problem is not None:
        outcome.dead_letters.append(_dead(msg, meter_id, msg.payload, problem))
        return
    assert isinstance(ts, datetime)
    outcome.events.append(
        MeterEvent(
            meter_id=meter_id,
            id=event_id(meter_id, ts, type_, msg.payload),
            ts=ts,
            type=type_,
            source=METER,
            payload=document,
            received_at=msg.received_at,
        )
    )


def _status(msg: Inbound, meter_id: str, rules: IngestRules, outcome: Outcome) -> None:
    if not msg.payload:
        return  # an empty retained message only clears the broker's retained status
    document, problem = _document(msg, rules)
    if problem is None and not isinstance(document, dict):
        problem = Rejection(BAD_STATUS, "a status must be a JSON object")
    online = document.get("online") if problem is None else None
    if problem is None and online is not None and not isinstance(online, bool):
        problem = Rejection(BAD_STATUS, "online must be true or false", "online")
    if problem is not None:
        outcome.dead_letters.append(_dead(msg, meter_id, msg.payload, problem))
        return
    firmware = document.get("fw")
    outcome.status = StatusUpdate(
        meter_id=meter_id,
        online=online,
        firmware=firmware if isinstance(firmware, str) else None,
        payload=document,
        received_at=msg.received_at,
    )
