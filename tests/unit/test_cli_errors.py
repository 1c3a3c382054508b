"""Errors an operator can fix end in one readable line and a non-zero exit, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def meterhub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("METERHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "meterhub.cli", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_misspelt_setting_names_the_real_one() -> None:
    done = meterhub("meter", "list", METERHUB_DATABSE_URL="sqlite:///x.db")
    assert done.returncode == 2
    assert "METERHUB_DATABASE_URL" in one_error_line(done)


def test_an_invalid_setting_value_names_the_setting() -> None:
    done = meterhub("meter", "list", METERHUB_INTERVAL_MINUTES="0")
    assert done.returncode == 2
    assert "METERHUB_INTERVAL_MINUTES" in one_error_line(done)


def test_a_database_without_the_schema_says_to_upgrade_it(tmp_path: Path) -> None:
    done = meterhub("meter", "list", METERHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert done.returncode == 1
    assert "meterhub db upgrade" in one_error_line(done)


def test_an_unreachable_database_is_one_line() -> None:
    url = "postgresql://postgres@127.0.0.1:1/nothing"
    done = meterhub("meter", "list", METERHUB_DATABASE_URL=url)
    assert done.returncode == 1
    assert "cannot use the database" in one_error_line(done)
