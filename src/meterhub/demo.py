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
from sqlalchemy import Engine, insert, select

from meterhub.config import Settings
from meterhub.embedded_broker import free_port, start_broker
from meterhub.ingest.deriver import IntervalDeriver
from meterhub.ingest.service import derive_forever
from meterhub.ingest.worker import IngestWorker
from meterhub.sim.command import parse_span
from meterhub.sim.engine import Engine as SimEngine
from meterhub.sim.engine import SimOptions, resolve_start
from meterhub.sim.fleet import Fleet
from meterhub.sim.publisher import MqttPublisher
from meterhub.sim.runner import run_simulation
from meterhub.sim.scenario import Scenario
from meterhub.store import schema
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
        if conn.execute(select(schema.meters.c.id).limit(1)).first() is not None:
            return 0
        feeders = sorted({m.feeder_id for m in fleet.meters})
        conn.execute(
            insert(schema.feeders),
            [{"id": f, "name": f"Feeder {f}", "created_at": at} for f in feeders],
        )
        conn.execute(
            insert(schema.transformers),
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
        consumers = [m for m in fleet.meters if m.kind == "consumer"]
        conn.execute(
            insert(schema.consumers),
            [
                {
                    "id": f"C-{m.meter_id}",
                    "name": f"Consumer of {m.meter_id}",
                    "tariff_category": "domestic",
                    "created_at": at,
                }
                for m in consumers
            ],
        )
        conn.execute(
            insert(schema.meters),
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
    database_url = f"sqlite:///{options.data_dir / 'meterhub.db'}"
    broker_port = free_port()
    web_port = options.web_port or free_port()
    settings = Settings(
        database_url=database_url,
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
    engine = make_engine(database_url)
    upgrade(engine)

    now = datetime.now(UTC)
    history_s = parse_span(options.history) if options.history not in ("", "0") else 0
    sim_options = SimOptions(
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
    fleet = SimEngine(sim_options, resolve_start(sim_options, now)).fleet
    registered = register_fleet(engine, fleet, now)
    log.info("registered %d meters", registered)

    broker = await start_broker(broker_port)
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

    sim_stop = threading.Event()

    def simulate() -> None:
        with MqttPublisher(settings.mqtt_url, client_id="meterhub-demo-sim", mqtt_v5=False) as pub:
            run_simulation(sim_options, pub.publish, sim_stop, now=now)

    sim_thread = threading.Thread(target=simulate, name="simulator", daemon=True)
    sim_thread.start()

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=web_port, log_level="warning"
        )
    )
    tasks.append(asyncio.create_task(server.serve()))
    print(
        f"\nmeterhub demo is running\n"
        f"  web app      http://127.0.0.1:{web_port}/\n"
        f"  API docs     http://127.0.0.1:{web_port}/api/docs\n"
        f"  MQTT broker  mqtt://127.0.0.1:{broker_port}"
        f"  (topics {settings.topic_prefix}/<meter>/...)\n"
        f"  database     {database_url}\n"
        f"  fleet        {len(fleet.meters)} meters, {options.history} of history, "
        f"then {options.speed:g}x time-lapse\n"
        f"Press Ctrl-C to stop.\n",
        flush=True,
    )
    if options.duration is not None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=options.duration)
        except TimeoutError:
            stop.set()
    else:
        await stop.wait()
    sim_stop.set()
    await asyncio.to_thread(sim_thread.join, 15)
    server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    await broker.shutdown()
    log.info("demo stopped: %d messages ingested", worker.stats.messages)
