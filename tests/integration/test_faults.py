"""Kill, restart and flood the real services: every reading a meter handed over is stored once.

Runs each scenario of benchmarks/faults.py small (10 meters x 60 readings over 6 s): a private
Mosquitto from meterhub's generated configuration, PostgreSQL, ``meterhub ingest`` processes, and
meters publishing with their own credentials. Each ends with lost = doubled = 0.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_faults", BENCHMARKS / "faults.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


faults = _load()
SIZE = faults.Size(meters=10, readings=60, seconds=6.0)


def run(name: str) -> Any:
    result = faults.SCENARIOS[name](SIZE)
    assert (result.lost, result.doubled) == (0, 0), result.line()
    assert result.delivered == result.sent == SIZE.meters * SIZE.readings, result.line()
    return result


def test_two_clean_broker_restarts_mid_stream() -> None:
    run("broker_restart")


def test_a_broker_crash_mid_stream() -> None:
    run("broker_crash")


def test_readings_queued_for_a_stopped_worker_survive_a_broker_crash_after_an_autosave() -> None:
    result = run("broker_crash_queued")
    assert result.notes["queued_at_crash"] == SIZE.meters * SIZE.readings


def test_a_worker_killed_mid_stream() -> None:
    run("worker_kill")


def test_a_worker_gone_for_good_strands_its_share_until_it_is_retired() -> None:
    result = run("worker_gone")
    assert result.notes["stranded_before_retire"] > 0, "the scenario must strand something"
    assert result.notes["retire_exit"] == 0


def test_database_connections_terminated_and_refused() -> None:
    result = run("database_outage")
    assert result.notes["dead_letters"] == 0


def test_a_meter_credential_cannot_join_the_share_or_take_the_worker_client_id() -> None:
    result = run("hostile_meter")
    assert result.notes["share_subscription"] == "Not authorized"
    assert result.notes["wildcard_subscription"] == "Not authorized"
    assert result.notes["worker_client_id"] == "Not authorized"


def test_hostile_payloads_between_good_readings_stop_nothing() -> None:
    result = run("poison_stream")
    assert result.notes["worker_alive"]
    # The crashers alone are ten dead letters; the generated ones add most of the rest.
    assert result.notes["dead_letters"] >= 10
