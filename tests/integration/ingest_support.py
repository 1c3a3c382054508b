"""Ingest workers as real processes, and the count that every fault test ends with.

A worker runs ``meterhub ingest`` in a subprocess, so that a test can kill it with SIGKILL, or
through ``crashing_ingest.py``, which plants a bug that ends the process on a marked message.
Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, text

from conftest import ROOT

HERE = Path(__file__).resolve().parent
CRASHING_INGEST = HERE / "crashing_ingest.py"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: list[str]

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed; the broker keeps what was not acknowledged."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def worker_env(
    db_url: str, mqtt_url: str, prefix: str, worker_id: str, data_dir: Path, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "METERHUB_DATABASE_URL": db_url,
        "METERHUB_MQTT_URL": mqtt_url,
        "METERHUB_TOPIC_PREFIX": prefix,
        "METERHUB_WORKER_ID": worker_id,
        "METERHUB_DATA_DIR": str(data_dir),
        "METERHUB_BATCH_MS": "20",
        "METERHUB_BATCH_MAX": "50",
        **extra,
    }


@contextmanager
def worker_process(
    env: dict[str, str],
    *,
    args: Sequence[str] = ("ingest", "--no-derive"),
    script: Path | None = None,
    wait_for: str | None = "subscribed",
    timeout: float = 30.0,
) -> Iterator[Worker]:
    """A worker process; waits until its log shows ``wait_for``; stopped with SIGTERM at the
    end (killed if it does not stop within 20 s)."""
    command = [sys.executable, str(script)] if script else [sys.executable, "-m", "meterhub.cli"]
    process = subprocess.Popen(
        [*command, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    log: list[str] = []
    ready = threading.Event()

    def watch() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode("utf-8", "replace")
            log.append(line)
            if wait_for is not None and wait_for in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        if wait_for is not None and not ready.wait(timeout):
            raise AssertionError(f"worker did not log {wait_for!r} within {timeout} s:\n{log}")
        yield Worker(process, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@dataclass(frozen=True)
class Tally:
    sent: int
    stored: int
    lost: int
    doubled: int

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "stored": self.stored,
            "lost": self.lost,
            "doubled": self.doubled,
        }


def tally(engine: Engine, sent: set[tuple[str, datetime]]) -> Tally:
    """Compare the readings stored with the (meter, ts) keys sent. Doubled: a key stored more
    than once, or a reading stored that was never sent."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT meter_id, ts FROM readings")).all()
    stored = [
        (meter, ts if ts.tzinfo else ts.replace(tzinfo=next(iter(sent))[1].tzinfo))
        for meter, ts in rows
    ]
    distinct = set(stored)
    lost = len(sent - distinct)
    doubled = (len(stored) - len(distinct)) + len(distinct - sent)
    return Tally(sent=len(sent), stored=len(distinct & sent), lost=lost, doubled=doubled)
