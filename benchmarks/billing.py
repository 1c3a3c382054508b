"""Billing throughput: (a) a million slab bills from monthly totals, (b) a TOU bill run end to end.

Run: ``.venv/bin/python benchmarks/billing.py`` (about 3 minutes on 2 cores, most of it loading
30 million intervals, which is not timed). ``--quick`` runs a tenth of both sizes;
``--skip-slabs`` and ``--skip-tou`` run one of the two; ``--tou-runs N`` repeats (b) N times on
the same intervals (bills, runs and numbers emptied in between) and reports the median;
``--readers N`` sets ``run_bills``'s read-ahead threads (default 2, as in production). Needs
PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) for (b); the script creates and drops
its own database.

(a) 1,000,000 consumers on the DERC domestic tariff (Delhi: telescopic monthly slabs, fixed
    charge per kW of sanctioned load by band, three percentage levies), June 2024, from register
    totals: ``determinants_from_totals`` + ``calculate_bill`` per consumer, on every core
    (``multiprocessing``, one chunk of consumers per task). Monthly consumption is log-normal
    with a median of 200 kWh and sigma 0.7 (a long tail of large homes, as household surveys
    report for Indian cities), 0.1 kWh resolution; sanctioned loads 1-10 kW. Every worker sums
    its totals so the run can be checked against a serial sample.
(b) 10,000 consumers on PG&E E-TOU-C (America/Los_Angeles, summer peak 16-21 h), July 2025: a
    month of 15-minute intervals per meter (31 * 96 = 2,976; 29.8 million rows), loaded with
    COPY before the clock starts; then ``run_bills`` (the production path: PostgreSQL packs each
    meter's intervals as micro-kWh, Python sums them by time-of-use slot, ``calculate_bill``,
    documents, comparisons with earlier periods, numbering, bills and lines stored in chunks of
    500 consumers, one transaction each, the next chunks read on two connections meanwhile) is
    timed from start to the last commit. Load shapes: 40 household profiles (morning and evening
    peaks, an air-conditioning afternoon for some), each meter one of them scaled by its own
    factor.

Table first, then the last line: one JSON object with the figures and the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
TARIFFS = ROOT / "examples" / "tariffs"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SLAB_START, SLAB_END = date(2024, 6, 1), date(2024, 7, 1)
TOU_PERIOD = "2025-07"  # PG&E E-TOU-C rates of 1 March 2025; July has 31 days
CHUNK = 10_000


# ----------------------------------------------------------------------------- (a) slab bills


def consumption(rng: random.Random) -> tuple[Decimal, Decimal]:
    """(monthly kWh, sanctioned kW) of the next consumer."""
    kwh = round(rng.lognormvariate(math.log(200), 0.7), 1)
    load = rng.choice((1, 2, 2, 3, 3, 3, 4, 5, 5, 7, 10))
    return Decimal(str(kwh)), Decimal(load)


def slab_chunk(bounds: tuple[int, int]) -> tuple[int, Decimal]:
    from meterhub.billing.core import (
        Supply,
        calculate_bill,
        determinants_from_totals,
        load_tariff,
    )

    tariff = _derc(load_tariff)
    count, total = 0, Decimal(0)
    first, last = bounds
    rng = random.Random(first)  # the same consumers on every run, whichever core bills them
    for _ in range(first, last):
        kwh, load = consumption(rng)
        determinants = determinants_from_totals(tariff, SLAB_START, SLAB_END, kwh)
        bill = calculate_bill(determinants, tariff, Supply(sanctioned_load_kw=load))
        total += bill.total
        count += 1
    return count, total


_TARIFF: Any = None


def _derc(load: Any) -> Any:
    global _TARIFF
    if _TARIFF is None:
        _TARIFF = load(TARIFFS / "derc-domestic.yaml")
    return _TARIFF


def bench_slabs(consumers: int, processes: int) -> dict[str, Any]:
    chunks = [(a, min(a + CHUNK, consumers)) for a in range(0, consumers, CHUNK)]
    # Serial sample first: the rate of one core, and a check on the parallel sums.
    started = time.perf_counter()
    sample_count, sample_total = slab_chunk((0, CHUNK))
    serial_seconds = time.perf_counter() - started
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(processes) as pool:
        results = pool.map(slab_chunk, chunks, chunksize=1)
    seconds = time.perf_counter() - started
    count = sum(c for c, _ in results)
    total = sum((t for _, t in results), Decimal(0))
    assert count == consumers, (count, consumers)
    assert results[0] == (sample_count, sample_total), "parallel and serial bills differ"
    return {
        "consumers": consumers,
        "processes": processes,
        "seconds": seconds,
        "bills_per_second": consumers / seconds,
        "serial_bills_per_second": sample_count / serial_seconds,
        "total_billed": f"{total:f}",
    }


# ----------------------------------------------------------------------------- (b) TOU run


def profiles(zone: ZoneInfo, start: datetime, slots: int, count: int) -> list[list[str]]:
    """``count`` household load shapes as formatted kWh per 15-minute slot."""
    rng = random.Random(42)
    shapes = []
    for _ in range(count):
        morning, evening = rng.uniform(0.5, 1.5), rng.uniform(1.0, 2.5)
        cooling = rng.choice((0.0, 0.0, 1.0, 2.0))
        values = []
        for slot in range(slots):
            local = (start + timedelta(minutes=15 * slot)).astimezone(zone)
            hour = local.hour + local.minute / 60
            kw = (
                0.3
                + morning * math.exp(-(((hour - 7.5) / 1.5) ** 2))
                + evening * math.exp(-(((hour - 19.5) / 2.0) ** 2))
                + cooling * math.exp(-(((hour - 15.0) / 3.0) ** 2))
            ) * rng.uniform(0.7, 1.3)
            values.append(f"{kw / 4:.4f}")
        shapes.append(values)
    return shapes


def load_intervals_copy(url: str, meters: list[str], first: datetime, slots: int) -> float:
    zone = ZoneInfo("America/Los_Angeles")
    shapes = profiles(zone, first, slots, 40)
    stamps = [(first + timedelta(minutes=15 * s)).isoformat() for s in range(slots)]
    computed = first.isoformat()
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY intervals (meter_id, start, seconds, import_kwh, export_kwh, quality, "
            "computed_at) FROM STDIN"
        ) as copy:
            for index, meter_id in enumerate(meters):
                shape = shapes[index % len(shapes)]
                lines = [
                    f"{meter_id}\t{stamp}\t900\t{kwh}\t0\tactual\t{computed}\n"
                    for stamp, kwh in zip(stamps, shape, strict=True)
                ]
                copy.write("".join(lines))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE intervals")
    return time.perf_counter() - started


def bench_tou(consumers: int, runs: int = 1, readers: int = 2) -> dict[str, Any]:
    from sqlalchemy import insert, text

    from meterhub.billing.core.tariff import load_tariff
    from meterhub.billing.jobs.runs import period_dates, run_bills
    from meterhub.billing.service import save_tariff
    from meterhub.config import Settings
    from meterhub.store import schema, schema_billing
    from meterhub.store.db import make_engine
    from meterhub.store.migrate import upgrade
    from meterhub.store.partitions import ensure_month_partitions, months_between

    name = f"meterhub_bench_billing_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    try:
        upgrade(engine)
        tariff = load_tariff(TARIFFS / "pge-e-tou-c.yaml")
        start, end = period_dates(TOU_PERIOD)
        zone = tariff.zone
        first = datetime(start.year, start.month, start.day, tzinfo=zone).astimezone(UTC)
        last = datetime(end.year, end.month, end.day, tzinfo=zone).astimezone(UTC)
        slots = int((last - first) / timedelta(minutes=15))
        meters = [f"m{index:06d}" for index in range(consumers)]
        now = datetime.now(UTC)
        with engine.begin() as conn:
            ensure_month_partitions(conn, "intervals", months_between(first, last))
            save_tariff(conn, tariff, source_file="pge-e-tou-c.yaml")
            conn.execute(
                insert(schema.consumers),
                [
                    {"id": f"c{m[1:]}", "name": f"Household {m[1:]}", "created_at": now}
                    for m in meters
                ],
            )
            conn.execute(
                insert(schema.meters),
                [{"id": m, "consumer_id": f"c{m[1:]}", "created_at": now} for m in meters],
            )
            conn.execute(
                insert(schema_billing.tariff_assignments),
                [
                    {"consumer_id": f"c{m[1:]}", "tariff_id": tariff.id, "from_date": start}
                    for m in meters
                ],
            )
        load_seconds = load_intervals_copy(url, meters, first, slots)
        settings = Settings(database_url=url, timezone="America/Los_Angeles", bill_cycle_day=1)
        timings = []
        for attempt in range(runs):
            if attempt:  # the same run again, from no bills
                with engine.begin() as conn:
                    conn.execute(text("TRUNCATE bills, bill_runs, bill_numbers CASCADE"))
            started = time.perf_counter()
            result = run_bills(engine, TOU_PERIOD, settings=settings, today=end, readers=readers)
            timings.append(time.perf_counter() - started)
            assert len(result.issued) == consumers and not result.errors, result.errors[:3]
        seconds = statistics.median(timings)
        return {
            "consumers": consumers,
            "intervals": consumers * slots,
            "copy_seconds": load_seconds,
            "seconds": seconds,
            "runs": timings,
            "bills_per_second": consumers / seconds,
        }
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of both sizes")
    parser.add_argument("--processes", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--skip-tou", action="store_true", help="only (a): no PostgreSQL needed")
    parser.add_argument("--skip-slabs", action="store_true", help="only (b)")
    parser.add_argument(
        "--tou-runs", type=int, default=1, help="(b) this many times on the same intervals"
    )
    parser.add_argument(
        "--readers", type=int, default=2, help="(b) threads reading chunks ahead (run_bills)"
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    slab = None if args.skip_slabs else bench_slabs(1_000_000 // scale, args.processes)
    tou = None if args.skip_tou else bench_tou(10_000 // scale, args.tou_runs, args.readers)
    print(f"{'benchmark':<44} {'consumers':>10} {'seconds':>9} {'bills/s':>10}")
    if slab is not None:
        print(
            f"{'(a) DERC slab bills from totals':<44} {slab['consumers']:>10,} "
            f"{slab['seconds']:>9.1f} {slab['bills_per_second']:>10,.0f}"
        )
        print(f"{'    one core (serial sample)':<44} {'':>10} {'':>9} "
              f"{slab['serial_bills_per_second']:>10,.0f}")  # fmt: skip
    if tou is not None:
        print(
            f"{'(b) PG&E TOU run from PostgreSQL intervals':<44} {tou['consumers']:>10,} "
            f"{tou['seconds']:>9.1f} {tou['bills_per_second']:>10,.0f}"
        )
        if len(tou["runs"]) > 1:
            runs = ", ".join(f"{seconds:.1f}" for seconds in tou["runs"])
            print(f"    (median of {len(tou['runs'])} runs: {runs} s)")
        print(f"    ({tou['intervals']:,} intervals loaded by COPY in {tou['copy_seconds']:.0f} s, "
              "not timed)")  # fmt: skip
    summary = {
        "slab_bills_1m_seconds": None
        if (args.quick or slab is None)
        else round(slab["seconds"], 2),
        "slab_bills_per_second": None if slab is None else round(slab["bills_per_second"]),
        "slab_consumers": None if slab is None else slab["consumers"],
        "slab_processes": None if slab is None else slab["processes"],
        "tou_10k_seconds": None if (args.quick or tou is None) else round(tou["seconds"], 2),
        "tou_consumers": None if tou is None else tou["consumers"],
        "tou_seconds": None if tou is None else round(tou["seconds"], 2),
        "tou_runs_seconds": None if tou is None else [round(t, 2) for t in tou["runs"]],
        "tou_readers": None if tou is None else args.readers,
        "tou_intervals": None if tou is None else tou["intervals"],
        "quick": args.quick,
        "machine": machine_info(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
