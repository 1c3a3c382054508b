"""`meterhub demo`: the whole chain in one process on embedded defaults.

An amqtt broker on a free loopback port, SQLite in the data directory, the ingest worker and the
interval deriver, the simulator (history first, then a time-lapse), and the web app. The fleet's
topology (feeders, transformers, consumers, meters) is registered before the simulator starts,
so ingestion runs with the production default of rejecting unknown meters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from gmqtt.mqtt.constants import MQTTv311
from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.embedded_broker import free_port, start_broker
from meterhub.ingest.deriver import IntervalDeriver
from meterhub.ingest.service import derive_forever
from meterhub.ingest.worker import IngestWorker
from meterhub.sim.engine import Engine as SimEngine
from meterhub.sim.engine import SimOptions, resolve_start
from meterhub.sim.fleet import Fleet
from meterhub.sim.publisher import MqttPublisher
from meterhub.sim.runner import run_simulation
from meterhub.sim.scenario import Scenario
from meterhub.sim.spans import parse_span
from meterhub.store import consumers as consumer_store
from meterhub.store import meters as meter_store
from meterhub.store import network as network_store
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade
from meterhub.web.app import create_app

log = logging.getLogger("meterhub.demo")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    meters: int = 300
    speed: float = 120.0
    history: str = "7d"
    web_port: int = 8000
    data_dir: Path = Path("data")
    duration: float | None = None
    seed: int = 1
    timezone: str = "Asia/Kathmandu"


def register_fleet(engine: Engine, fleet: Fleet, at: datetime) -> int:
    """Insert the simulated hierarchy once; a restarted demo finds it already there."""
    with engine.begin() as conn:
        if meter_store.any_meter(conn):
            return 0
        feeders = sorted({m.feeder_id for m in fleet.meters})
        network_store.insert_feeders(
            conn, [{"id": f, "name": f"Feeder {f}", "created_at": at} for f in feeders]
        )
        network_store.insert_transformers(
            conn,
            [
                {
                    "id": t.transformer_id,
                    "feeder_id": t.feeder_id,
                    "name": t.transformer_id,
                    "capacity_kva": t.rating_kva,
                    "main_meter_id": fleet.meters[t.main].meter_id,
                    "latitude": fleet.meters[t.main].lat,
                    "longitude": fleet.meters[t.main].lon,
                    "created_at": at,
                }
                for t in fleet.transformers
            ],
        )
        consumer_store.insert_consumers(
            conn,
            [
                {
                    "id": f"C-{m.meter_id}",
                    "name": f"Consumer of {m.meter_id}",
                    "tariff_category": "domestic",
                    "created_at": at,
                }
                for m in fleet.meters
                if m.kind == "consumer"
            ],
        )
        meter_store.insert_meters(
            conn,
            [
                {
                    "id": m.meter_id,
                    "consumer_id": f"C-{m.meter_id}" if m.kind == "consumer" else None,
                    "transformer_id": m.transformer_id,
                    "feeder_id": m.feeder_id,
                    "role": "consumer" if m.kind == "consumer" else "transformer_main",
                    "latitude": m.lat,
                    "longitude": m.lon,
                    "sanctioned_load_kw": m.sanctioned_load_kw,
                    "phase": 3 if m.phase == "ABC" else 1,
                    "created_at": at,
                }
                for m in fleet.meters
            ],
        )
    return len(fleet.meters)


async def run_demo(options: DemoOptions, stop: asyncio.Event) -> None:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    broker_port = free_port()
    settings = demo_settings(options, broker_port=broker_port)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    sim_options = simulation_options(options, now)
    fleet = SimEngine(sim_options, resolve_start(sim_options, now)).fleet
    log.info("registered %d meters", register_fleet(engine, fleet, now))

    broker = await start_broker(broker_port)
    worker, tasks = await start_ingest(settings, engine, stop)
    sim_stop = threading.Event()
    sim_thread = start_simulator(settings, sim_options, now, sim_stop)
    web_port = options.web_port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=web_port, log_level="warning"
        )
    )
    tasks.append(asyncio.create_task(server.serve()))
    print(banner(options, settings, web_port, len(fleet.meters)), flush=True)

    await wait_for_stop(stop, options.duration)
    sim_stop.set()
    await asyncio.to_thread(sim_thread.join, 15)
    server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await broker.shutdown()
    log.info("demo stopped: %d messages ingested", worker.stats.messages)


def demo_settings(options: DemoOptions, *, broker_port: int) -> Settings:
    """SQLite in the data directory, the embedded broker, and what a time-lapse needs."""
    return Settings(
        database_url=f"sqlite:///{options.data_dir / 'meterhub.db'}",
        data_dir=options.data_dir,
        mqtt_url=f"mqtt://127.0.0.1:{broker_port}",
        share_group="",  # amqtt has no shared subscriptions; one worker does the demo's load
        worker_id="meterhub-demo-ingest",
        timezone=options.timezone,
        # The demo is a time-lapse: its simulated clock runs ahead of the wall clock.
        max_future_seconds=30 * 86400,
        offline_after_seconds=30 * 86400,
        unknown_meters="reject",
        # Short SQLite transactions, so that the web app's reads never wait long.
        batch_max=500,
        derive_chunk_meters=10,
    )


def simulation_options(options: DemoOptions, now: datetime) -> SimOptions:
    """The history first (ending an hour ago), then the time-lapse, around Kathmandu."""
    history_s = parse_span(options.history) if options.history not in ("", "0") else 0
    return SimOptions(
        meters=options.meters,
        interval_s=900,
        speed=options.speed,
        history_s=history_s,
        seed=options.seed,
        start=now - timedelta(hours=1),
        duration_s=options.duration,
        timezone=options.timezone,
        centre=(27.7172, 85.3240),
        scenario=Scenario(theft_rate=0.03, outage_rate=0.01, bad_data_rate=0.002),
    )


async def start_ingest(
    settings: Settings, engine: Engine, stop: asyncio.Event
) -> tuple[IngestWorker, list[asyncio.Task[None]]]:
    """The ingest worker and the interval deriver, running once the worker has subscribed."""
    # amqtt gives up on a QoS 1 delivery (and drops it) when its PUBACK takes more than 5 s,
    # whatever the backlog; acknowledging after the commit would lose messages while the history
    # floods in. The in-process demo therefore acknowledges on receipt; production brokers
    # (Mosquitto, EMQX) wait, and there ingest acknowledges only after the commit.
    worker = IngestWorker(settings, engine, mqtt_version=MQTTv311, ack_on_receipt=True)
    deriver = IntervalDeriver(settings, engine)
    tasks = [
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(derive_forever(deriver, stop)),
    ]
    await asyncio.to_thread(worker.subscribed.wait, 30)
    return worker, tasks


def start_simulator(
    settings: Settings, sim_options: SimOptions, now: datetime, sim_stop: threading.Event
) -> threading.Thread:
    """The simulator publishing to the embedded broker, in a thread, until ``sim_stop``."""

    def simulate() -> None:
        with MqttPublisher(settings.mqtt_url, client_id="meterhub-demo-sim", mqtt_v5=False) as pub:
            run_simulation(sim_options, pub.publish, sim_stop, now=now)

    thread = threading.Thread(target=simulate, name="simulator", daemon=True)
    thread.start()
    return thread


def banner(options: DemoOptions, settings: Settings, web_port: int, meters: int) -> str:
    return (
        f"\nmeterhub demo is running\n"
        f"  web app      http://127.0.0.1:{web_port}/\n"
        f"  API docs     http://127.0.0.1:{web_port}/api/docs\n"
        f"  MQTT broker  {settings.mqtt_url}"
        f"  (topics {settings.topic_prefix}/<meter>/...)\n"
        f"  database     {settings.database_url}\n"
        f"  fleet        {meters} meters, {options.history} of history, "
        f"then {options.speed:g}x time-lapse\n"
        f"Press Ctrl-C to stop.\n"
    )


async def wait_for_stop(stop: asyncio.Event, duration: float | None) -> None:
    """Until ``stop`` is set, or ``duration`` seconds have passed (then ``stop`` is set)."""
    if duration is None:
        await stop.wait()
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=duration)
    except TimeoutError:
        stop.set()
