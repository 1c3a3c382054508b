"""Interval derivation speed: one meter's long history through VEE and ``derive_intervals``.

Run: ``.venv/bin/python benchmarks/intervals.py`` (about 10 s; ``--readings N`` changes the size).

A meter reading every 15 minutes with a steadily rising register (the usual case) is assessed
(``assess_sequence``) and derived into 15-minute intervals (``derive_intervals``), each timed
separately with ``time.perf_counter`` over 5 runs; the table shows the median and the range. The
deriver does this per meter for a window of a day or so, so the figure is what a backlog of
readings costs, not a request's latency. The last line is one JSON object with the figures and
the machine. (This replaces a unit test that asserted 100,000 readings in under a second: the
machine's load decided whether it passed.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from _machine import machine_info
from meterhub.readings.intervals import derive_intervals
from meterhub.readings.model import Reading
from meterhub.readings.vee import MeterProfile, assess_sequence

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
PROFILE = MeterProfile("m1", sanctioned_load_kw=None, phase=1, register_max_kwh=99999.999)
RUNS = 5


def history(count: int) -> list[Reading]:
    return [Reading("m1", T0 + i * QUARTER, import_kwh=0.1 * i) for i in range(count)]


def timed(work: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(RUNS):
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--readings", type=int, default=100_000)
    args = parser.parse_args(argv)
    readings = history(args.readings)
    assessments = assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
    stages = {
        "assess_sequence": timed(
            lambda: assess_sequence(readings, PROFILE, zero_streak=timedelta(hours=6))
        ),
        "derive_intervals": timed(
            lambda: derive_intervals(readings, assessments, interval=QUARTER)
        ),
    }
    print(f"{args.readings:,} readings of one meter, 15-minute intervals, {RUNS} runs")
    print(f"{'stage':<18} {'median s':>9} {'range s':>15} {'readings/s':>12}")
    figures: dict[str, Any] = {}
    for name, seconds in stages.items():
        median = statistics.median(seconds)
        print(
            f"{name:<18} {median:>9.3f} {min(seconds):>7.3f}-{max(seconds):<7.3f} "
            f"{args.readings / median:>12,.0f}"
        )
        figures[name] = {
            "median_s": round(median, 4),
            "readings_per_s": round(args.readings / median),
        }
    print(json.dumps({"readings": args.readings, **figures, "machine": machine_info()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
