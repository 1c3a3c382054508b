"""When the spool's bound starts dropping readings, say so once, remind while it goes on (pure).

A full spool drops its oldest messages on every append, so a log line per drop would flood the
log exactly when the operator most needs it readable. An episode starts with the first append
that drops, is recalled at most every ``reminder_s`` seconds while appends keep dropping, and ends
with the first append that drops nothing (the uplink made room).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    STARTED = "started"
    CONTINUING = "continuing"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class DropNotice:
    phase: Phase
    dropped: int  # messages dropped in this episode so far
    seconds: float  # since the episode started


@dataclass(slots=True)
class DropWatch:
    reminder_s: float = 60.0
    _started: float | None = None
    _told: float = 0.0
    _dropped: int = 0

    def observe(self, dropped: int, now: float) -> DropNotice | None:
        """After an append that dropped ``dropped`` messages (0 or more), at ``now`` seconds
        (any monotonic clock): what to tell the operator, if anything."""
        if dropped <= 0:
            if self._started is None:
                return None
            notice = DropNotice(Phase.STOPPED, self._dropped, now - self._started)
            self._started, self._dropped = None, 0
            return notice
        self._dropped += dropped
        if self._started is None:
            self._started = self._told = now
            return DropNotice(Phase.STARTED, self._dropped, 0.0)
        if now - self._told >= self.reminder_s:
            self._told = now
            return DropNotice(Phase.CONTINUING, self._dropped, now - self._started)
        return None
