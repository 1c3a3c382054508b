"""Run the fuzz properties for hours: every decoder, and the whole decode-check-store path.

The same property tests CI runs with a few thousand examples each
(tests/unit/test_protocol_properties.py, tests/unit/test_ingest_fuzz.py,
tests/unit/test_json_limits.py), round after round with a new random seed and many more
examples, until the time is up or a property fails. A failure is written to
``fuzz-crashers/<time>.txt`` with Hypothesis's falsifying example; Hypothesis also keeps it in
``.hypothesis/``, so the next ``make test`` replays it. Turn each into a regression test (the
payload, in tests/unit/test_hostile_payloads.py or the decoder's own test file) before fixing it.

    .venv/bin/python scripts/fuzz.py --hours 4
    .venv/bin/python scripts/fuzz.py --minutes 10 --examples 5000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (
    "tests/unit/test_protocol_properties.py",
    "tests/unit/test_ingest_fuzz.py",
    "tests/unit/test_json_limits.py",
)


def run_round(examples: int, seed: int, out: Path) -> bool:
    """One pass of every target; True when every property held."""
    env = {**os.environ, "MH_FUZZ_EXAMPLES": str(examples)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        f"--hypothesis-seed={seed}",
        "-p",
        "no:cacheprovider",
        *TARGETS,
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True
    out.mkdir(exist_ok=True)
    report = out / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-seed{seed}.txt"
    report.write_text(done.stdout + done.stderr, encoding="utf-8")
    print(f"  property failed: {report}", flush=True)
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED", "E ", "E   Falsifying", "E       Failing")):
            print("  " + line, flush=True)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--hours", type=float)
    budget.add_argument("--minutes", type=float)
    parser.add_argument("--examples", type=int, default=20_000, help="per property per round")
    parser.add_argument("--keep-going", action="store_true", help="go on after a failure")
    parser.add_argument("--out", type=Path, default=ROOT / "fuzz-crashers")
    args = parser.parse_args()
    seconds = 3600 * (args.hours or 1.0) if args.minutes is None else 60 * args.minutes
    deadline = time.monotonic() + seconds
    rounds = failures = 0
    started = time.monotonic()
    while time.monotonic() < deadline:
        seed = random.SystemRandom().randrange(2**32)
        rounds += 1
        print(f"round {rounds}: seed {seed}, {args.examples} examples per property", flush=True)
        if not run_round(args.examples, seed, args.out):
            failures += 1
            if not args.keep_going:
                break
    minutes = (time.monotonic() - started) / 60
    print(f"{rounds} rounds in {minutes:.0f} min, {failures} failing")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
