"""`meterhub demo` end to end: embedded broker, SQLite, ingest, deriver, simulator, web app.

Needs no external service, so it always runs. Bounded: the demo stops itself after 40 s and the
test gives up after 120 s.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import text

from conftest import ROOT
from meterhub.store.db import make_engine

pytestmark = pytest.mark.integration

CONSUMER_METERS = 30
RUN_SECONDS = 40
BUDGET_SECONDS = 120
URL_LINE = re.compile(r"web app\s+(http://127\.0\.0\.1:\d+/)")


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.mark.timeout(BUDGET_SECONDS + 30)
def test_demo_serves_the_page_and_fills_the_database(tmp_path: Path) -> None:
    deadline = time.monotonic() + BUDGET_SECONDS
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERHUB_")}
    command = [
        sys.executable,
        "-m",
        "meterhub.cli",
        "demo",
        "--meters",
        str(CONSUMER_METERS),
        "--history",
        "1d",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--duration",
        str(RUN_SECONDS),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout: queue.Queue[str | None] = queue.Queue()
    stderr: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    threading.Thread(target=_pump, args=(process.stdout, stdout), daemon=True).start()
    threading.Thread(target=_pump, args=(process.stderr, stderr), daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        while url is None:
            line = stdout.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                break
            seen.append(line)
            match = URL_LINE.search(line)
            if match:
                url = match.group(1)
        assert url is not None, "no 'web app' URL line on stdout:\n" + "".join(seen)

        # The app is served while the demo runs: the meter page and the API.
        page = _get(url, deadline)
        assert page.status_code == 200
        assert "meters" in page.text
        api = _get(url + "api/v1/meters?limit=5000", deadline)
        assert api.status_code == 200

        returncode = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert returncode == 0, _drain(stderr)

    engine = make_engine(f"sqlite:///{tmp_path / 'meterhub.db'}")
    try:
        with engine.connect() as conn:

            def scalar(sql: str) -> int:
                return int(conn.execute(text(sql)).scalar_one())

            transformers = scalar("SELECT count(*) FROM transformers")
            assert transformers > 0
            # One consumer meter per --meters, plus one main meter per transformer.
            assert scalar("SELECT count(*) FROM meters") == CONSUMER_METERS + transformers
            assert scalar("SELECT count(*) FROM meters WHERE role = 'consumer'") == CONSUMER_METERS
            assert (
                scalar("SELECT count(*) FROM meters WHERE role = 'transformer_main'")
                == transformers
            )
            assert scalar("SELECT count(*) FROM readings") > 0
            assert scalar("SELECT count(*) FROM intervals") > 0
            # Every meter registered up front: nothing refused as unknown.
            assert (
                scalar("SELECT count(*) FROM dead_letters WHERE reason_code = 'unknown_meter'") == 0
            )
    finally:
        engine.dispose()


def _get(url: str, deadline: float) -> httpx.Response:
    """The URL is printed just as uvicorn starts: retry connection errors for up to 15 s."""
    give_up = min(deadline, time.monotonic() + 15)
    while True:
        try:
            return httpx.get(url, timeout=10)
        except httpx.TransportError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def _drain(lines: queue.Queue[str | None]) -> str:
    out: list[str] = []
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return "".join(out)[-4000:]
        if line is not None:
            out.append(line)
