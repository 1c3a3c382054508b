"""The machine a benchmark ran on: cores, CPU model, Python, PostgreSQL and Mosquitto versions.

Run it on its own (``.venv/bin/python benchmarks/_machine.py``) to print the JSON object, or import
``machine_info`` from a benchmark and put the result into its last output line.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

MOSQUITTO = "/usr/sbin/mosquitto"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def mosquitto_version(binary: str = MOSQUITTO) -> str | None:
    try:
        out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"mosquitto version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else None


def postgres_version(url: str = POSTGRES_URL) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception:
        return None
    return None if row is None else str(row[0])


def machine_info(postgres_url: str = POSTGRES_URL) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "postgresql": postgres_version(postgres_url),
        "mosquitto": mosquitto_version(),
    }


if __name__ == "__main__":
    print(json.dumps(machine_info()))
