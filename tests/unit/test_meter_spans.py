"""Which meter's intervals count for a consumer's period when the meter was replaced inside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tariff_examples import tariff

from meterhub.billing.core.determinants import compute_determinants
from meterhub.billing.core.meter_spans import (
    Installation,
    OverlappingMeters,
    intervals_in_spans,
    is_whole_period,
    spans_in_period,
)
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

FIRST = datetime(2026, 2, 1, tzinfo=UTC)
LAST = datetime(2026, 3, 1, tzinfo=UTC)
SWAP = datetime(2026, 2, 14, 10, 7, tzinfo=UTC)  # inside the 10:00 quarter hour
QUARTER = timedelta(minutes=15)


def interval(meter_id: str, start: datetime, kwh: float) -> Interval:
    return Interval(meter_id, start, 900, kwh, 0.0, Quality.ACTUAL)


def swap_history() -> list[Installation]:
    return [
        Installation("old", None, SWAP, final_reading_kwh=1234.5),
        Installation("new", SWAP, None),
    ]


def test_a_meter_without_history_serves_the_whole_period() -> None:
    spans = spans_in_period([], "m1", FIRST, LAST)
    assert [(s.meter_id, s.start, s.end) for s in spans] == [("m1", FIRST, LAST)]
    assert is_whole_period(spans, FIRST, LAST)


def test_a_swap_splits_the_period_at_the_swap_in_time_order() -> None:
    spans = spans_in_period(reversed(swap_history()), "new", FIRST, LAST)
    assert [(s.meter_id, s.start, s.end) for s in spans] == [
        ("old", FIRST, SWAP),
        ("new", SWAP, LAST),
    ]
    assert spans[0].installation.final_reading_kwh == 1234.5
    assert not is_whole_period(spans, FIRST, LAST)


def test_spans_outside_the_period_are_dropped() -> None:
    history = [Installation("older", None, FIRST - timedelta(days=3)), *swap_history()]
    assert [s.meter_id for s in spans_in_period(history, "new", FIRST, LAST)] == ["old", "new"]


def test_a_meter_installed_before_the_period_serves_all_of_it() -> None:
    spans = spans_in_period([Installation("new", SWAP, None)], "new", LAST, LAST + QUARTER)
    assert is_whole_period(spans, LAST, LAST + QUARTER)


def test_two_meters_at_once_are_refused() -> None:
    history = [Installation("a", None, None), Installation("b", SWAP, None)]
    with pytest.raises(OverlappingMeters, match="a and b"):
        spans_in_period(history, "b", FIRST, LAST)


def test_the_swap_quarter_hour_counts_both_meters_and_nothing_else() -> None:
    slot = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)
    old = [interval("old", slot - QUARTER, 0.2), interval("old", slot, 0.1)]
    old_after = [interval("old", slot + QUARTER, 5.0)]  # on the bench after removal
    new_before = [interval("new", slot - QUARTER, 5.0)]  # a test run before installation
    new = [interval("new", slot, 0.1), interval("new", slot + QUARTER, 0.2)]
    spans = spans_in_period(swap_history(), "new", FIRST, LAST)
    chosen = intervals_in_spans({"old": old + old_after, "new": new_before + new}, spans)
    assert chosen == [old[0], new[0], old[1], new[1]]


def test_maximum_demand_is_over_the_combined_intervals() -> None:
    slot = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)
    intervals = {
        "old": [interval("old", slot - QUARTER, 1.5), interval("old", slot + QUARTER, 9.0)],
        "new": [interval("new", slot + 2 * QUARTER, 1.0)],
    }
    spans = spans_in_period(swap_history(), "new", FIRST, LAST)
    chosen = intervals_in_spans(intervals, spans)
    det = compute_determinants(chosen, tariff("nea-domestic"), FIRST.date(), LAST.date())
    # 1.5 kWh in a quarter hour is 6 kW; the old meter's 9 kWh after its removal is not counted.
    assert det.max_demand_kw[15] == Decimal("6.000")
    assert det.import_kwh == Decimal("2.5")


@given(
    kwh=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40),
    cut=st.integers(0, 40),
    minute=st.integers(0, 14),
)
def test_splitting_one_meter_in_two_at_a_swap_loses_and_repeats_no_energy(
    kwh: list[float], cut: int, minute: int
) -> None:
    """What one meter would have recorded, recorded instead by an old meter up to a swap and a
    new one after it, each also recording outside its span: the same energy is chosen."""
    cut = min(cut, len(kwh))
    starts = [FIRST + k * QUARTER for k in range(len(kwh))]
    swap = FIRST + cut * QUARTER + timedelta(minutes=minute)
    # A swap inside a quarter hour: the old meter has that quarter's energy, the new one none.
    split = cut + 1 if minute else cut
    old = [interval("old", s, v) for s, v in zip(starts[:split], kwh[:split], strict=True)]
    new = [interval("new", s, 0.0) for s in starts[cut:split]]
    new += [interval("new", s, v) for s, v in zip(starts[split:], kwh[split:], strict=True)]
    old_after = [interval("old", s, 99.0) for s in starts[split:]]
    new_before = [interval("new", s, 99.0) for s in starts[:cut]]
    history = [Installation("old", None, swap), Installation("new", swap, None)]
    spans = spans_in_period(history, "new", FIRST, LAST)
    chosen = intervals_in_spans({"old": old + old_after, "new": new_before + new}, spans)
    assert sorted(chosen, key=lambda i: (i.start, i.meter_id)) == chosen
    assert sum(i.import_kwh for i in chosen) == pytest.approx(sum(kwh))
    assert {i.start for i in chosen} == set(starts)
