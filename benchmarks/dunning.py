"""The daily payment-terms pass (late fees, rebates, reminders) on PostgreSQL: seconds per pass.

N consumers, each with one NEA bill of Rs 1,000 due on 15 June 2024 and nothing paid. Three
passes, as `meterhub bill daily` would make them: on 12 June (a reminder each, 3 days before
the due date), on 20 June (the 5% late fee each) and again on 20 June (nothing left to do: the
cost of a pass that only checks). The bills are inserted directly: this times the pass, not a
bill run. Creates and drops its own database on 127.0.0.1:5432.

    .venv/bin/python benchmarks/dunning.py [--consumers 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ISSUED = datetime(2024, 6, 1, 9, tzinfo=UTC)
DUE = date(2024, 6, 15)
PASSES = (("reminders", date(2024, 6, 12)), ("late fees", DUE.replace(day=20)))


def seed(engine: Engine, consumers: int) -> None:
    from meterhub.billing.core.tariff import load_tariff
    from meterhub.billing.service import save_tariff
    from meterhub.store.schema import consumers as consumer_table
    from meterhub.store.schema_billing import bill_lines, bills

    tariff = load_tariff(ROOT / "examples" / "tariffs" / "nea-domestic.yaml")
    version = tariff.versions[-1].effective_from
    ids = [f"c{index:07d}" for index in range(consumers)]
    with engine.begin() as conn:
        save_tariff(conn, tariff)
        conn.execute(
            insert(consumer_table),
            [{"id": c, "name": c, "email": f"{c}@example.com", "created_at": ISSUED} for c in ids],
        )
        conn.execute(
            insert(bills),
            [
                {
                    "number": f"MH-2024-{index:07d}", "consumer_id": c, "meter_id": f"m{c}",
                    "period_start": date(2024, 5, 1), "period_end": date(2024, 6, 1),
                    "issued_at": ISSUED, "due_date": DUE, "currency": "NPR",
                    "total": Decimal("1000.00"), "tariff_id": tariff.id,
                    "tariff_version": version, "import_kwh": Decimal(100),
                    "export_kwh": Decimal(0), "intervals": 2976, "estimated_intervals": 0,
                    "estimated_dates": [], "document": {},
                }
                for index, c in enumerate(ids)
            ],
        )  # fmt: skip
        bill_ids = conn.execute(select(bills.c.id)).scalars().all()
        conn.execute(
            insert(bill_lines),
            [
                {"bill_id": b, "line_no": 1, "code": "energy", "kind": "energy",
                 "description": "Energy", "amount": Decimal("1000.00")}
                for b in bill_ids
            ],
        )  # fmt: skip


def bench(consumers: int) -> list[dict[str, Any]]:
    from meterhub.billing.jobs.dunning import apply_payment_terms
    from meterhub.store.db import make_engine
    from meterhub.store.migrate import upgrade

    name = f"meterhub_bench_dunning_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    results = []
    try:
        upgrade(engine)
        seed(engine, consumers)
        for label, day in (*PASSES, ("nothing to do", PASSES[-1][1])):
            started = time.perf_counter()
            outcome = apply_payment_terms(engine, day, datetime.combine(day, ISSUED.timetz()))
            seconds = time.perf_counter() - started
            assert not outcome.errors, outcome.errors[:3]
            results.append({"pass": label, "day": day.isoformat(), "seconds": seconds,
                            **outcome.as_dict()})  # fmt: skip
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumers", type=int, default=5_000)
    args = parser.parse_args()
    results = bench(args.consumers)
    print(f"{'pass':<16} {'consumers':>10} {'seconds':>9} {'consumers/s':>12}  done")
    for r in results:
        done = f"{r['late_fees']} fees, {r['reminders_queued']} reminders"
        print(f"{r['pass']:<16} {r['consumers']:>10,} {r['seconds']:>9.1f} "
              f"{r['consumers'] / r['seconds']:>12,.0f}  {done}")  # fmt: skip
    summary = {
        "consumers": args.consumers,
        "passes": [
            {
                "pass": r["pass"],
                "seconds": round(r["seconds"], 2),
                "late_fees": r["late_fees"],
                "reminders": r["reminders_queued"],
            }
            for r in results
        ],
        "machine": machine_info(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
