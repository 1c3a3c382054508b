"""The ``sim`` command's options and the thread-friendly ``run_simulation`` entry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import typer
from typer.testing import CliRunner

from meterhub.cli.sim import register
from meterhub.sim.engine import Publication, SimOptions
from meterhub.sim.runner import run_simulation
from meterhub.sim.spans import parse_span

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "unit", "seconds"),
    [
        ("15m", "m", 900),
        ("30m", "m", 1800),
        ("1h", "m", 3600),
        ("900s", "m", 900),
        ("15", "m", 900),
        ("30d", "d", 30 * 86_400),
        ("0", "d", 0),
    ],
)
def test_spans_accept_seconds_minutes_hours_and_days(text: str, unit: str, seconds: int):
    assert parse_span(text, unit) == seconds


@pytest.mark.parametrize("text", ["", "15 minutes", "-1h", "1.5h", "15 m s"])
def test_other_spans_are_refused(text: str):
    with pytest.raises(ValueError, match="is not a span"):
        parse_span(text)


def test_register_adds_the_sim_command_with_its_options():
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command keeps Typer from collapsing to a single command
        pass

    result = CliRunner().invoke(app, ["sim", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--meters",
        "--interval",
        "--speed",
        "--history",
        "--seed",
        "--mqtt-url",
        "--topic-prefix",
        "--theft-rate",
        "--outage-rate",
        "--bad-data-rate",
        "--duration",
        "--start",
    ):
        assert option in result.output


def test_run_simulation_publishes_statuses_history_live_then_offline():
    published: list[Publication] = []
    options = SimOptions(
        meters=30, history_s=86_400, speed=1e9, start=START, end=START + timedelta(hours=2)
    )
    engine = run_simulation(options, published.append)
    statuses = [p for p in published if p.topic.endswith("/status")]
    meters = len(engine.fleet.meters)
    assert orjson.loads(statuses[0].payload)["online"] is True
    assert all(orjson.loads(p.payload) == {"online": False} for p in statuses[-meters:])
    live = [
        p for p in published if p.topic.endswith("/readings") and b'"readings"' not in p.payload
    ]
    assert len(live) == 8 * meters  # 2 h of 15-minute readings after the day of history


def test_run_simulation_stops_when_asked():
    stop = threading.Event()
    stop.set()
    published: list[Publication] = []
    run_simulation(SimOptions(meters=10, start=START, speed=1.0), published.append, stop)
    assert not [p for p in published if p.topic.endswith("/readings")]
