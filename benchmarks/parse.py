"""Parser throughput: readings per second of each format's ``parse`` on one sample, one core.

Run: ``.venv/bin/python benchmarks/parse.py`` (about 1 s per format; ``--seconds`` changes that).

Samples, one message or frame each (a reading per call for every format):

* native: one v1 reading object (the contract's example);
* tasmota: ``tests/fixtures/tasmota/sensor_pow_loaded.json`` (SENSOR telemetry);
* shelly: ``tests/fixtures/shelly/gen2_pro3em_notify_full_status.json`` (Pro 3EM NotifyFullStatus);
* dsmr, dlms, iec62056-21: a sample of the conformance corpus at ``../shared/conformance`` (from
  the repository root): a DSMR 5 telegram, a Kamstrup list 3 HDLC frame (as binary, the way a HAN
  port sends it) and a Landis+Gyr E360 mode D readout.

A format whose module or sample is missing, or whose parser refuses the sample, is skipped and the
table says why. Each format is called in a loop, timed with ``time.perf_counter``: a short
calibration, then 5 runs of a fifth of ``--seconds`` each; the table shows the median and the
range of the 5 runs (they vary by a third from run to run on a 2-core machine, so compare figures
from the same run). The last line is one JSON object: ``readings_per_s`` (format -> median),
``skipped`` (format -> reason) and ``machine``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _machine import cpu_model
from meterhub.protocols.base import FORMATS, ParseContext, ParseError, parser_for

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CONFORMANCE = ROOT.parent / "shared" / "conformance"
RUNS = 5

NATIVE_SAMPLE = (
    b'{"ts": "2026-11-24T10:15:00+05:45", "seq": 8812, "import_kwh": 1234.567, "export_kwh": 0.0,'
    b' "power_w": 812.0, "voltage_v": 229.8, "current_a": 3.9, "pf": 0.97, "freq_hz": 50.01}'
)


@dataclass(frozen=True)
class Sample:
    fmt: str
    path: Path | None  # None: built in
    description: str
    hex_text: bool = False  # the file holds hex text; the parser gets the binary frame

    def load(self) -> bytes:
        if self.path is None:
            return NATIVE_SAMPLE
        raw = self.path.read_bytes()
        return bytes.fromhex(raw.decode("ascii")) if self.hex_text else raw


SAMPLES = (
    Sample("native", None, "v1 reading object (contract example)"),
    Sample("tasmota", FIXTURES / "tasmota" / "sensor_pow_loaded.json", "SENSOR telemetry"),
    Sample(
        "shelly",
        FIXTURES / "shelly" / "gen2_pro3em_notify_full_status.json",
        "Pro 3EM NotifyFullStatus",
    ),
    Sample("dsmr", CONFORMANCE / "dsmr" / "v5.txt", "DSMR 5.0 telegram (Iskra MT382)"),
    Sample(
        "dlms",
        CONFORMANCE / "han" / "kamstrup_list3_hourly_em001.hex",
        "Kamstrup list 3 HDLC frame",
        hex_text=True,
    ),
    Sample(
        "iec62056-21",
        CONFORMANCE / "iec62056-21" / "landisgyr_e360_d.txt",
        "Landis+Gyr E360 mode D readout",
    ),
)


@dataclass
class Outcome:
    fmt: str
    description: str
    readings_per_s: float | None = None
    low: float = 0.0
    high: float = 0.0
    calls: int = 0
    readings_per_call: int = 0
    skipped: str | None = None


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def time_calls(parse: Callable[[], int], seconds: float) -> tuple[list[float], int]:
    """Readings per second of ``RUNS`` runs of about ``seconds / RUNS`` each, and calls per run."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < 0.05:  # calibration, also the warm-up
        parse()
        calls += 1
    per_call = (time.perf_counter() - started) / calls
    calls_per_run = max(1, int(seconds / RUNS / per_call))
    rates = []
    for _ in range(RUNS):
        readings = 0
        t0 = time.perf_counter()
        for _ in range(calls_per_run):
            readings += parse()
        rates.append(readings / (time.perf_counter() - t0))
    return rates, calls_per_run


def measure(sample: Sample, seconds: float) -> Outcome:
    outcome = Outcome(sample.fmt, sample.description)
    module_name = FORMATS[sample.fmt].split(":")[0]
    if importlib.util.find_spec(module_name) is None:
        outcome.skipped = f"module {module_name} not present"
        return outcome
    if sample.path is not None and not sample.path.is_file():
        outcome.skipped = f"sample {sample.path} not found"
        return outcome
    data = sample.load()
    parser = parser_for(sample.fmt)
    # A meter id for the formats whose frames carry none; the same for all, so that no parser
    # pays for a different path. Oslo: the HAN and IEC samples are Nordic meters' wall clocks.
    context = ParseContext(
        meter_id="bench-1", now=datetime.now(UTC), timezone=ZoneInfo("Europe/Oslo")
    )
    try:
        outcome.readings_per_call = len(parser(data, context))
    except ParseError as exc:
        outcome.skipped = f"parser refused the sample: {exc.code}"
        return outcome
    if outcome.readings_per_call == 0:
        outcome.skipped = "the sample gives no reading"
        return outcome
    rates, outcome.calls = time_calls(lambda: len(parser(data, context)), seconds)
    outcome.readings_per_s = statistics.median(rates)
    outcome.low, outcome.high = min(rates), max(rates)
    return outcome


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [
        f"{'format':<12} {'sample':<36} {'readings/s':>12} {'range of 5 runs':>21} {'us/call':>9}"
    ]
    for o in outcomes:
        if o.readings_per_s is None:
            rows.append(f"{o.fmt:<12} {o.description:<36} skipped: {o.skipped}")
            continue
        us = 1e6 * o.readings_per_call / o.readings_per_s
        rows.append(
            f"{o.fmt:<12} {o.description:<36} {o.readings_per_s:>12,.0f} "
            f"{f'{o.low:,.0f} - {o.high:,.0f}':>21} {us:>9.1f}"
        )
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per format")
    args = parser.parse_args(argv)
    info = machine()
    print(
        f"parse throughput, one core: {info['cores']} cores, {info['cpu_model']}, "
        f"Python {info['python']}\n"
    )
    outcomes = [measure(sample, args.seconds) for sample in SAMPLES]
    print(table(outcomes))
    figures = {
        "benchmark": "parse",
        "readings_per_s": {
            o.fmt: round(o.readings_per_s) for o in outcomes if o.readings_per_s is not None
        },
        "skipped": {o.fmt: o.skipped for o in outcomes if o.skipped is not None},
        "machine": info,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
