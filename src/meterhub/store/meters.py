"""SQL for meters: the look-ups the ingest path needs (which meters exist, which went quiet), the
registry's rows (registration, credentials, replacement), and the meter installation history
(which meter served which consumer when).

Functions that take a ``Connection`` never commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Row, insert, or_, select, update

from meterhub.readings.events import platform_event
from meterhub.store import schema
from meterhub.store.events import insert_events
from meterhub.store.keys import ids_present


class MeterDirectory:
    """Cache of registered meter ids; a miss asks the database once, so a meter registered a
    second ago is known at once, and an unknown meter costs one query per batch."""

    def __init__(self, engine: Engine, refresh_seconds: float = 300.0) -> None:
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self._known: set[str] = set()
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def known(self, meter_ids: Iterable[str]) -> set[str]:
        wanted = set(meter_ids)
        with self._lock:
            if time.monotonic() - self._loaded_at > self.refresh_seconds:
                with self.engine.connect() as conn:
                    self._known = set(conn.execute(select(schema.meters.c.id)).scalars())
                self._loaded_at = time.monotonic()
            missing = wanted - self._known
            if missing:
                with self.engine.connect() as conn:
                    found = conn.execute(
                        select(schema.meters.c.id).where(schema.meters.c.id.in_(sorted(missing)))
                    ).scalars()
                    self._known.update(found)
            return wanted & self._known

    def remember(self, meter_ids: Iterable[str]) -> None:
        with self._lock:
            self._known.update(meter_ids)


def mark_stale_meters_offline(engine: Engine, after: timedelta) -> list[str]:
    """Meters silent for longer than ``after`` are offline, whatever their last status said."""
    now = datetime.now(UTC)
    meters = schema.meters
    with engine.begin() as conn:
        stale = (
            conn.execute(
                update(meters)
                .where(meters.c.online.is_(True), meters.c.last_seen_at < now - after)
                .values(online=False, online_changed_at=now)
                .returning(meters.c.id)
            )
            .scalars()
            .all()
        )
        payload = {"reason": "silent", "after_seconds": after.total_seconds()}
        insert_events(
            conn,
            [
                platform_event(m, now, "offline", payload, received_at=now, key=b"silent")
                for m in stale
            ],
        )
    return list(stale)


# ----------------------------------------------------------------------------- registry


class MeterRow(NamedTuple):
    """What registration decisions read of a meter."""

    id: str
    consumer_id: str | None
    transformer_id: str | None
    feeder_id: str | None
    role: str
    status: str
    sanctioned_load_kw: float | None
    phase: int


def load_meter(conn: Connection, meter_id: str) -> MeterRow | None:
    m = schema.meters
    query = select(*(m.c[name] for name in MeterRow._fields)).where(m.c.id == meter_id)
    row = conn.execute(query).first()
    return None if row is None else MeterRow(*row)


def any_meter(conn: Connection) -> bool:
    """Whether any meter is registered at all."""
    return conn.execute(select(schema.meters.c.id).limit(1)).first() is not None


def meter_exists(conn: Connection, meter_id: str) -> bool:
    m = schema.meters
    return conn.execute(select(m.c.id).where(m.c.id == meter_id)).first() is not None


def meter_status(conn: Connection, meter_id: str) -> str | None:
    m = schema.meters
    status = conn.execute(select(m.c.status).where(m.c.id == meter_id)).scalar_one_or_none()
    return None if status is None else str(status)


def registered_meters(conn: Connection, meter_ids: Iterable[str]) -> set[str]:
    return ids_present(conn, schema.meters.c.id, meter_ids)


def insert_meters(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows``: columns of ``meters``."""
    if rows:
        conn.execute(insert(schema.meters), list(rows))


def update_meter(conn: Connection, meter_id: str, values: Mapping[str, Any]) -> None:
    m = schema.meters
    conn.execute(update(m).where(m.c.id == meter_id).values(**values))


class MeterSummaryRow(NamedTuple):
    id: str
    consumer_id: str | None
    role: str
    status: str
    phase: int
    sanctioned_load_kw: float | None
    has_credential: bool
    created_at: datetime


def meter_summaries(conn: Connection) -> list[MeterSummaryRow]:
    """Every meter, by id."""
    m = schema.meters
    query = select(
        m.c.id,
        m.c.consumer_id,
        m.c.role,
        m.c.status,
        m.c.phase,
        m.c.sanctioned_load_kw,
        m.c.credential_hash.is_not(None).label("has_credential"),
        m.c.created_at,
    ).order_by(m.c.id)
    return [MeterSummaryRow(*row) for row in conn.execute(query)]


def credential_hashes(conn: Connection, *, except_status: Collection[str]) -> list[tuple[str, str]]:
    """(meter id, credential hash) of every meter with a credential and a status not in
    ``except_status``, by id."""
    m = schema.meters
    query = (
        select(m.c.id, m.c.credential_hash)
        .where(m.c.credential_hash.is_not(None))
        .where(m.c.status.not_in(list(except_status)))
        .order_by(m.c.id)
    )
    return [(row.id, row.credential_hash) for row in conn.execute(query)]


class ConsumerMeterRow(NamedTuple):
    id: str
    status: str
    sanctioned_load_kw: float | None
    phase: int


def meters_of_consumer(conn: Connection, consumer_id: str) -> list[ConsumerMeterRow]:
    """The consumer's meters (any status), by id."""
    m = schema.meters
    rows = conn.execute(
        select(m.c.id, m.c.status, m.c.sanctioned_load_kw, m.c.phase)
        .where(m.c.consumer_id == consumer_id)
        .order_by(m.c.id)
    )
    return [ConsumerMeterRow(*row) for row in rows]


# ----------------------------------------------------------------------------- installations


class InstallationRow(NamedTuple):
    """``meter_id`` served the consumer over [installed_at, removed_at); None at either end
    means open (before records began, still installed)."""

    meter_id: str
    installed_at: datetime | None
    removed_at: datetime | None
    initial_reading_kwh: float | None
    final_reading_kwh: float | None


def installations(
    conn: Connection, consumer_ids: Sequence[str], first: datetime, last: datetime
) -> dict[str, list[InstallationRow]]:
    """Each consumer's installation rows that have not ended before ``first``, oldest first.

    Rows that begin at or after ``last`` are kept: a meter installed after the period says
    the consumer was not supplied by it then (a move-in after the period is not billed for
    it), which a missing row would not."""
    t = schema.meter_installations
    rows = conn.execute(
        select(t)
        .where(t.c.consumer_id.in_(list(consumer_ids)))
        .where(or_(t.c.removed_at.is_(None), t.c.removed_at > first))
        .order_by(t.c.consumer_id, t.c.id)
    ).all()
    found: dict[str, list[InstallationRow]] = {}
    for row in rows:
        found.setdefault(row.consumer_id, []).append(
            InstallationRow(
                row.meter_id,
                row.installed_at,
                row.removed_at,
                row.initial_reading_kwh,
                row.final_reading_kwh,
            )
        )
    return found


def open_installation(conn: Connection, meter_id: str) -> Row[Any] | None:
    """The meter's installation row that has no removal yet, if any."""
    t = schema.meter_installations
    return conn.execute(
        select(t).where(t.c.meter_id == meter_id, t.c.removed_at.is_(None)).order_by(t.c.id)
    ).first()


def record_installation(
    conn: Connection,
    *,
    consumer_id: str,
    meter_id: str,
    at: datetime,
    now: datetime,
    initial_reading_kwh: float | None = None,
    note: str | None = None,
) -> None:
    """``meter_id`` supplies ``consumer_id`` from ``at`` (a new connection, a move-in, or the
    new meter of a swap)."""
    conn.execute(
        insert(schema.meter_installations).values(
            consumer_id=consumer_id,
            meter_id=meter_id,
            installed_at=at,
            initial_reading_kwh=initial_reading_kwh,
            note=note,
            created_at=now,
        )
    )


def record_installations(
    conn: Connection, installed: Sequence[tuple[str, str, datetime]], *, now: datetime
) -> None:
    """``record_installation`` for many (consumer, meter, installed at) at once: an import."""
    if installed:
        conn.execute(
            insert(schema.meter_installations),
            [
                {"consumer_id": c, "meter_id": m, "installed_at": at, "created_at": now}
                for c, m, at in installed
            ],
        )


def record_removal(
    conn: Connection,
    *,
    consumer_id: str,
    meter_id: str,
    at: datetime,
    now: datetime,
    final_reading_kwh: float | None = None,
    note: str | None = None,
) -> None:
    """``meter_id`` stops serving ``consumer_id`` at ``at``: its open installation is closed,
    or one is recorded as having served until then."""
    t = schema.meter_installations
    current = open_installation(conn, meter_id)
    if current is not None:
        conn.execute(
            update(t)
            .where(t.c.id == current.id)
            .values(removed_at=at, final_reading_kwh=final_reading_kwh)
        )
    else:
        conn.execute(
            insert(t).values(
                consumer_id=consumer_id,
                meter_id=meter_id,
                installed_at=None,
                removed_at=at,
                final_reading_kwh=final_reading_kwh,
                note=note,
                created_at=now,
            )
        )


def record_swap(
    conn: Connection,
    *,
    consumer_id: str,
    old_meter_id: str,
    new_meter_id: str,
    at: datetime,
    final_reading_kwh: float | None,
    initial_reading_kwh: float | None,
    note: str | None,
    now: datetime,
) -> None:
    """Close the old meter's installation at ``at`` (or record it as serving until then) and
    open the new meter's from ``at``."""
    record_removal(
        conn, consumer_id=consumer_id, meter_id=old_meter_id, at=at, now=now,
        final_reading_kwh=final_reading_kwh, note=note,
    )  # fmt: skip
    record_installation(
        conn, consumer_id=consumer_id, meter_id=new_meter_id, at=at, now=now,
        initial_reading_kwh=initial_reading_kwh, note=note,
    )  # fmt: skip
