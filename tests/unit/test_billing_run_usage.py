"""The bill run's fast usage (``SlotTable.usage``, fed what the PostgreSQL query packs) equals the
pure ``usage_from_intervals`` for any 15- or 30-minute intervals on the slot grid: gaps, any
order, estimates, ties at the 7th decimal, negative reads, a DST change, a +05:45 zone, a
half-hour clock shift."""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.billing.core.determinants import KWH_QUANTUM, period_bounds_utc
from meterhub.billing.core.period_usage import SLOT_SECONDS, SlotTable, usage_from_intervals
from meterhub.billing.core.tariff import Tariff, load_tariff, parse_tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

TARIFFS = Path(__file__).resolve().parents[2] / "examples" / "tariffs"
PGE = load_tariff(TARIFFS / "pge-e-tou-c.yaml")
NEA = load_tariff(TARIFFS / "nea-domestic.yaml")
# Lord Howe Island moves its clocks by half an hour: on 6 April 2025 local 01:30-02:00 comes
# twice, so one local hour holds six slots and the windows are not regular pairs.
LORD_HOWE = parse_tariff(
    {
        "schema": "meterhub.tariff/v1",
        "id": "lhi",
        "name": "flat",
        "currency": "AUD",
        "timezone": "Australia/Lord_Howe",
        "source": {"utility": "t", "document": "t", "date": "2024-01-01"},
        "versions": [
            {"effective_from": "2020-01-01", "energy": [{"name": "e", "kind": "flat", "rate": "1"}]}
        ],
    }
)
# Los Angeles springs forward on 9 March 2025: that day has 92 slots.
PERIODS = [
    (PGE, date(2025, 3, 8), date(2025, 3, 11)),
    (NEA, date(2025, 6, 1), date(2025, 6, 3)),
    (LORD_HOWE, date(2025, 4, 5), date(2025, 4, 8)),
]

TIES = [0.1234565, 0.1234575, 0.0000005, 0.0000015, 2.5e-06, 1e-07, 0.3, 1234.5678905]
readings = st.one_of(
    st.sampled_from(TIES),
    st.floats(-0.5, 3.0, allow_nan=False),
    st.integers(0, 4000).map(lambda n: n / 1000),
)


def micro(kwh: float) -> int:
    """What the query computes for a float: the rule of ``compute_determinants``, in 1e-6 kWh."""
    return int(Decimal(repr(kwh)).quantize(KWH_QUANTUM).scaleb(6))


def packed(
    tariff: Tariff, start: date, end: date, intervals: list[Interval]
) -> tuple[bytes, bytes, int, list[int]]:
    first, _ = period_bounds_utc(start, end, tariff.zone)
    offsets = [int((i.start - first).total_seconds()) for i in intervals]
    return (
        struct.pack(f">{len(offsets)}i", *offsets),
        struct.pack(f">{len(intervals)}q", *(micro(i.import_kwh) for i in intervals)),
        sum(micro(i.export_kwh) for i in intervals),
        [o for o, i in zip(offsets, intervals, strict=True) if i.quality is not Quality.ACTUAL],
    )


@st.composite
def meters(draw: st.DrawFn) -> tuple[Tariff, date, date, int, list[Interval]]:
    tariff, start, end = draw(st.sampled_from(PERIODS))
    seconds = draw(st.sampled_from([900, 900, 1800]))
    first, last = period_bounds_utc(start, end, tariff.zone)
    starts = []
    at = first
    while at < last:
        starts.append(at)
        at += timedelta(seconds=seconds)
    # Everything, or any part of it (gaps), in any order.
    whole = draw(st.booleans())
    chosen = starts if whole else draw(st.lists(st.sampled_from(starts), min_size=1, unique=True))
    chosen = draw(st.permutations(chosen))
    intervals = [
        Interval(
            "m",
            at,
            seconds,
            draw(readings),
            draw(st.sampled_from([0.0, 0.0, 0.0001235, 0.25])),
            draw(st.sampled_from([Quality.ACTUAL] * 9 + [Quality.ESTIMATED])),
        )
        for at in chosen
    ]
    return tariff, start, end, seconds, intervals


@settings(max_examples=80, deadline=None)
@given(meter=meters())
def test_fast_usage_equals_the_pure_usage(
    meter: tuple[Tariff, date, date, int, list[Interval]],
) -> None:
    tariff, start, end, seconds, intervals = meter
    starts, energy, export, estimated = packed(tariff, start, end, intervals)
    fast = SlotTable(tariff, start, end).usage(seconds, starts, energy, export, estimated)
    in_time_order = sorted(intervals, key=lambda i: i.start)
    assert fast == usage_from_intervals(in_time_order, tariff, start, end)


def test_a_meter_with_every_slot_read_back_in_another_order() -> None:
    """The query's rows come in index order per partition, not always in time order."""
    tariff, start, end = PERIODS[0]
    first, last = period_bounds_utc(start, end, tariff.zone)
    count = int((last - first) / timedelta(seconds=SLOT_SECONDS))
    intervals = [
        Interval(
            "m", first + n * timedelta(seconds=SLOT_SECONDS), 900, n / 1000, 0.0, Quality.ACTUAL
        )
        for n in range(count)
    ]
    backwards = intervals[::-1]
    starts, energy, export, estimated = packed(tariff, start, end, backwards)
    fast = SlotTable(tariff, start, end).usage(900, starts, energy, export, estimated)
    assert fast == usage_from_intervals(intervals, tariff, start, end)
    assert fast is not None and fast.determinants.max_demand_kw[60] == Decimal(
        "1.126"
    )  # 0.280 + ... + 0.283


def test_a_start_off_the_slot_grid_is_left_to_the_pure_way() -> None:
    tariff, start, end = PERIODS[0]
    first, _ = period_bounds_utc(start, end, tariff.zone)
    table = SlotTable(tariff, start, end)
    for offset in (SLOT_SECONDS + 300, SLOT_SECONDS - 1):
        one = Interval("m", first + timedelta(seconds=offset), 900, 0.5, 0.0, Quality.ACTUAL)
        starts, energy, export, estimated = packed(tariff, start, end, [one])
        assert table.usage(900, starts, energy, export, estimated) is None


def test_a_value_the_query_could_not_make_an_integer_is_left_to_the_pure_way() -> None:
    tariff, start, end = PERIODS[0]
    table = SlotTable(tariff, start, end)
    # Two starts, one energy: the query's NULL (a NaN, or beyond 2**52 micro-kWh) was skipped.
    starts = struct.pack(">2i", 0, SLOT_SECONDS)
    assert table.usage(900, starts, struct.pack(">q", 250_000), 0, []) is None


def test_slots_cover_the_period_in_local_days() -> None:
    tariff, start, end = PERIODS[0]
    table = SlotTable(tariff, start, end)
    assert table.size == 3 * 96 - 4  # the spring-forward day is 23 hours
    assert table.days[0] == start and table.days[-1] == end - timedelta(days=1)
    assert table.first == datetime(2025, 3, 8, 8, tzinfo=UTC)


def test_half_hour_clock_shifts_are_summed_window_by_window() -> None:
    assert SlotTable(*PERIODS[0]).paired and SlotTable(*PERIODS[1]).paired
    assert not SlotTable(*PERIODS[2]).paired
