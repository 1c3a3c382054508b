"""benchmarks/dunning.py does the work it times: a reminder, then a late fee, per consumer, then
nothing; and its last line is the JSON figures. 20 consumers on the real PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import reachable, service_missing

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dunning.py"


def test_the_three_passes_do_what_they_say_and_end_with_json() -> None:
    if not reachable("127.0.0.1", 5432):
        service_missing("PostgreSQL on 127.0.0.1:5432")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--consumers", "20"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(p["pass"], p["late_fees"], p["reminders"]) for p in last["passes"]] == [
        ("reminders", 0, 20),
        ("late fees", 20, 0),
        ("nothing to do", 0, 0),
    ]
    assert last["consumers"] == 20 and "cores" in last["machine"]
