"""Meter look-ups the ingest path needs: which meters exist, which went quiet."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update

from meterhub.ingest.messages import event_id
from meterhub.store import schema


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
        if stale:
            conn.execute(
                schema.events.insert(),
                [
                    {
                        "meter_id": m,
                        "id": event_id(m, now, "offline", b"silent"),
                        "ts": now,
                        "type": "offline",
                        "source": "platform",
                        "payload": {"reason": "silent", "after_seconds": after.total_seconds()},
                        "received_at": now,
                    }
                    for m in stale
                ],
            )
    return list(stale)
