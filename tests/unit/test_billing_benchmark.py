"""benchmarks/billing.py keeps its contract: the last line is one JSON object with the figures the
issue asks for. Slab part only, a tenth of the size: no PostgreSQL, a few seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "billing.py"


def test_quick_slab_run_ends_with_the_json_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--skip-tou", "--processes", "2"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"slab_bills_1m_seconds", "tou_10k_seconds", "machine"} <= set(last)
    assert last["quick"] is True and last["slab_consumers"] == 100_000
    assert last["slab_bills_per_second"] > 0 and last["tou_seconds"] is None
