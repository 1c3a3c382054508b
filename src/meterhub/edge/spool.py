"""A bounded FIFO of outgoing MQTT messages in SQLite: nothing is sent that was not stored first.

Every message is appended here, published from here, and deleted only when the broker has
acknowledged it (PUBACK), so a crash or a power cut between reading and delivery loses nothing
that was committed. The spool is bounded by message count and/or payload bytes; when full, the
oldest messages are dropped (the newest readings are worth most to an operator) and the number
dropped is kept in the database, so it survives a restart and shows in the gateway's status.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    id: int
    topic: str
    payload: bytes
    retain: bool


class Spool:
    """SQLite-backed FIFO. Not thread-safe: one thread at a time (the gateway's event loop)."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_messages: int | None = None,
        max_bytes: int | None = None,
        synchronous: str = "FULL",
    ) -> None:
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # check_same_thread off: a spool may be made in one thread and then used in another
        # (the gateway's event loop), but never from two at once.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a reading the meter sent must survive a power cut of the gateway, not only a crash.
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        count, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages"
        ).fetchone()
        self._count: int = count
        self._bytes: int = size
        self.last_append_dropped = 0  # how many messages the latest ``append`` dropped

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def dropped(self) -> int:
        return self._counter("dropped")

    @property
    def dropped_bytes(self) -> int:
        return self._counter("dropped_bytes")

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def append(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Store a message (and drop the oldest while over a bound), in one transaction."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO messages (topic, payload, retain) VALUES (?, ?, ?)",
                (topic, payload, int(retain)),
            )
            message_id = cursor.lastrowid
            assert message_id is not None
            self._count += 1
            self._bytes += len(payload)
            self.last_append_dropped = self._enforce_bounds()
        return message_id

    def _over_bounds(self) -> bool:
        return (self.max_messages is not None and self._count > self.max_messages) or (
            self.max_bytes is not None and self._bytes > self.max_bytes
        )

    def _enforce_bounds(self) -> int:
        dropped = dropped_bytes = 0
        while self._count and self._over_bounds():
            # Oldest first, in batches sized to the excess by count (at least one row).
            excess = max(1, self._count - (self.max_messages or self._count))
            rows = self._db.execute(
                "SELECT id, length(payload) FROM messages ORDER BY id LIMIT ?", (excess,)
            ).fetchall()
            for message_id, size in rows:
                if not self._over_bounds():
                    break
                self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                self._count -= 1
                self._bytes -= size
                dropped += 1
                dropped_bytes += size
        if dropped:
            self._add_counter("dropped", dropped)
            self._add_counter("dropped_bytes", dropped_bytes)
        return dropped

    def _add_counter(self, name: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def peek(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``, oldest first."""
        rows = self._db.execute(
            "SELECT id, topic, payload, retain FROM messages WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [SpooledMessage(r[0], r[1], bytes(r[2]), bool(r[3])) for r in rows]

    def delete(self, message_ids: list[int]) -> int:
        """Delete acknowledged messages; ids already gone (dropped meanwhile) are ignored."""
        if not message_ids:
            return 0
        deleted = 0
        with self._transaction():
            for message_id in message_ids:
                row = self._db.execute(
                    "DELETE FROM messages WHERE id = ? RETURNING length(payload)", (message_id,)
                ).fetchone()
                if row is not None:
                    deleted += 1
                    self._count -= 1
                    self._bytes -= int(row[0])
        return deleted

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
