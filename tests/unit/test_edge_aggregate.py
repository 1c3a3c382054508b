"""Interval summaries: the arithmetic, the alignment, and what a summary reading carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.edge.aggregate import (
    ForwardAll,
    IntervalSummary,
    interval_bounds,
    parse_interval,
)
from meterhub.edge.gateway import reading_payload
from meterhub.protocols.native import decode
from meterhub.readings.model import Reading

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def reading(minute: float, kwh: float, power: float | None) -> Reading:
    return Reading(
        "M1", T0 + timedelta(minutes=minute), import_kwh=kwh, export_kwh=0.0, power_w=power,
        voltage_v=230.0,
    )  # fmt: skip


def test_forward_all_passes_every_reading() -> None:
    forward = ForwardAll()
    r = reading(0, 1.0, 100.0)
    assert forward.add(r) == [r]
    assert forward.flush() == []


def test_summary_of_one_quarter() -> None:
    summary = IntervalSummary(QUARTER)
    assert summary.add(reading(0, 100.0, 200.0)) == []
    assert summary.add(reading(5, 100.1, 400.0)) == []
    assert summary.add(reading(10, 100.25, 900.0)) == []
    [first] = summary.add(reading(15, 100.3, 50.0))  # the next quarter closes this one
    assert first.ts == T0 + QUARTER  # interval end
    assert first.import_kwh == 100.25  # register of the last reading in the interval
    assert first.export_kwh == 0.0
    assert first.power_w is None
    assert first.extra == {
        "samples": 3,
        "interval_s": 900,
        "power_w_min": 200.0,
        "power_w_max": 900.0,
        "power_w_mean": 500.0,  # (200 + 400 + 900) / 3
    }
    [second] = summary.add(reading(31, 100.5, 60.0))
    # delta: register at this end minus the previous summary's end: 100.3 - 100.25 = 0.05
    assert second.extra["import_kwh_delta"] == 0.05
    assert second.extra["export_kwh_delta"] == 0.0
    assert second.extra["samples"] == 1
    [partial] = summary.flush()
    assert partial.ts == T0 + timedelta(minutes=31)
    assert partial.extra["partial"] is True
    assert partial.extra["import_kwh_delta"] == 0.2  # 100.5 - 100.3
    assert summary.flush() == []


def test_readings_without_power_have_no_power_stats() -> None:
    summary = IntervalSummary(QUARTER)
    summary.add(reading(1, 5.0, None))
    [out] = summary.flush()
    assert "power_w_mean" not in out.extra
    assert out.extra["samples"] == 1


def test_due_closes_a_quiet_meter_interval_once() -> None:
    summary = IntervalSummary(QUARTER)
    summary.add(reading(3, 1.0, 10.0))
    assert summary.due(T0 + timedelta(minutes=14)) == []
    [out] = summary.due(T0 + QUARTER)
    assert out.ts == T0 + QUARTER
    assert summary.due(T0 + timedelta(hours=1)) == []


def test_intervals_align_to_local_wall_clock() -> None:
    kathmandu = ZoneInfo("Asia/Kathmandu")  # +05:45
    ts = datetime(2026, 11, 24, 4, 20, tzinfo=UTC)  # 10:05 local
    start, end = interval_bounds(ts, timedelta(hours=1), kathmandu)
    assert start.astimezone(kathmandu).hour == 10 and start.astimezone(kathmandu).minute == 0
    assert end - start == timedelta(hours=1)
    start, end = interval_bounds(ts, QUARTER, kathmandu)
    assert start.astimezone(kathmandu).minute == 0
    assert end.astimezone(kathmandu).minute == 15


def test_summary_payload_is_a_contract_reading_with_extras_kept() -> None:
    summary = IntervalSummary(QUARTER)
    summary.add(reading(1, 7.5, 120.0))
    [out] = summary.flush()
    payload = reading_payload(out)
    assert b"meter_id" not in payload
    decoded = decode("M1", payload)
    assert not decoded.rejections
    [back] = decoded.readings
    assert back.ts == out.ts
    assert back.import_kwh == 7.5
    assert back.extra["power_w_mean"] == 120.0
    assert orjson.loads(payload)["samples"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("none", None), ("15m", QUARTER), ("1h", timedelta(hours=1)), ("900", QUARTER)],
)
def test_parse_interval(text: str, expected: timedelta | None) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["7m", "abc", "-5m", "25h"])
def test_parse_interval_refuses_periods_that_do_not_tile_a_day(text: str) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)


# -- no two summaries of a meter share a ts -------------------------------------------------------


def test_partial_summary_after_due_closed_the_interval_it_starts_gets_its_own_ts() -> None:
    summary = IntervalSummary(QUARTER)
    summary.add(reading(3, 1.0, 10.0))
    [closed] = summary.due(T0 + QUARTER + timedelta(seconds=30))  # the meter went quiet
    assert summary.add(reading(15, 1.2, 30.0)) == []  # then a reading at the end exactly
    [partial] = summary.flush()
    assert closed.ts == T0 + QUARTER
    assert partial.ts == T0 + QUARTER + timedelta(seconds=1)
    assert partial.import_kwh == 1.2


def test_an_interval_opened_again_by_a_late_reading_gets_a_later_ts() -> None:
    # The meter's clock runs 2 minutes behind the gateway's: due closes the quarter by the wall
    # clock, then the meter's last readings of that quarter arrive.
    summary = IntervalSummary(QUARTER)
    summary.add(reading(5, 1.0, 10.0))
    [first] = summary.due(T0 + QUARTER)
    summary.add(reading(13, 1.1, 20.0))
    [second] = summary.add(reading(16, 1.2, 30.0))
    assert first.ts == T0 + QUARTER
    assert second.ts == T0 + QUARTER + timedelta(seconds=1)
    assert second.import_kwh == 1.1  # the newer register at the later ts


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-7200, 7200)),  # seconds around a moving clock
        st.tuples(st.just("due"), st.integers(-3600, 3600)),
        st.tuples(st.just("flush"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(
    operations=OPERATIONS,
    period=st.sampled_from([60, 300, 900, 3600]),
    zone=st.sampled_from(["UTC", "Europe/Amsterdam", "Asia/Kathmandu"]),
)
def test_no_two_summaries_share_a_ts_whatever_the_timing(
    operations: list[tuple[str, int]], period: int, zone: str
) -> None:
    summary = IntervalSummary(timedelta(seconds=period), ZoneInfo(zone))
    emitted: list[Reading] = []
    clock = T0
    kwh = 0.0
    for operation, seconds in operations:
        if operation == "add":
            # Mostly forward, sometimes at an interval end exactly, sometimes a clock step back.
            clock = clock + timedelta(seconds=seconds // 4) if seconds % 3 else clock
            kwh += 0.001
            emitted += summary.add(Reading("M1", clock, import_kwh=kwh, power_w=float(seconds)))
        elif operation == "due":
            emitted += summary.due(clock + timedelta(seconds=seconds))
        else:
            emitted += summary.flush()
    emitted += summary.flush()
    stamps = [out.ts for out in emitted]
    assert len(set(stamps)) == len(stamps)
    assert stamps == sorted(stamps)
