"""PUBACK reason codes: what a meter-side sender does with its message, and when it tries again."""

from __future__ import annotations

import pytest

from meterhub.mqtt.puback import Backoff, Outcome, outcome


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x00, Outcome.DELIVERED),
        (0x10, Outcome.SEND_AGAIN),  # no matching subscribers: the broker dropped it
        (0x80, Outcome.SEND_AGAIN),
        (0x83, Outcome.SEND_AGAIN),
        (0x87, Outcome.SEND_AGAIN),  # not authorised: kept until the ACL is fixed
        (0x91, Outcome.SEND_AGAIN),
        (0x97, Outcome.SEND_AGAIN),  # quota exceeded
        (0x90, Outcome.REJECTED),  # topic name invalid: this message will never be taken
        (0x99, Outcome.REJECTED),  # payload format invalid
    ],
)
def test_what_each_reason_code_means(code: int, expected: Outcome) -> None:
    assert outcome(code) is expected


def test_a_retained_message_without_subscribers_is_kept_by_the_broker() -> None:
    assert outcome(0x10, retained=True) is Outcome.DELIVERED
    assert outcome(0x87, retained=True) is Outcome.SEND_AGAIN


def test_backoff_doubles_to_30_s_and_starts_over_after_a_delivery() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(0x10) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay(0x97) == 1


def test_not_authorised_backs_off_to_5_minutes_never_a_hot_loop() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(0x87) for _ in range(12)]
    assert delays[:9] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert delays[9:] == [300, 300, 300]
    assert sum(delays) > 20 * 60  # 12 tries take more than 20 minutes
