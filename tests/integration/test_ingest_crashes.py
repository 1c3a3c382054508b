"""A message that ends the worker is quarantined after the restarts, not allowed to end them all;
a worker gone for good hands its share back.

Workers are real ``meterhub ingest`` processes on the machine's Mosquitto and PostgreSQL; the
planted bug is in tests/integration/crashing_ingest.py.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from ingest_support import CRASHING_INGEST, tally, worker_env, worker_process
from sqlalchemy import Engine, select
from test_ingest_pipeline import register

from conftest import count_rows, publish_all, wait_until
from meterhub.ingest.batches import QUARANTINED
from meterhub.store import schema

pytestmark = pytest.mark.integration

BASE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=5)


def reading(meter: str, i: int) -> dict[str, object]:
    return {"ts": (BASE + timedelta(minutes=15 * i)).isoformat(), "import_kwh": 10.0 + i}


def run_until_quarantined(env: dict[str, str], engine: Engine, expected: int) -> int:
    """Start the worker again each time the planted bug ends it; return how many starts."""
    for start in range(1, 5):
        with worker_process(env, script=CRASHING_INGEST) as worker:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if worker.process.poll() is not None:
                    break  # ended by the planted bug: start it again
                if (
                    count_rows(engine, "readings") == expected
                    and count_rows(engine, "dead_letters") == 1
                ):
                    return start
                time.sleep(0.2)
            else:
                raise AssertionError(f"neither done nor crashed after 30 s:\n{worker.log}")
    raise AssertionError("the poison message was not quarantined within 4 starts")


@pytest.mark.parametrize(("marker", "exit_status"), [("CRASH-ME", 134), ("STALL-ME", 70)])
def test_a_message_that_ends_the_worker_is_quarantined_and_the_rest_stored(
    marker: str,
    exit_status: int,
    pg_url: str,
    pg_engine: Engine,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    register(pg_engine, "M-1", "M-2")
    good = [(f"{topic_prefix}/M-1/readings", orjson.dumps(reading("M-1", i))) for i in range(60)]
    poison = orjson.dumps({**reading("M-2", 0), "note": marker})
    messages = [*good[:30], (f"{topic_prefix}/M-2/readings", poison), *good[30:]]
    env = worker_env(
        pg_url, f"mqtt://127.0.0.1:{mqtt_broker[1]}", topic_prefix, f"q-{topic_prefix}", tmp_path
    )
    # First start: the worker takes the stream and dies on the poison (or stalls and ends).
    with worker_process(env, script=CRASHING_INGEST) as first:
        publish_all(*mqtt_broker, messages)
        assert first.process.wait(30) == exit_status
    starts = run_until_quarantined(env, pg_engine, expected=len(good))
    assert starts <= 2, "one restart handles suspects alone, the next quarantines the culprit"
    with pg_engine.connect() as conn:
        (dead,) = conn.execute(select(schema.dead_letters)).all()
    assert dead.reason_code == QUARANTINED
    assert dead.payload == poison
    assert dead.meter_id == "M-2"
    sent = {("M-1", BASE + timedelta(minutes=15 * i)) for i in range(60)}
    assert tally(pg_engine, sent).as_dict() == {"sent": 60, "stored": 60, "lost": 0, "doubled": 0}


def test_a_retired_worker_hands_back_what_the_broker_kept_for_it(
    pg_url: str,
    pg_engine: Engine,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    meters = [f"R-{n}" for n in range(10)]
    register(pg_engine, *meters)
    url = f"mqtt://127.0.0.1:{mqtt_broker[1]}"
    live = worker_env(pg_url, url, topic_prefix, f"live-{topic_prefix}", tmp_path / "a")
    gone = worker_env(pg_url, url, topic_prefix, f"gone-{topic_prefix}", tmp_path / "b")
    first = [
        (f"{topic_prefix}/{m}/readings", orjson.dumps(reading(m, i)))
        for i in range(30)
        for m in meters
    ]
    later = [
        (f"{topic_prefix}/{m}/readings", orjson.dumps(reading(m, i)))
        for i in range(30, 60)
        for m in meters
    ]
    with worker_process(gone) as departed:
        departed.kill()  # gone for good, its session (and its half of the share) left behind
    with worker_process(live):
        publish_all(*mqtt_broker, first)
        wait_until(lambda: count_rows(pg_engine, "readings") > 0, what="the live worker's half")
        time.sleep(1)
        stranded = len(first) - count_rows(pg_engine, "readings")
        assert stranded > 0, "the broker queues part of the share for the departed worker"
        retire = subprocess.run(
            [*worker_command(), "ingest", "--retire", f"gone-{topic_prefix}"],
            env=gone,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert retire.returncode == 0, retire.stderr.decode()
        wait_until(
            lambda: count_rows(pg_engine, "readings") == len(first),
            what="every reading of the first stream",
        )
        # With the session ended, nothing more is queued for the departed worker.
        publish_all(*mqtt_broker, later)
        wait_until(
            lambda: count_rows(pg_engine, "readings") == len(first) + len(later),
            what="every later reading, by the live worker alone",
        )
    sent = {(m, BASE + timedelta(minutes=15 * i)) for i in range(60) for m in meters}
    assert tally(pg_engine, sent).as_dict() == {
        "sent": 600,
        "stored": 600,
        "lost": 0,
        "doubled": 0,
    }


def worker_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "meterhub.cli"]
