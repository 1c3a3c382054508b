"""``meterhub sim``: the command line around ``run_simulation`` and the MQTT publisher."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Annotated

import typer

from meterhub.config import get_settings
from meterhub.sim.engine import LONDON, SimOptions
from meterhub.sim.publisher import MqttPublisher
from meterhub.sim.runner import run_simulation
from meterhub.sim.scenario import Scenario
from meterhub.sim.spans import parse_span


def parse_start(text: str | None) -> datetime | None:
    if not text:
        return None
    start = datetime.fromisoformat(text)
    return start if start.tzinfo else start.replace(tzinfo=UTC)


def sim(
    meters: Annotated[
        int, typer.Option(min=1, help="consumer meters (main meters come on top)")
    ] = 200,
    interval: Annotated[str, typer.Option(help="reading interval: 15m, 30m, 1h, 900s")] = "15m",
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 60.0,
    history: Annotated[str, typer.Option(help="past to backfill first: 30d, 12h, 0")] = "0",
    seed: Annotated[int, typer.Option(help="same seed and start: same payloads")] = 0,
    mqtt_url: Annotated[str | None, typer.Option(help="default: METERHUB_MQTT_URL")] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="default: METERHUB_TOPIC_PREFIX")] = None,
    theft_rate: Annotated[float, typer.Option(min=0, max=1, help="fraction of thieves")] = 0.0,
    outage_rate: Annotated[
        float, typer.Option(min=0, max=1, help="outages per meter and per transformer per day")
    ] = 0.0,
    bad_data_rate: Annotated[
        float, typer.Option(min=0, max=1, help="fraction of reading messages damaged")
    ] = 0.0,
    duration: Annotated[
        float | None, typer.Option(help="real seconds to run; default: until interrupted")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="simulated start of the live phase, ISO 8601; default now")
    ] = None,
    lat: Annotated[float, typer.Option(help="latitude of the fleet's centre")] = LONDON[0],
    lon: Annotated[float, typer.Option(help="longitude of the fleet's centre")] = LONDON[1],
) -> None:
    """Simulate a fleet of meters publishing on the MQTT device contract."""
    settings = get_settings()
    try:
        options = SimOptions(
            meters=meters,
            interval_s=parse_span(interval, "m"),
            speed=speed,
            history_s=parse_span(history, "d"),
            seed=seed,
            start=parse_start(start),
            duration_s=duration,
            topic_prefix=topic_prefix or settings.topic_prefix,
            timezone=settings.timezone,
            centre=(lat, lon),
            scenario=Scenario(
                theft_rate=theft_rate, outage_rate=outage_rate, bad_data_rate=bad_data_rate
            ),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    url = mqtt_url or settings.mqtt_url
    with MqttPublisher(url, settings.mqtt_ca_file, client_id=f"meterhub-sim-{seed}") as publisher:
        engine = run_simulation(options, publisher.publish, stop)
        truth = engine.truth
        print(
            f"published {publisher.published} messages for {len(engine.fleet.meters)} meters "
            f"({len(truth.thefts)} thieves, {len(truth.outages)} outages, "
            f"{len(truth.bad_data)} damaged readings)",
            file=sys.stderr,
        )


def register(app: typer.Typer) -> None:
    """Add the ``sim`` command to the meterhub command line."""
    app.command("sim")(sim)
