"""Usage in the utility's time zone, read back from stored intervals (SQLite and PostgreSQL).

Every test stores a flat load of 1 kWh per 15-minute interval, so a bucket's kWh equals its
number of intervals and a calendar day is 24 h x 4 = 96 kWh, unless the day is not 24 hours long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert

from meterhub.store import queries, schema

pytestmark = pytest.mark.integration

KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45 all year, no DST
LONDON = ZoneInfo("Europe/London")  # GMT / BST
QUARTER = timedelta(minutes=15)


def store_flat_load(
    engine: Engine,
    meter_id: str,
    first: datetime,
    count: int,
    *,
    kwh: float = 1.0,
    quality: str = "actual",
) -> None:
    """``count`` consecutive 15-minute intervals from ``first`` (UTC), ``kwh`` each."""
    computed = datetime(2027, 1, 1, tzinfo=UTC)
    rows = [
        {
            "meter_id": meter_id,
            "start": first + QUARTER * n,
            "seconds": 900,
            "import_kwh": kwh,
            "export_kwh": 0.0,
            "quality": quality,
            "computed_at": computed,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(schema.intervals), rows)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_kathmandu_days_start_at_1815_utc_and_hold_96_kwh(any_engine: Engine) -> None:
    # Local 2026-11-02 00:00 +05:45 is 2026-11-01 18:15 UTC; two local days = 2 x 96 intervals.
    store_flat_load(any_engine, "M-1", utc(2026, 11, 1, 18, 15), 2 * 96)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn,
            "M-1",
            utc(2026, 11, 1),
            utc(2026, 11, 4),
            period="day",
            zone=KATHMANDU,
        )
    assert [b.start_local.astimezone(UTC) for b in buckets] == [
        utc(2026, 11, 1, 18, 15),
        utc(2026, 11, 2, 18, 15),
    ]
    assert [b.start_local.isoformat() for b in buckets] == [
        "2026-11-02T00:00:00+05:45",
        "2026-11-03T00:00:00+05:45",
    ]
    assert buckets[0].end_local == buckets[1].start_local
    assert [b.import_kwh for b in buckets] == pytest.approx([96.0, 96.0])  # 24 h x 4 x 1 kWh
    assert [b.intervals for b in buckets] == [96, 96]
    assert [b.export_kwh for b in buckets] == [0.0, 0.0]


def test_an_interval_belongs_to_the_local_day_of_its_start(any_engine: Engine) -> None:
    # 18:00 UTC is 23:45 local on the 1st; 18:15 UTC is 00:00 local on the 2nd.
    store_flat_load(any_engine, "M-1", utc(2026, 11, 1, 18, 0), 2)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 11, 1), utc(2026, 11, 3), period="day", zone=KATHMANDU
        )
    assert [(b.start_local.date().isoformat(), b.intervals) for b in buckets] == [
        ("2026-11-01", 1),
        ("2026-11-02", 1),
    ]


def test_london_spring_forward_day_has_92_intervals(any_engine: Engine) -> None:
    # 2026-03-29 in London: GMT midnight = 00:00 UTC, clocks go 01:00 -> 02:00, next midnight
    # (BST) = 23:00 UTC. 23 h x 4 = 92 intervals. Store 00:00 UTC on the 28th .. 00:00 on the 31st.
    store_flat_load(any_engine, "M-1", utc(2026, 3, 28), 3 * 96)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 3, 28), utc(2026, 3, 31), period="day", zone=LONDON
        )
    by_day = {b.start_local.date().isoformat(): b for b in buckets}
    day = by_day["2026-03-29"]
    assert day.start_local.astimezone(UTC) == utc(2026, 3, 29, 0, 0)
    assert day.end_local.astimezone(UTC) == utc(2026, 3, 29, 23, 0)
    assert day.intervals == 92  # 23 h x 4
    assert day.import_kwh == pytest.approx(92.0)
    assert by_day["2026-03-28"].intervals == 96  # a plain GMT day


def test_london_fall_back_day_has_100_intervals(any_engine: Engine) -> None:
    # 2026-10-25 in London: BST midnight = 23:00 UTC on the 24th, clocks go 02:00 -> 01:00, next
    # midnight (GMT) = 00:00 UTC on the 26th. 25 h x 4 = 100 intervals.
    store_flat_load(any_engine, "M-1", utc(2026, 10, 24), 3 * 96)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 10, 24), utc(2026, 10, 27), period="day", zone=LONDON
        )
    by_day = {b.start_local.date().isoformat(): b for b in buckets}
    day = by_day["2026-10-25"]
    assert day.start_local.astimezone(UTC) == utc(2026, 10, 24, 23, 0)
    assert day.end_local.astimezone(UTC) == utc(2026, 10, 26, 0, 0)
    assert day.intervals == 100  # 25 h x 4
    assert day.import_kwh == pytest.approx(100.0)


def test_kathmandu_months_start_at_local_midnight_on_the_first(any_engine: Engine) -> None:
    # Local 2026-01-31 00:00 = 2026-01-30 18:15 UTC; two local days: Jan 31 and Feb 1.
    store_flat_load(any_engine, "M-1", utc(2026, 1, 30, 18, 15), 2 * 96)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 1, 1), utc(2026, 3, 1), period="month", zone=KATHMANDU
        )
    assert [b.start_local.isoformat() for b in buckets] == [
        "2026-01-01T00:00:00+05:45",
        "2026-02-01T00:00:00+05:45",
    ]
    # February begins locally at 2026-01-31 18:15 UTC, so 18:15..23:45 UTC on Jan 31 is February.
    assert buckets[1].start_local.astimezone(UTC) == utc(2026, 1, 31, 18, 15)
    assert buckets[0].end_local == buckets[1].start_local
    assert buckets[1].end_local.isoformat() == "2026-03-01T00:00:00+05:45"
    assert [b.intervals for b in buckets] == [96, 96]  # one local day in each month
    assert [b.import_kwh for b in buckets] == pytest.approx([96.0, 96.0])


def test_kathmandu_hours_start_at_quarter_past_utc(any_engine: Engine) -> None:
    # 3 hours from 04:15 UTC (= 10:00 local): 3 x 4 intervals.
    store_flat_load(any_engine, "M-1", utc(2026, 11, 2, 4, 15), 12)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 11, 2), utc(2026, 11, 3), period="hour", zone=KATHMANDU
        )
    assert [b.start_local.isoformat() for b in buckets] == [
        "2026-11-02T10:00:00+05:45",
        "2026-11-02T11:00:00+05:45",
        "2026-11-02T12:00:00+05:45",
    ]
    assert [b.start_local.astimezone(UTC).minute for b in buckets] == [15, 15, 15]
    assert [b.import_kwh for b in buckets] == pytest.approx([4.0, 4.0, 4.0])  # 4 x 1 kWh


def test_london_repeated_autumn_hour_is_two_hourly_buckets(any_engine: Engine) -> None:
    # 2026-10-25 local day = 23:00 UTC on the 24th .. 00:00 UTC on the 26th: 25 hourly buckets,
    # 01:00 BST (00:00 UTC) and 01:00 GMT (01:00 UTC) are distinct, 4 kWh each.
    store_flat_load(any_engine, "M-1", utc(2026, 10, 24, 23), 100)
    with any_engine.connect() as conn:
        buckets = queries.usage(
            conn, "M-1", utc(2026, 10, 24), utc(2026, 10, 27), period="hour", zone=LONDON
        )
    assert len(buckets) == 25
    assert all(b.intervals == 4 for b in buckets)
    one_oclock = [b for b in buckets if b.start_local.hour == 1]
    assert [b.start_local.isoformat() for b in one_oclock] == [
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:00:00+00:00",
    ]


def test_estimated_intervals_are_counted_per_bucket(any_engine: Engine) -> None:
    # One Kathmandu day: 90 actual, 4 estimated, 2 suspect intervals = 96 in all.
    day = utc(2026, 11, 1, 18, 15)
    store_flat_load(any_engine, "M-1", day, 90)
    store_flat_load(any_engine, "M-1", day + QUARTER * 90, 4, quality="estimated")
    store_flat_load(any_engine, "M-1", day + QUARTER * 94, 2, quality="suspect")
    with any_engine.connect() as conn:
        (bucket,) = queries.usage(
            conn, "M-1", day, day + timedelta(days=1), period="day", zone=KATHMANDU
        )
    assert bucket.intervals == 96
    assert bucket.estimated_intervals == 6  # 4 estimated + 2 suspect: not plain measurements
    assert bucket.import_kwh == pytest.approx(96.0)  # estimated energy still counts


def test_usage_is_for_the_one_meter_and_the_range_asked(any_engine: Engine) -> None:
    day = utc(2026, 11, 1, 18, 15)
    store_flat_load(any_engine, "M-1", day, 96)
    store_flat_load(any_engine, "M-2", day, 96, kwh=5.0)
    with any_engine.connect() as conn:
        # [day + 6 h, day + 12 h): 6 h x 4 = 24 intervals of M-1, none of M-2's 5 kWh ones.
        (bucket,) = queries.usage(
            conn,
            "M-1",
            day + timedelta(hours=6),
            day + timedelta(hours=12),
            period="day",
            zone=KATHMANDU,
        )
        nothing = queries.usage(
            conn, "M-3", day, day + timedelta(days=1), period="day", zone=KATHMANDU
        )
    assert bucket.intervals == 24
    assert bucket.import_kwh == pytest.approx(24.0)
    assert nothing == []


def test_usage_in_range_pro_rates_an_interval_cut_by_the_range(any_engine: Engine) -> None:
    # Intervals 00:00, 00:15, ..., 00:45 UTC, 1 kWh each. Range [00:05, 01:00):
    # 00:00 interval overlaps 10 of 15 min -> 2/3 kWh, plus three whole intervals -> 3 + 2/3.
    store_flat_load(any_engine, "M-1", utc(2026, 11, 2), 4)
    with any_engine.connect() as conn:
        import_kwh, export_kwh = queries.usage_in_range(
            conn, "M-1", utc(2026, 11, 2, 0, 5), utc(2026, 11, 2, 1, 0)
        )
    assert import_kwh == pytest.approx(3 + 2 / 3)
    assert export_kwh == 0.0


def test_usage_in_range_pro_rates_both_ends(any_engine: Engine) -> None:
    # Range [00:10, 00:20): last 5 min of the 00:00 interval (1/3) + first 5 of 00:15 (1/3).
    store_flat_load(any_engine, "M-1", utc(2026, 11, 2), 4)
    with any_engine.connect() as conn:
        import_kwh, _ = queries.usage_in_range(
            conn, "M-1", utc(2026, 11, 2, 0, 10), utc(2026, 11, 2, 0, 20)
        )
    assert import_kwh == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "engine_fixture",
    [
        pytest.param(
            "sqlite_engine",
        ),
        "pg_engine",
    ],
)
def test_usage_accepts_bounds_in_the_local_zone(
    request: pytest.FixtureRequest, engine_fixture: str
) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)
    # Two local days from local 2026-11-02 00:00 (= 2026-11-01 18:15 UTC). Ask for the first local
    # day with bounds written in Kathmandu time: exactly 96 intervals, 96 kWh.
    store_flat_load(engine, "M-1", utc(2026, 11, 1, 18, 15), 2 * 96)
    with engine.connect() as conn:
        buckets = queries.usage(
            conn,
            "M-1",
            datetime(2026, 11, 2, tzinfo=KATHMANDU),
            datetime(2026, 11, 3, tzinfo=KATHMANDU),
            period="day",
            zone=KATHMANDU,
        )
    assert [(b.start_local.date().isoformat(), b.intervals) for b in buckets] == [
        ("2026-11-02", 96)
    ]
