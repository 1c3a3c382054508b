"""From received messages to write batches, one message at a time and divisible again.

Each message is handled on its own (``Handled``), so that a message whose handling raises costs a
dead letter for itself only, and so that a batch the database refuses can be cut back into its
messages, and a message into its readings, until the rows that cannot be stored are found.
Pure: no broker, no database.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from meterhub.ingest.messages import (
    Inbound,
    IngestRules,
    Kind,
    Outcome,
    process_isolated,
    route,
)
from meterhub.protocols import native
from meterhub.readings.events import DeadLetter
from meterhub.readings.model import Rejection, to_document
from meterhub.store.failures import is_transient
from meterhub.store.ingest_writes import WriteBatch, WriteResult

log = logging.getLogger("meterhub.ingest")

# The database refused these rows for a reason tied to them (a value a column cannot take).
STORE_REFUSED = "store_refused"
# The message was being handled when the worker died twice, the second time alone: it is kept
# unhandled rather than allowed to stop ingestion again (docs/mqtt-contract.md).
QUARANTINED = "quarantined"


@dataclass(slots=True)
class Handled:
    """One message and what it became."""

    message: Inbound
    meter_id: str | None  # from the topic; None for a topic that names no meter
    known: bool  # the meter is registered
    outcome: Outcome

    def __len__(self) -> int:
        """Rows it would write: readings, events, a status, dead letters."""
        outcome = self.outcome
        return (
            len(outcome.readings)
            + sum(map(len, outcome.blocks))
            + len(outcome.events)
            + (outcome.status is not None)
            + len(outcome.dead_letters)
        )


Routed = tuple[str, Kind] | Rejection


def route_all(messages: Sequence[Inbound], prefix: str) -> list[Routed]:
    return [route(m.topic, prefix) for m in messages]


def meters_of(routes: Iterable[Routed]) -> set[str]:
    """The meters the routed topics name."""
    return {r[0] for r in routes if not isinstance(r, Rejection)}


def handle(
    messages: Sequence[Inbound],
    rules: IngestRules,
    known_of: Callable[[set[str]], set[str]],
) -> list[Handled]:
    """Route, decode and validate each message; ``known_of`` answers which of the meters named
    by the topics are registered (one lookup for the whole list)."""
    routes = route_all(messages, rules.topic_prefix)
    return handle_routed(messages, routes, rules, known_of(meters_of(routes)))


def handle_routed(
    messages: Sequence[Inbound], routes: Sequence[Routed], rules: IngestRules, known: set[str]
) -> list[Handled]:
    """Decode and validate routed messages; ``known``: the registered meters among them. Pure."""
    handled = []
    for message, routed in zip(messages, routes, strict=True):
        if isinstance(routed, Rejection):
            meter_id = None
            is_known = False
        else:
            meter_id = routed[0]
            is_known = meter_id in known
        outcome = process_isolated(message, routed, rules, is_known)
        handled.append(Handled(message, meter_id, is_known, outcome))
    return handled


def merge(handled: Iterable[Handled], received_at: datetime, worker_id: str) -> WriteBatch:
    """One write batch (one transaction) for these messages."""
    batch = WriteBatch(received_at=received_at, worker_id=worker_id)
    for item in handled:
        outcome = item.outcome
        batch.readings.extend(outcome.readings)
        if outcome.blocks:
            batch.blocks.extend(outcome.blocks)
        if outcome.events:
            batch.events.extend(outcome.events)
        if outcome.dead_letters:
            batch.dead_letters.extend(outcome.dead_letters)
        if outcome.status is not None:
            batch.statuses.append(outcome.status)
        meter_id = item.meter_id
        if meter_id is not None and not item.known and not outcome.dead_letters:
            batch.new_meters.add(meter_id)
        if meter_id is not None and item.known and outcome.events:
            batch.seen_meters.add(meter_id)
    return batch


def pieces(item: Handled) -> list[Handled]:
    """One message cut into parts that are stored alone: each reading, each event, the status,
    the dead letters. A part the database refuses then costs only itself."""
    outcome = item.outcome
    parts: list[Outcome] = [Outcome(readings=[reading]) for reading in outcome.readings]
    for block in outcome.blocks:
        parts.extend(Outcome(readings=[reading]) for reading in block.readings())
    parts.extend(Outcome(events=[event]) for event in outcome.events)
    if outcome.status is not None:
        parts.append(Outcome(status=outcome.status))
    if outcome.dead_letters:
        parts.append(Outcome(dead_letters=list(outcome.dead_letters)))
    return [Handled(item.message, item.meter_id, item.known, part) for part in parts]


def refused(item: Handled, error: BaseException) -> Handled:
    """A part the database refused, as a dead letter that keeps what was refused."""
    message = item.message
    outcome = item.outcome
    if len(outcome.readings) == 1 and not outcome.events and outcome.status is None:
        raw = native.item_bytes(to_document(outcome.readings[0]), message.payload)
    else:
        raw = message.payload
    text = f"the database refused it: {type(error).__name__}: {error}"
    dead = DeadLetter(
        topic=message.topic,
        meter_id=item.meter_id,
        payload=raw,
        reason_code=STORE_REFUSED,
        message=_storable(text)[:500],
        received_at=message.received_at,
    )
    return Handled(message, item.meter_id, item.known, Outcome(dead_letters=[dead]))


def quarantined(message: Inbound, prefix: str, limit: int) -> Handled:
    routed = route(message.topic, prefix)
    meter_id = None if isinstance(routed, Rejection) else routed[0]
    dead = DeadLetter(
        topic=message.topic,
        meter_id=meter_id,
        payload=message.payload[:limit],
        reason_code=QUARANTINED,
        message=(
            "the ingest worker stopped twice while handling this message, the second time with "
            "it alone: kept unhandled"
        ),
        received_at=message.received_at,
    )
    return Handled(message, meter_id, False, Outcome(dead_letters=[dead]))


def _storable(text: str) -> str:
    """Error texts may quote the refused value; PostgreSQL text cannot hold U+0000."""
    return text.replace("\x00", "\\x00")


def add_result(total: WriteResult, part: WriteResult) -> None:
    total.inserted += part.inserted
    total.duplicates += part.duplicates
    total.conflicts += part.conflicts
    total.events += part.events
    total.dead_letters += part.dead_letters


def cut_down(part: list[Handled], error: BaseException) -> list[list[Handled]]:
    """The database refused ``part`` for its rows: its halves, else one message's pieces, else
    the refused piece as a dead letter. Raises ``error`` when even that dead letter was refused:
    there is nothing smaller to try."""
    if len(part) > 1:
        middle = len(part) // 2
        return [part[:middle], part[middle:]]
    parts = pieces(part[0])
    if len(parts) > 1:
        return [[piece] for piece in parts]
    item = part[0]
    if any(d.reason_code == STORE_REFUSED for d in item.outcome.dead_letters):
        raise error
    log.warning(
        "the database refused part of a message on %s (%s: %s); kept as a dead letter",
        item.message.topic[:120],
        type(error).__name__,
        str(error)[:200],
    )
    return [[refused(item, error)]]


def write_all(
    queue: deque[list[Handled]],
    write: Callable[[list[Handled]], WriteResult],
    total: WriteResult,
) -> None:
    """Write every queued part, each in its own transaction, cutting down what the database
    refuses for its rows. A transient error (the database is away) leaves the parts not yet
    written in ``queue`` and propagates: call again once the database is back."""
    while queue:
        part = queue[0]
        try:
            result = write(part)
        except Exception as exc:
            if is_transient(exc):
                raise
            queue.popleft()
            try:
                queue.extendleft(reversed(cut_down(part, exc)))
            except Exception:
                queue.appendleft(part)
                raise
            continue
        queue.popleft()
        add_result(total, result)
