"""Which messages a worker was handling, kept on disk, so that a message that kills it is known
when the broker hands it back after the restart.

Every message that reaches a worker is caught in Python (``messages.process_isolated``), but a
bug not yet known can still end the process: a crash in a C extension, memory exhausted, a
handler that never returns (the worker's watchdog then ends the process itself). The broker
redelivers everything unacknowledged, so without this the same message would end every
restart. The journal holds the digests of the unacknowledged messages while they are handled:

* after a restart, each message whose digest was in flight is a **suspect** and is handled
  alone, in a transaction of its own, with the journal saying so;
* a suspect that was in flight alone when the worker died again is the **culprit**: when it
  arrives it is kept as a ``quarantined`` dead letter, unhandled, and acknowledged.

So a poison message costs two restarts, not all of them. An innocent message that was merely in
flight at a crash (a kill -9, a power cut) is handled alone once, which is slower but no different
in effect. The file is rewritten, not synced, before each batch: a process crash leaves the page
cache to the kernel, and after a machine crash the worst case is one more restart.

Digests are 8 bytes of BLAKE2b over topic and payload: collisions among the few thousand
messages in flight are negligible (and would only route an innocent message to the slow path).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("meterhub.ingest")

_MAGIC = b"MHJ1"
_HEADER = struct.Struct("<4sBIII")  # magic, alone flag, in flight, suspects, culprits
DIGEST_BYTES = 8
# Redelivery after a reconnect is immediate; suspects not seen by then are forgotten.
SUSPECT_TTL_SECONDS = 600.0


def digest(topic: str, payload: bytes) -> bytes:
    h = hashlib.blake2b(payload, digest_size=DIGEST_BYTES, person=b"meterhub")
    h.update(topic.encode("utf-8", "surrogateescape"))
    return h.digest()


@dataclass(slots=True)
class JournalState:
    in_flight: list[bytes] = field(default_factory=list)
    alone: bool = False
    suspects: set[bytes] = field(default_factory=set)
    culprits: set[bytes] = field(default_factory=set)


def encode(state: JournalState) -> bytes:
    parts = [
        _HEADER.pack(
            _MAGIC,
            1 if state.alone else 0,
            len(state.in_flight),
            len(state.suspects),
            len(state.culprits),
        ),
        *state.in_flight,
        *sorted(state.suspects),
        *sorted(state.culprits),
    ]
    return b"".join(parts)


def decode(data: bytes) -> JournalState:
    """The state written by ``encode``; an empty state for anything unreadable."""
    if len(data) < _HEADER.size:
        return JournalState()
    magic, alone, flying, suspects, culprits = _HEADER.unpack_from(data)
    if magic != _MAGIC or len(data) != _HEADER.size + DIGEST_BYTES * (flying + suspects + culprits):
        return JournalState()
    digests = [
        data[offset : offset + DIGEST_BYTES]
        for offset in range(_HEADER.size, len(data), DIGEST_BYTES)
    ]
    return JournalState(
        in_flight=digests[:flying],
        alone=bool(alone),
        suspects=set(digests[flying : flying + suspects]),
        culprits=set(digests[flying + suspects :]),
    )


def recover(previous: JournalState) -> JournalState:
    """What the last run's journal means for this run: who is suspect, who is the culprit."""
    suspects = set(previous.suspects)
    culprits = set(previous.culprits)
    if previous.alone:
        culprits.update(previous.in_flight)
        suspects.difference_update(previous.in_flight)
    else:
        suspects.update(previous.in_flight)
    return JournalState(suspects=suspects, culprits=culprits)


class CrashJournal:
    """The journal file of one worker (one client id); ``None`` path: kept in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._state = JournalState()
        self._recovered_at = time.monotonic()

    def open(self) -> JournalState:
        """Read what the previous run left and start this run's journal."""
        previous = JournalState()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            size = os.fstat(self._fd).st_size
            previous = decode(os.pread(self._fd, size, 0))
        self._state = recover(previous)
        self._recovered_at = time.monotonic()
        if self._state.suspects or self._state.culprits:
            log.warning(
                "ingest stopped unexpectedly last time: %d messages will be handled one by one "
                "when the broker redelivers them, %d quarantined",
                len(self._state.suspects),
                len(self._state.culprits),
            )
        self._write()
        return self._state

    @property
    def suspects(self) -> set[bytes]:
        return self._state.suspects

    @property
    def culprits(self) -> set[bytes]:
        return self._state.culprits

    def working_on(self, digests: Iterable[bytes], *, alone: bool = False) -> None:
        self._expire()
        self._state.in_flight = list(digests)
        self._state.alone = alone
        self._write()

    def resolved(self, digest_: bytes) -> None:
        """A suspect handled without harm, or a culprit quarantined."""
        self._state.suspects.discard(digest_)
        self._state.culprits.discard(digest_)

    def idle(self) -> None:
        """Nothing in flight (a clean stop)."""
        self.working_on([])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _expire(self) -> None:
        state = self._state
        if (state.suspects or state.culprits) and (
            time.monotonic() - self._recovered_at > SUSPECT_TTL_SECONDS
        ):
            state.suspects.clear()
            state.culprits.clear()

    def _write(self) -> None:
        if self._fd is None:
            return
        data = encode(self._state)
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
