"""Bill runs on SQLite and PostgreSQL: idempotent, resumable, gap-free numbers, errors not zeros.

The utility is NEA (Asia/Kathmandu, +05:45) with its cycle day on the 5th: period 2026-02 is
local 2026-02-05 .. 2026-03-04, 28 days. Every meter reads 0.25 kWh per quarter hour, so a full
period is 28 * 96 * 0.25 = 672 kWh. NEA 15 A (schedule in force from 2021-11-17), telescopic:
  20*4.00 + 10*6.50 + 20*8.00 + 50*9.50 + 50*9.50 + 100*9.50 + 150*11.00 + 272*11.00
  = 80 + 65 + 160 + 475 + 475 + 950 + 1650 + 2992 = 6847.00
plus the 15 A minimum charge of the >400 kWh band, 175.00 a month: total 7022.00.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from billing_support import (
    EXAMPLES,
    NOW,
    add_consumer,
    add_intervals,
    add_tariff,
)
from sqlalchemy import Engine, func, insert, select, text

from meterhub.billing import service as billing
from meterhub.billing.core.period_usage import usage_from_intervals
from meterhub.billing.core.tariff import load_tariff
from meterhub.billing.jobs.run_usage import usage_by_meter
from meterhub.billing.jobs.runs import PeriodNotOver, run_bills
from meterhub.config import Settings
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality
from meterhub.store import bills as bill_store
from meterhub.store import schema
from meterhub.store.bill_usage import micro_kwh_sql
from meterhub.store.queries import load_intervals
from meterhub.store.schema_billing import bill_lines, bills

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=5)
TODAY = date(2026, 3, 5)  # the cycle day: period 2026-02 has just ended
FIRST = datetime(2026, 2, 1, tzinfo=KTM).astimezone(UTC)
LAST = datetime(2026, 3, 8, tzinfo=KTM).astimezone(UTC)


def fleet(engine: Engine, count: int) -> list[str]:
    tariff_id = add_tariff(engine, "nea-domestic")
    consumers = []
    for index in range(count):
        consumer_id = f"c{index:03d}"
        meter_id = add_consumer(engine, consumer_id, tariff_id=tariff_id, amperes=15)
        add_intervals(engine, meter_id, FIRST, LAST)
        consumers.append(consumer_id)
    return consumers


def numbers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row.number for row in conn.execute(select(bills.c.number).order_by(bills.c.id))]


def store_intervals(engine: Engine, intervals: list[Interval]) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(schema.intervals),
            [
                {
                    "meter_id": r.meter_id,
                    "start": r.start,
                    "seconds": r.seconds,
                    "import_kwh": r.import_kwh,
                    "export_kwh": r.export_kwh,
                    "quality": r.quality.value,
                    "computed_at": NOW,
                }
                for r in intervals
            ],
        )


def test_cycle_day_period_in_kathmandu_is_billed_by_hand_figures(any_engine: Engine) -> None:
    fleet(any_engine, 1)
    result = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY)
    assert (result.start, result.end) == (date(2026, 2, 5), date(2026, 3, 5))
    assert result.issued == ["MH-2026-000001"] and not result.errors
    with any_engine.connect() as conn:
        stored = billing.load_bill(conn, "MH-2026-000001")
    assert stored is not None
    assert stored.bill["import_kwh"] == Decimal("672")  # 28 * 96 * 0.25
    assert stored.bill["total"] == Decimal("7022.00")  # see the module docstring
    assert sum(line["amount"] for line in stored.lines) == stored.bill["total"]
    assert stored.bill["due_date"] == TODAY + timedelta(days=15)  # NEA payment terms
    document = stored.bill["document"]
    assert document["period"] == {"from": "2026-02-05", "to": "2026-03-04"}
    assert len(document["daily_kwh"]) == 28 and document["daily_kwh"][0] == ["2026-02-05", "24.000"]
    # Last month is only partly stored (from 2026-02-01 local): still shown; last year: none.
    assert document["comparison"]["last_month"]["kwh"] == "96.000"  # 4 days * 24 kWh
    assert document["comparison"]["last_year"] is None


def test_rerun_issues_no_second_bill_and_keeps_numbers(any_engine: Engine) -> None:
    fleet(any_engine, 5)
    first = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2)
    assert first.issued == [f"MH-2026-{n:06d}" for n in range(1, 6)]
    again = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2)
    assert again.issued == [] and again.skipped == 5 and again.consumers == 5
    assert numbers(any_engine) == first.issued
    with any_engine.connect() as conn:
        status = billing.run_status(conn, "2026-02")
    assert status is not None
    assert (status["status"], status["issued"], status["skipped"]) == ("finished", 5, 5)


def test_crash_after_first_chunk_resumes_without_gaps(
    any_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet(any_engine, 5)
    real_insert = bill_store.insert_bills
    calls = {"n": 0}

    def crash_on_second_chunk(conn, numbered):
        calls["n"] += 1
        ids = real_insert(conn, numbered)
        if calls["n"] == 2:
            raise RuntimeError("power cut")  # after the insert: the chunk must roll back whole
        return ids

    monkeypatch.setattr(bill_store, "insert_bills", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="power cut"):
        run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2)
    assert numbers(any_engine) == ["MH-2026-000001", "MH-2026-000002"]
    with any_engine.connect() as conn:
        status = billing.run_status(conn, "2026-02")
    assert status is not None and status["status"] == "failed"

    monkeypatch.setattr(bill_store, "insert_bills", real_insert)
    resumed = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2)
    assert resumed.skipped == 2
    assert resumed.issued == ["MH-2026-000003", "MH-2026-000004", "MH-2026-000005"]
    assert numbers(any_engine) == [f"MH-2026-{n:06d}" for n in range(1, 6)]
    with any_engine.connect() as conn:
        owners = conn.execute(select(bills.c.consumer_id).order_by(bills.c.number)).scalars()
        assert list(owners) == ["c000", "c001", "c002", "c003", "c004"]


def test_missing_tariff_or_price_is_reported_never_a_zero_bill(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    for consumer_id, kwargs in (
        ("ok", {"tariff_id": tariff_id}),
        ("no-tariff", {"category": "Irrigation"}),
        ("no-amperes", {"tariff_id": tariff_id, "amperes": None}),
        ("no-reads", {"tariff_id": tariff_id}),
    ):
        meter_id = add_consumer(any_engine, consumer_id, **kwargs)
        if consumer_id != "no-reads":
            add_intervals(any_engine, meter_id, FIRST, LAST)
    result = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY)
    assert len(result.issued) == 1
    codes = {error.consumer_id: error.code for error in result.errors}
    assert codes == {"no-tariff": "no_tariff", "no-amperes": "cannot_price", "no-reads": "no_reads"}
    with any_engine.connect() as conn:
        assert conn.execute(select(bills.c.consumer_id)).scalars().all() == ["ok"]
        assert conn.execute(select(func.min(bills.c.total))).scalar_one() > 0
        status = billing.run_status(conn, "2026-02")
    assert status is not None and status["failed"] == 3
    assert {e["code"] for e in status["errors"]} == {"no_tariff", "cannot_price", "no_reads"}


def test_estimated_reads_are_counted_and_dated(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter_id = add_consumer(any_engine, "c1", tariff_id=tariff_id)
    day = datetime(2026, 2, 10, tzinfo=KTM)
    flagged = [day.astimezone(UTC) + timedelta(minutes=15 * k) for k in range(8)]
    add_intervals(any_engine, meter_id, FIRST, LAST, estimated=flagged)
    (number,) = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY).issued
    with any_engine.connect() as conn:
        stored = billing.load_bill(conn, number)
    assert stored is not None
    assert stored.bill["estimated_intervals"] == 8
    assert stored.bill["estimated_dates"] == ["2026-02-10"]
    assert stored.bill["intervals"] == 28 * 96


def test_issued_bill_is_immutable_corrections_are_adjustments(any_engine: Engine) -> None:
    fleet(any_engine, 1)
    (number,) = run_bills(any_engine, "2026-02", settings=SETTINGS, today=TODAY).issued
    with any_engine.connect() as conn:
        before = billing.load_bill(conn, number)
        lines_before = conn.execute(select(bill_lines).order_by(bill_lines.c.line_no)).all()
    assert before is not None
    with any_engine.begin() as conn:
        billing.add_adjustment(
            conn, number, "credit_note", Decimal("-97.00"), "meter tested fast by 1.5%"
        )
        billing.add_adjustment(conn, number, "adjustment", Decimal("12.50"), "reconnection")
    with pytest.raises(ValueError, match="reason"), any_engine.begin() as conn:
        billing.add_adjustment(conn, number, "adjustment", Decimal("1.00"), " ")
    with pytest.raises(ValueError, match="negative"), any_engine.begin() as conn:
        billing.add_adjustment(conn, number, "credit_note", Decimal("5.00"), "why")
    with any_engine.connect() as conn:
        after = billing.load_bill(conn, number)
        lines_after = conn.execute(select(bill_lines).order_by(bill_lines.c.line_no)).all()
    assert after is not None
    assert after.bill == before.bill and lines_after == lines_before
    assert [a["reason"] for a in after.adjustments] == ["meter tested fast by 1.5%", "reconnection"]
    assert after.balance == Decimal("7022.00") - Decimal("97.00") + Decimal("12.50")


def test_a_period_not_yet_over_is_refused(sqlite_engine: Engine) -> None:
    with pytest.raises(PeriodNotOver):
        run_bills(sqlite_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 4))


def test_postgresql_aggregates_equal_the_pure_determinants(pg_engine: Engine) -> None:
    """The fast path must price exactly as ``compute_determinants``: awkward floats (exact
    half-way ties at the 7th decimal, tiny values), a DST change (2025-03-09 in Los Angeles),
    hourly intervals, and 5-minute intervals that only the pure path can place."""
    tariff = load_tariff(EXAMPLES / "pge-e-tou-c.yaml")
    zone = tariff.zone
    start, end = date(2025, 3, 1), date(2025, 4, 1)
    first = datetime(2025, 2, 28, tzinfo=zone).astimezone(UTC)
    last = datetime(2025, 4, 2, tzinfo=zone).astimezone(UTC)
    rng = random.Random(7)
    ties = [0.1234565, 0.1234575, 0.0000005, 0.0000015, 1e-07, 2.5e-06, 0.3]
    for meter_id, seconds in (("m15", 900), ("m60", 3600), ("m5", 300)):
        add_consumer(pg_engine, meter_id.removeprefix("m"))
        rows = []
        at = first
        while at < last:
            kwh = rng.choice(ties) if rng.random() < 0.2 else rng.uniform(0, 1.5)
            quality = Quality.ESTIMATED if rng.random() < 0.01 else Quality.ACTUAL
            rows.append(Interval(f"m-{meter_id[1:]}", at, seconds, kwh, kwh / 7, quality))
            at += timedelta(seconds=seconds)
        store_intervals(pg_engine, rows)
    meter_ids = ["m-15", "m-60", "m-5"]
    with pg_engine.connect() as conn:
        fast = usage_by_meter(conn, tariff, meter_ids, start, end)
        for meter_id in meter_ids:
            intervals = load_intervals(conn, meter_id, first, last)
            pure = usage_from_intervals(intervals, tariff, start, end)
            assert fast[meter_id] == pure, meter_id


def test_postgresql_micro_kwh_is_the_decimal_rounding_of_the_shortest_repr(
    pg_engine: Engine,
) -> None:
    """The query's float-to-integer rule, on values made to be hard for it: exact ties at the
    7th decimal and the floats either side of them, tiny and subnormal values, negatives,
    values in the billions. Wrong on any one of them would misprice a bill by a micro-kWh."""
    rng = random.Random(11)
    ties = [(2 * rng.randrange(0, 10**9) + 1) * 5e-7 for _ in range(3000)]
    ties += [(2 * rng.randrange(0, 10**4) + 1) / 2e6 for _ in range(1000)]
    values = [0.0, -0.0, 5e-324, 1e-7, 5e-7, -5e-7, 0.1234565, 4.4e9, -3.3e9, 1234.5678905]
    for tie in ties:
        values += [tie, -tie, math.nextafter(tie, 0), math.nextafter(tie, math.inf)]
    values += [rng.uniform(-2, 2) for _ in range(4000)]
    values += [rng.uniform(0, 1e6) for _ in range(1000)]
    with pg_engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT v, {micro_kwh_sql('v')} FROM unnest(CAST(:v AS float8[])) AS t(v)"),
            {"v": values},
        ).all()
        unusable = conn.execute(
            text(f"SELECT {micro_kwh_sql('v')} FROM unnest(CAST(:v AS float8[])) AS t(v)"),
            {"v": [math.nan, math.inf, -math.inf, 5e9]},
        ).scalars()
        assert list(unusable) == [None, None, None, None]
    assert len(rows) == len(values)
    for value, micro in rows:
        assert micro == int(Decimal(repr(value)).quantize(Decimal("0.000001")).scaleb(6)), value


def test_postgresql_usage_of_gaps_long_intervals_and_stray_starts_equals_the_pure_usage(
    pg_engine: Engine,
) -> None:
    """Each way through ``usage_by_meter``: a meter with every slot, one with gaps (a missing
    day, single missing quarter hours), one with half-hour intervals, one whose intervals start
    a second late (off the slot grid), one with an export too large to sum as integers."""
    tariff = load_tariff(EXAMPLES / "pge-e-tou-c.yaml")
    start, end = date(2025, 11, 1), date(2025, 12, 1)  # DST ends 2 November in Los Angeles
    first = datetime(2025, 11, 1, tzinfo=tariff.zone).astimezone(UTC)
    last = datetime(2025, 12, 1, tzinfo=tariff.zone).astimezone(UTC)
    rng = random.Random(3)
    missing_day = (first + timedelta(days=9), first + timedelta(days=10))
    meters = {
        "m-full": (900, timedelta(0), lambda at: False),
        "m-gaps": (900, timedelta(0), lambda at: missing_day[0] <= at < missing_day[1]),
        "m-30": (1800, timedelta(0), lambda at: False),
        "m-late": (900, timedelta(seconds=1), lambda at: False),
        "m-huge": (900, timedelta(0), lambda at: False),
    }
    for meter_id, (seconds, late, skip) in meters.items():
        add_consumer(pg_engine, meter_id.removeprefix("m-"))
        rows = []
        at = first - timedelta(hours=2)
        while at < last + timedelta(hours=2):
            if not skip(at) and not (meter_id == "m-gaps" and rng.random() < 0.05):
                kwh = rng.choice([0.1234565, 0.0000005, 0.3]) if rng.random() < 0.1 else 0.25
                export = 5e9 if meter_id == "m-huge" and at == first else rng.choice([0.0, 0.1])
                quality = Quality.ESTIMATED if rng.random() < 0.02 else Quality.ACTUAL
                rows.append(Interval(meter_id, at + late, seconds, kwh, export, quality))
            at += timedelta(seconds=seconds)
        store_intervals(pg_engine, rows)
    with pg_engine.connect() as conn:
        fast = usage_by_meter(conn, tariff, list(meters), start, end)
        for meter_id in meters:
            pure = usage_from_intervals(
                load_intervals(conn, meter_id, first, last), tariff, start, end
            )
            assert fast[meter_id] == pure, meter_id
    assert fast["m-gaps"].determinants.intervals < fast["m-full"].determinants.intervals
    assert fast["m-30"].determinants.max_demand_kw[15] == 0


def test_a_failed_read_ahead_fails_the_run_and_keeps_the_chunks_before_it(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are read on other threads: an error there still stops the run, marked failed,
    after the chunks before it were stored, and a rerun completes it."""
    fleet(pg_engine, 5)
    real_usage = usage_by_meter

    def fail_for_c002(conn, tariff, meter_ids, start, end):
        if "m-c002" in meter_ids:
            raise RuntimeError("connection lost")
        return real_usage(conn, tariff, meter_ids, start, end)

    monkeypatch.setattr("meterhub.billing.jobs.runs.usage_by_meter", fail_for_c002)
    with pytest.raises(RuntimeError, match="connection lost"):
        run_bills(pg_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2, readers=2)
    assert numbers(pg_engine) == ["MH-2026-000001", "MH-2026-000002"]
    with pg_engine.connect() as conn:
        status = billing.run_status(conn, "2026-02")
    assert status is not None and status["status"] == "failed"
    monkeypatch.setattr("meterhub.billing.jobs.runs.usage_by_meter", real_usage)
    resumed = run_bills(pg_engine, "2026-02", settings=SETTINGS, today=TODAY, chunk_size=2)
    assert resumed.skipped == 2 and len(resumed.issued) == 3
