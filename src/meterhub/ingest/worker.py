"""The ingest worker: MQTT in, batches out, acknowledgements only after the commit.

QoS 1 messages are acknowledged (PUBACK) only once the batch holding them is committed, and the
session is persistent (fixed client id, clean start off). A worker killed mid-stream therefore
loses nothing: the broker redelivers every unacknowledged message, and the store's keys make the
redelivery a no-op. Several workers share the load through an MQTT 5 shared subscription.

No single message may stop ingestion for the other meters. A message whose handling raises becomes
a dead letter (``internal_error``); a batch the database refuses for its rows is cut down until
the refused rows are found and kept as dead letters (``store_refused``), while a database that is
away is waited for with nothing acknowledged; a message that ends the process anyway is
recognised after the restart by the crash journal and quarantined (``ingest/crash_journal.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.ingest import batches
from meterhub.ingest.batches import Handled
from meterhub.ingest.crash_journal import CrashJournal, digest
from meterhub.ingest.messages import Inbound, IngestRules
from meterhub.ingest.mqtt_source import Delivery, acknowledge
from meterhub.ingest.session import BrokerSession, subscription_filters
from meterhub.readings.vee import ReadingLimits
from meterhub.store.failures import is_transient
from meterhub.store.ingest_writes import IngestWriter, WriteBatch, WriteResult
from meterhub.store.meters import MeterDirectory, mark_stale_meters_offline

log = logging.getLogger("meterhub.ingest")

# Decoding one batch is CPU work of milliseconds; this long means a handler that never returns.
# The worker then ends itself (exit status 70), and the crash journal takes it from there. The
# meter directory's look-ups (the database) are outside this limit: a database that does not
# answer is waited for, never taken for a poison message.
DECODE_STALL_SECONDS = 120.0
STALL_EXIT_STATUS = 70
MAX_BACKOFF_SECONDS = 30.0


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


def build_batch(
    messages: list[Inbound], rules: IngestRules, directory: MeterDirectory, worker_id: str
) -> WriteBatch:
    """Route, decode and validate a list of messages into one write batch (no writes; the
    meter directory may look up meters it has not seen yet)."""
    handled = batches.handle(messages, rules, directory.known)
    return batches.merge(handled, datetime.now(UTC), worker_id)


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


@dataclass(slots=True)
class _Work:
    """Messages taken from the connection together, and what they became."""

    deliveries: list[Delivery]
    received_at: datetime
    messages: list[Inbound] = field(default_factory=list)
    routes: list[batches.Routed] = field(default_factory=list)
    known: set[str] = field(default_factory=set)
    handled: list[Handled] = field(default_factory=list)


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        mqtt_version: int = MQTTv50,
        on_batch: Callable[[WriteResult], None] | None = None,
        ack_on_receipt: bool = False,
        exit_process: Callable[[int], Any] = os._exit,
        retire: bool = False,
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
        self.retire = retire
        self._exit_process = exit_process
        self.session = BrokerSession(
            settings,
            self._receive,
            mqtt_version=mqtt_version,
            ack_on_receipt=ack_on_receipt,
            subscribe=not retire,
        )
        self.subscribed = self.session.subscribed
        self.connected = self.session.connected
        self.journal = CrashJournal(settings.data_dir / f"ingest-{self.worker_id}.journal")
        self._pending: list[Delivery] = []
        # Redelivered messages that were in flight when the worker last died: one at a time.
        self._suspects: deque[Delivery] = deque()
        self._writing = False
        self._wake = asyncio.Event()

    # -- receiving (event loop) ------------------------------------------------------------

    def _receive(self, delivery: Delivery) -> None:
        if self.journal.suspects or self.journal.culprits:
            key = digest(delivery.topic, delivery.payload)
            if key in self.journal.suspects or key in self.journal.culprits:
                self._suspects.append(delivery)
                self._wake.set()
                return
        self._pending.append(delivery)
        if len(self._pending) >= self.settings.batch_max:
            self._wake.set()

    # -- handling (worker thread) ----------------------------------------------------------

    def _prepare(self, work: _Work, *, alone: bool = False) -> None:
        """Journal the messages, route them and ask which meters are registered. The journal
        must name the messages before anything that could end the process touches them."""
        self.journal.working_on((digest(d.topic, d.payload) for d in work.deliveries), alone=alone)
        work.messages = [Inbound(d.topic, d.payload, work.received_at) for d in work.deliveries]
        work.routes = batches.route_all(work.messages, self.rules.topic_prefix)
        work.known = self.directory.known(batches.meters_of(work.routes))

    def _handle(self, work: _Work) -> None:
        """Decode and validate: CPU only, the part the stall watchdog covers."""
        work.handled = batches.handle_routed(work.messages, work.routes, self.rules, work.known)

    def _write(self, part: list[Handled], received_at: datetime) -> WriteResult:
        batch = batches.merge(part, received_at, self.worker_id)
        result = self.writer.write(batch)
        self.directory.remember(batch.new_meters)
        return result

    # -- the loop (event loop) -------------------------------------------------------------

    async def _decode(self, work: _Work, *, alone: bool = False) -> None:
        backoff = 0.5
        while True:
            try:
                await asyncio.to_thread(self._prepare, work, alone=alone)
                break
            except Exception as exc:
                # The meter directory asks the database: wait for it, as the store does.
                log.warning(
                    "cannot look the batch's meters up (%s: %s); retrying in %.1f s",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:200] if str(exc) else "",
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.to_thread(self._handle, work)),
                timeout=DECODE_STALL_SECONDS,
            )
        except TimeoutError:
            log.critical(
                "decoding %d messages took over %.0f s: a handler never returns. Ending the "
                "process; after the restart the crash journal isolates the message",
                len(work.deliveries),
                DECODE_STALL_SECONDS,
            )
            self._exit_process(STALL_EXIT_STATUS)
            raise

    async def _store(self, work: _Work) -> None:
        """Write, waiting while the database is away, cutting down what it refuses; then
        acknowledge everything."""
        queue: deque[list[Handled]] = deque([work.handled]) if work.handled else deque()
        total = WriteResult()
        backoff = 0.5
        while True:
            try:
                await asyncio.to_thread(
                    batches.write_all,
                    queue,
                    partial(self._write, received_at=work.received_at),
                    total,
                )
                break
            except Exception as exc:
                # Keep the messages unacknowledged; the broker holds everything else.
                if is_transient(exc):
                    log.warning(
                        "database unavailable (%s: %s); %d messages wait, retrying in %.1f s",
                        type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "",
                        len(work.deliveries),
                        backoff,
                    )
                else:
                    log.exception("a dead letter was refused; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self.stats.messages += len(work.deliveries)
        self.stats.add(total)
        if self.on_batch is not None:
            self.on_batch(total)
        acknowledge(self.session.client, work.deliveries)

    async def _suspect(self, delivery: Delivery) -> None:
        """A message in flight at the last crash: alone, or quarantined if it was alone then."""
        key = digest(delivery.topic, delivery.payload)
        work = _Work([delivery], datetime.now(UTC))
        if key in self.journal.culprits:
            log.error("quarantining a message on %s that ended the worker twice", delivery.topic)
            message = Inbound(delivery.topic, delivery.payload, work.received_at)
            work.handled = [
                batches.quarantined(
                    message, self.rules.topic_prefix, self.settings.max_payload_bytes
                )
            ]
        else:
            await self._decode(work, alone=True)
        await self._store(work)
        self.journal.resolved(key)

    async def _flush_forever(self) -> None:
        """Decode batch N+1 while batch N is being written: the database works on the other
        core meanwhile. Writes stay strictly one after the other, in arrival order."""
        delay = self.settings.batch_ms / 1000
        storing: asyncio.Task[None] | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if self._suspects:
                self._writing = True
                if storing is not None:
                    await storing
                    storing = None
                while self._suspects:
                    await self._suspect(self._suspects.popleft())
            if not self._pending:
                if storing is None or storing.done():
                    if storing is not None:
                        storing.result()
                    storing = None
                    self._writing = False
                continue
            work = _Work(self._pending, datetime.now(UTC))
            self._pending = []
            self._writing = True
            await self._decode(work)
            if storing is not None:
                await storing
            storing = asyncio.create_task(self._store(work))
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

    @property
    def busy(self) -> bool:
        return bool(self._pending or self._suspects or self._writing)

    async def run(self, stop: asyncio.Event) -> None:
        tune_gc_for_batches()
        self.journal.open()
        flushing = asyncio.create_task(self._flush_forever())
        tasks = [flushing, asyncio.create_task(self.session.watch(stop))]
        if not self.retire:
            tasks.append(asyncio.create_task(self._sweep_offline_forever()))
        await self.session.connect()
        log.info("ingest worker %s connected to %s", self.worker_id, self.settings.mqtt_url)
        started = time.monotonic()
        if self.retire:
            tasks.append(asyncio.create_task(self._drain_then_stop(stop)))
        stopped = asyncio.create_task(stop.wait())
        clean = False
        try:
            # A failure in the batching loop is a bug: stop the worker (exit non-zero) rather
            # than go on receiving; everything unacknowledged is redelivered after a restart.
            done, _ = await asyncio.wait({stopped, flushing}, return_when=asyncio.FIRST_COMPLETED)
            if flushing in done:
                flushing.result()
            clean = True
        finally:
            stopped.cancel()
            # Let an in-flight batch finish so that its messages are acknowledged.
            deadline = time.monotonic() + 10
            while self.busy and time.monotonic() < deadline and not flushing.done():
                self._wake.set()
                await asyncio.sleep(0.05)
            if clean and not self.busy:
                self.journal.idle()
            await self.session.close(end_session=self.retire and clean and not self.busy)
            for task in tasks:
                task.cancel()
            self.journal.close()
            log.info(
                "ingest worker stopped after %.0f s: %d messages, %s",
                time.monotonic() - started,
                self.stats.messages,
                dict(self.stats.counters),
            )

    async def _drain_then_stop(self, stop: asyncio.Event, quiet_seconds: float = 3.0) -> None:
        """Retiring: take what the broker kept in this session, store it, then end the session
        so that the broker routes nothing more to it."""
        await self.session.connected.wait()
        await self.session.unsubscribe()
        while True:
            await asyncio.sleep(0.2)
            quiet = time.monotonic() - self.session.last_delivery
            if quiet >= quiet_seconds and not self.busy:
                break
        log.info(
            "retired ingest worker %s: %d messages taken from its session",
            self.worker_id,
            self.stats.messages,
        )
        stop.set()


__all__ = [
    "IngestWorker",
    "MQTTv50",
    "MQTTv311",
    "build_batch",
    "rules_from_settings",
    "subscription_filters",
]
