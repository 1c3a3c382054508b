"""`meterhub ingest`: the worker plus, by default, the interval deriver beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gmqtt.mqtt.constants import MQTTv50
from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.ingest.deriver import IntervalDeriver
from meterhub.ingest.worker import IngestWorker
from meterhub.store.db import make_engine

log = logging.getLogger("meterhub.ingest")


async def derive_forever(
    deriver: IntervalDeriver, stop: asyncio.Event, idle_seconds: float = 1.0
) -> None:
    """Drain queued interval work; sleep when there is none. Runs in a thread per chunk so that
    the event loop keeps receiving (and acknowledging) messages meanwhile."""
    while not stop.is_set():
        try:
            processed = await asyncio.to_thread(deriver.run_once)
        except Exception:
            log.exception("interval derivation failed; will retry")
            processed = 0
        if not processed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=idle_seconds)


async def run_ingest(
    settings: Settings,
    stop: asyncio.Event,
    *,
    derive: bool = True,
    engine: Engine | None = None,
    mqtt_version: int = MQTTv50,
    retire: bool = False,
) -> IngestWorker:
    """Run until ``stop``; with ``retire``, until the worker's session is drained and ended."""
    engine = engine or make_engine(settings.database_url)
    worker = IngestWorker(settings, engine, mqtt_version=mqtt_version, retire=retire)
    tasks = [asyncio.create_task(worker.run(stop))]
    if derive:
        tasks.append(asyncio.create_task(derive_forever(IntervalDeriver(settings, engine), stop)))
    await asyncio.gather(*tasks)
    return worker
