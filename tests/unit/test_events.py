"""Event ids and the platform event builder (readings/events.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meterhub.readings.events import PLATFORM, event_id, platform_event

T0 = datetime(2025, 3, 1, 12, 15, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)


def test_event_ids_are_those_already_stored() -> None:
    # Computed with the scheme as it was before it moved here: stored events keep their ids, so
    # that a redelivery after an upgrade is still recognised.
    assert event_id("M-1", T0, "online", b"") == "45d09b3e-8987-5551-a31f-d25a66e1dfa4"
    assert (
        event_id("M-1", T0, "long_gap", b"2025-03-01T14:00:00+00:00")
        == "11e5e5e6-1195-560b-80cd-a86f5c3eac8b"
    )
    tamper = b'{"ts":"2025-03-01T12:15:00Z","type":"tamper"}'
    assert event_id("M-1", T0, "tamper", tamper) == "a01ef7d7-fa0e-571c-9b6f-a499c7b80b45"


def test_a_platform_event_carries_its_id_source_and_write_time() -> None:
    event = platform_event("M-1", T0, "offline", {"reason": "silent"}, received_at=LATER, key=b"x")
    assert event.id == event_id("M-1", T0, "offline", b"x")
    assert event.source == PLATFORM
    assert (event.ts, event.received_at, event.payload) == (T0, LATER, {"reason": "silent"})


def test_the_payload_does_not_change_a_platform_event_id() -> None:
    # A second write of the same finding, with payload details computed again, is one event.
    first = platform_event("M-1", T0, "spike", {"quality": "suspect"}, received_at=T0)
    again = platform_event("M-1", T0, "spike", {"quality": "estimated"}, received_at=LATER)
    assert first.id == again.id


@given(
    st.sampled_from(["M-1", "M-2"]),
    st.sampled_from([T0, LATER]),
    st.sampled_from(["online", "offline"]),
    st.sampled_from([b"", b"silent"]),
    st.sampled_from(["M-1", "M-2"]),
    st.sampled_from([T0, LATER]),
    st.sampled_from(["online", "offline"]),
    st.sampled_from([b"", b"silent"]),
)
def test_two_events_share_an_id_only_when_meter_time_type_and_key_all_agree(
    m1: str, t1: datetime, k1: str, b1: bytes, m2: str, t2: datetime, k2: str, b2: bytes
) -> None:
    same = (m1, t1, k1, b1) == (m2, t2, k2, b2)
    assert (event_id(m1, t1, k1, b1) == event_id(m2, t2, k2, b2)) is same
