"""The ingest worker: MQTT in, batches out, acknowledgements only after the commit.

QoS 1 messages are acknowledged (PUBACK) only once the batch holding them is committed, and the
session is persistent (fixed client id, clean start off). A worker killed mid-stream therefore
loses nothing: the broker redelivers every unacknowledged message, and the store's keys make the
redelivery a no-op. Several workers share the load through an MQTT 5 shared subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.ingest.messages import Inbound, IngestRules, process_routed, route
from meterhub.ingest.mqtt_source import Delivery, acknowledge, attach
from meterhub.mqtt import parse_broker_url
from meterhub.readings.model import Rejection
from meterhub.readings.vee import ReadingLimits
from meterhub.store.ingest_writes import IngestWriter, WriteBatch, WriteResult
from meterhub.store.meters import MeterDirectory, mark_stale_meters_offline

log = logging.getLogger("meterhub.ingest")


def rules_from_settings(settings: Settings) -> IngestRules:
    return IngestRules(
        topic_prefix=settings.topic_prefix,
        limits=ReadingLimits(
            max_future=timedelta(seconds=settings.max_future_seconds),
            max_age=timedelta(days=settings.max_age_days),
        ),
        max_payload_bytes=settings.max_payload_bytes,
        accept_unknown_meters=settings.unknown_meters == "register",
    )


def subscription_filters(settings: Settings, mqtt_version: int) -> list[str]:
    filters = [f"{settings.topic_prefix}/+/{kind}" for kind in ("readings", "events", "status")]
    if settings.share_group and mqtt_version == MQTTv50:
        return [f"$share/{settings.share_group}/{f}" for f in filters]
    return filters


def build_batch(
    messages: list[Inbound], rules: IngestRules, directory: MeterDirectory, worker_id: str
) -> WriteBatch:
    """Route, decode and validate a list of messages into one write batch (CPU only)."""
    batch = WriteBatch(received_at=datetime.now(UTC), worker_id=worker_id)
    prefix = rules.topic_prefix
    routes = [route(m.topic, prefix) for m in messages]
    known = directory.known({r[0] for r in routes if not isinstance(r, Rejection)})
    for message, routed in zip(messages, routes, strict=True):
        meter_id = None if isinstance(routed, Rejection) else routed[0]
        is_known = meter_id in known
        outcome = process_routed(message, routed, rules, is_known)
        batch.readings.extend(outcome.readings)
        if outcome.blocks:
            batch.blocks.extend(outcome.blocks)
        if outcome.events:
            batch.events.extend(outcome.events)
        if outcome.dead_letters:
            batch.dead_letters.extend(outcome.dead_letters)
        if outcome.status is not None:
            batch.statuses.append(outcome.status)
        if meter_id is not None and not is_known and not outcome.dead_letters:
            batch.new_meters.add(meter_id)
        if meter_id is not None and is_known and outcome.events:
            batch.seen_meters.add(meter_id)
    return batch


def tune_gc_for_batches() -> None:
    """A batch allocates hundreds of thousands of short-lived objects and hardly any cycles; with
    the default thresholds the collector runs every 700 allocations and cost a fifth of the
    decoding time. Freeze what start-up built and collect young objects less often."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@dataclass
class IngestStats:
    messages: int = 0
    batches: int = 0
    counters: Counter[str] = field(default_factory=Counter)

    def add(self, result: WriteResult) -> None:
        self.batches += 1
        self.counters["accepted"] += result.inserted
        self.counters["duplicate"] += result.duplicates
        self.counters["conflict"] += result.conflicts
        self.counters["rejected"] += result.dead_letters


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        mqtt_version: int = MQTTv50,
        on_batch: Callable[[WriteResult], None] | None = None,
        ack_on_receipt: bool = False,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.mqtt_version = mqtt_version
        self.rules = rules_from_settings(settings)
        self.writer = IngestWriter(engine)
        self.directory = MeterDirectory(engine)
        self.worker_id = settings.effective_worker_id
        self.stats = IngestStats()
        self.on_batch = on_batch
        self.ack_on_receipt = ack_on_receipt
        self._pending: list[Delivery] = []
        self._client: Client | None = None
        self._writing = False
        self._wake = asyncio.Event()
        self.connected = asyncio.Event()
        # Set (thread-safely) once the broker has acknowledged every subscription.
        self.subscribed = threading.Event()
        self._subscriptions_pending = 0

    def _receive(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        if len(self._pending) >= self.settings.batch_max:
            self._wake.set()

    def _on_subscribe(self, client: Client, mid: int, qos: Any, properties: Any) -> None:
        self._subscriptions_pending -= 1
        if self._subscriptions_pending <= 0 and not self.subscribed.is_set():
            self.subscribed.set()
            log.info("ingest worker %s subscribed", self.worker_id)

    def _build(self, deliveries: list[Delivery]) -> WriteBatch:
        received_at = datetime.now(UTC)
        messages = [Inbound(d.topic, d.payload, received_at) for d in deliveries]
        return build_batch(messages, self.rules, self.directory, self.worker_id)

    def _write(self, batch: WriteBatch) -> WriteResult:
        result = self.writer.write(batch)
        self.directory.remember(batch.new_meters)
        return result

    async def _store(self, deliveries: list[Delivery], batch: WriteBatch) -> None:
        """Write one batch, retrying until the database takes it, then acknowledge it."""
        backoff = 0.5
        while True:
            try:
                result = await asyncio.to_thread(self._write, batch)
                break
            except Exception:
                # The database is unreachable or refused the batch: keep the messages
                # unacknowledged and try again; the broker holds everything else.
                log.exception("batch of %d messages not stored; retrying", len(deliveries))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        self.stats.messages += len(deliveries)
        self.stats.add(result)
        if self.on_batch is not None:
            self.on_batch(result)
        if self._client is not None:
            acknowledge(self._client, deliveries)

    async def _flush_forever(self) -> None:
        """Decode batch N+1 while batch N is being written: the database works on the other
        core meanwhile. Writes stay strictly one after the other, in arrival order."""
        delay = self.settings.batch_ms / 1000
        storing: asyncio.Task[None] | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if not self._pending:
                if storing is not None and storing.done():
                    storing = None
                    self._writing = False
                continue
            deliveries, self._pending = self._pending, []
            self._writing = True
            batch = await asyncio.to_thread(self._build, deliveries)
            if storing is not None:
                await storing
            storing = asyncio.create_task(self._store(deliveries, batch))
            storing.add_done_callback(lambda _task: self._wake.set())

    async def _sweep_offline_forever(self) -> None:
        while True:
            await asyncio.sleep(min(60.0, self.settings.offline_after_seconds / 4))
            try:
                await asyncio.to_thread(
                    mark_stale_meters_offline,
                    self.engine,
                    timedelta(seconds=self.settings.offline_after_seconds),
                )
            except Exception:
                log.exception("offline sweep failed")

    async def run(self, stop: asyncio.Event) -> None:
        tune_gc_for_batches()
        address = parse_broker_url(self.settings.mqtt_url)
        client = Client(
            self.worker_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            session_expiry_interval=7 * 24 * 3600,
            receive_maximum=65535,
        )
        attach(client, self._receive, ack_on_receipt=self.ack_on_receipt)
        self._client = client
        client.on_connect = lambda *_: self.connected.set()
        client.on_subscribe = self._on_subscribe
        if address.username:
            client.set_auth_credentials(address.username, address.password)
        context = address.ssl_context(
            self.settings.mqtt_ca_file,
            self.settings.mqtt_client_cert,
            self.settings.mqtt_client_key,
        )
        tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self._sweep_offline_forever()),
        ]
        await client.connect(
            address.host,
            address.port,
            ssl=context or False,
            version=self.mqtt_version,
            keepalive=30,
        )
        filters = subscription_filters(self.settings, self.mqtt_version)
        self._subscriptions_pending = len(filters)
        for topic_filter in filters:
            client.subscribe(topic_filter, qos=1)
        log.info("ingest worker %s connected to %s:%s", self.worker_id, address.host, address.port)
        started = time.monotonic()
        stopped = asyncio.create_task(stop.wait())
        try:
            # A failure in the batching loop is a bug: stop the worker (exit non-zero) rather
            # than go on receiving; everything unacknowledged is redelivered after a restart.
            done, _ = await asyncio.wait({stopped, tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
            if tasks[0] in done:
                tasks[0].result()
        finally:
            stopped.cancel()
            # Let an in-flight batch finish so that its messages are acknowledged.
            deadline = time.monotonic() + 10
            while (self._pending or self._writing) and time.monotonic() < deadline:
                self._wake.set()
                await asyncio.sleep(0.05)
            await client.disconnect()
            for task in tasks:
                task.cancel()
            log.info(
                "ingest worker stopped after %.0f s: %d messages, %s",
                time.monotonic() - started,
                self.stats.messages,
                dict(self.stats.counters),
            )


__all__ = ["IngestWorker", "MQTTv50", "MQTTv311", "build_batch", "rules_from_settings"]
