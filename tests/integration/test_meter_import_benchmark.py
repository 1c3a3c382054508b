"""benchmarks/meter_import.py registers what it says, the broker loads it, and its last line is the
JSON figures. 200 meters on the real PostgreSQL and a private Mosquitto."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mosquitto_support import require_tools

from conftest import reachable, service_missing

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "meter_import.py"


def test_a_small_import_ends_with_the_figures_in_json() -> None:
    require_tools()
    if not reachable("127.0.0.1", 5432):
        service_missing("PostgreSQL on 127.0.0.1:5432")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--meters", "200", "--reconnects", "20"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["meters"] == 200 and last["tls_reconnects"] == 20
    # The figures are printed, not judged: the script itself fails if an imported meter, the
    # meter added live or a reconnecting meter is refused.
    for figure in ("meters_per_s", "broker_state_write_s", "broker_rss_mb", "meter_add_cli_s"):
        assert isinstance(last[figure], int | float), figure
    assert "cores" in last["machine"]
