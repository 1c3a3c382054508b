"""What a PUBACK's reason code means to a meter-side sender, and when to send again (pure).

MQTT 5 brokers answer every QoS 1 PUBLISH with a reason code. Below 0x80 is success, except
0x10 "no matching subscribers": the broker took the message and dropped it, because nobody was
subscribed at that instant (after a broker restart the platform's ingest worker may not have
subscribed again yet). For a meter that is a message not delivered, like every code from 0x80.

- 0x10, 0x80 unspecified, 0x83 implementation specific, 0x91 packet id in use, 0x97 quota
  exceeded: the broker may take the same message later. Keep it, send it again after a backoff
  that doubles from 1 s to 30 s.
- 0x87 not authorised: the credential may not publish there (an ACL or dynamic-security role not
  yet in place, a wrong topic prefix). Only an operator fixes that, so the message is kept and
  sent again with a backoff that doubles up to 5 minutes: a misconfigured meter asks the broker
  at most 12 times an hour and logs an error each time instead of spinning in a hot loop, and
  its readings are delivered once the ACL is fixed (the spool's bound limits what it keeps).
- 0x90 topic name invalid, 0x99 payload format invalid: this message will never be taken, so it
  is given up (counted as rejected, logged); sending it again would fail the same way.

A retained message answered 0x10 was delivered all the same: the broker keeps it as the topic's
retained message and hands it to whoever subscribes later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NO_MATCHING_SUBSCRIBERS = 0x10
NOT_AUTHORIZED = 0x87
NEVER_TAKEN = frozenset({0x90, 0x99})  # topic name invalid, payload format invalid


class Outcome(StrEnum):
    DELIVERED = "delivered"
    SEND_AGAIN = "send_again"
    REJECTED = "rejected"


def outcome(reason_code: int, *, retained: bool = False) -> Outcome:
    if reason_code == NO_MATCHING_SUBSCRIBERS:
        return Outcome.DELIVERED if retained else Outcome.SEND_AGAIN
    if reason_code < 0x80:
        return Outcome.DELIVERED
    if reason_code in NEVER_TAKEN:
        return Outcome.REJECTED
    return Outcome.SEND_AGAIN


@dataclass(slots=True)
class Backoff:
    """Delay before the next round of sending again: doubles per round, capped by the reason;
    ``reset`` after a PUBACK that delivered."""

    initial_s: float = 1.0
    max_s: float = 30.0
    not_authorized_max_s: float = 300.0
    _next_s: float = 0.0

    def next_delay(self, reason_code: int) -> float:
        cap = self.not_authorized_max_s if reason_code == NOT_AUTHORIZED else self.max_s
        delay = min(cap, max(self.initial_s, self._next_s))
        self._next_s = min(cap, delay * 2)
        return delay

    def reset(self) -> None:
        self._next_s = 0.0
