"""Events, dead letters and status updates: what besides readings the platform keeps of a meter.

One module for the types both ingest (which makes them from messages) and the store (which writes
them) use, and the one builder of platform events. Pure: no I/O.

Event ids are deterministic, so that an event written twice (a QoS 1 redelivery, a deriver run
again over the same readings) is stored once: a UUIDv5 in one namespace over
``meter_id|ts.isoformat()|type|key`` (the bytes, hex-encoded). For a meter's event the key is
the raw payload; for a platform event it is a short discriminator chosen by its writer
(docs/mqtt-contract.md lists them). Changing the scheme changes the id of every stored event:
a repeat after the change would be stored twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENT_NAMESPACE = uuid.UUID("6f1c5b52-8e1f-4df4-9a77-4d2f0a1f3c11")

METER = "meter"
PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class MeterEvent:
    meter_id: str
    id: str
    ts: datetime
    type: str
    source: str  # METER or PLATFORM
    payload: dict[str, Any]
    received_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    meter_id: str | None
    payload: bytes
    reason_code: str
    message: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    meter_id: str
    online: bool | None
    firmware: str | None
    payload: dict[str, Any]
    received_at: datetime


def event_id(meter_id: str, ts: datetime, type_: str, key: bytes) -> str:
    """The deterministic id of the event ``type_`` of ``meter_id`` at ``ts`` (module docstring)."""
    parts = (meter_id.encode(), ts.isoformat().encode(), type_.encode(), key)
    return str(uuid.uuid5(EVENT_NAMESPACE, b"|".join(parts).hex()))


def platform_event(
    meter_id: str,
    ts: datetime,
    type_: str,
    payload: dict[str, Any],
    *,
    received_at: datetime,
    key: bytes = b"",
) -> MeterEvent:
    """An event the platform writes about ``meter_id`` (not one the meter sent).

    ``key`` tells apart events of one meter, time and type that are not the same event (a gap's
    end, a conflicting reading's values); events that share all four are one event, stored once.
    ``received_at`` is when the platform wrote it.
    """
    return MeterEvent(
        meter_id=meter_id,
        id=event_id(meter_id, ts, type_, key),
        ts=ts,
        type=type_,
        source=PLATFORM,
        payload=payload,
        received_at=received_at,
    )
