"""The edge gateway pipeline: source -> framing -> parse -> aggregate -> spool -> uplink.

Stages are tasks joined by bounded asyncio queues, so a slow uplink never makes memory grow: the
spool absorbs outages, the queues give back-pressure to the source. A frame that does not parse is
counted by reason and logged; it never stops the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from meterhub.edge.aggregate import UTC_ZONE, aggregator_for
from meterhub.edge.dropwatch import DropNotice, DropWatch, Phase
from meterhub.edge.framing import framer_for
from meterhub.edge.spool import Spool
from meterhub.edge.uplink import Uplink
from meterhub.mqtt import parse_broker_url
from meterhub.protocols.base import ParseContext, ParseError, parser_for
from meterhub.readings.model import CONTRACT_FIELDS, Reading

log = logging.getLogger("meterhub.edge")


def reading_payload(reading: Reading, *, extra: bool = True) -> bytes:
    """The contract's reading object. The topic names the meter, so ``meter_id`` is left out.
    With ``extra``, the reading's extra fields go at the top level, where the platform keeps
    unknown fields as the reading's extra (nesting them under "extra" would store
    {"extra": {...}}); they never replace a contract field."""
    document: dict[str, Any] = {"ts": reading.ts.isoformat()}
    for name in CONTRACT_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            document[name] = value
    if extra:
        for name, value in reading.extra.items():
            document.setdefault(name, value)
    return orjson.dumps(document)


@dataclass(slots=True)
class GatewayOptions:
    format_name: str
    meter_id: str
    mqtt_url: str
    spool_path: Path
    # Zone of meters that send local time. None: each format's own default (Europe/Amsterdam for
    # DSMR, UTC for the others); summaries then align to UTC.
    timezone: ZoneInfo | None = None
    # MQTT client id. None: the URL's username (with Mosquitto's dynamic security, a meter's
    # credential is bound to a client id equal to its meter id), else the meter id.
    client_id: str | None = None
    # Forwarded readings carry the contract's fields only; True adds what the parser keeps
    # beyond them (the OBIS map, M-Bus channels, the frame's own ids): 4 to 13 times the bytes
    # of a DSMR reading (benchmarks/edge_spool.py).
    forward_extra: bool = False
    ca_file: Path | None = None
    topic_prefix: str = "meters"
    aggregate: timedelta | None = None
    spool_max_messages: int | None = 100_000
    spool_max_bytes: int | None = 64 * 1024 * 1024
    spool_synchronous: str = "FULL"  # SQLite: FULL survives a power cut, NORMAL only a crash
    encryption_key: bytes | None = None
    authentication_key: bytes | None = None
    source_name: str = ""
    status_interval_s: float = 60.0
    reconnect_max_s: int = 30
    drain_timeout_s: float = 10.0  # at the end of a finite source: how long to wait for acks
    queue_size: int = 1000


@dataclass(slots=True)
class GatewayCounters:
    bytes_read: int = 0
    frames: int = 0
    parse_errors: Counter[str] = field(default_factory=Counter)
    readings: int = 0
    messages: int = 0  # readings or summaries handed to the spool


class Gateway:
    def __init__(self, options: GatewayOptions, source: AsyncIterator[bytes]) -> None:
        self.options = options
        self.source = source
        self.counters = GatewayCounters()
        self.framer = framer_for(options.format_name)
        self.parser = parser_for(options.format_name)
        self.aggregator = aggregator_for(options.aggregate, options.timezone or UTC_ZONE)
        # The credential speaks for --meter-id only: every parser takes the context's meter id
        # over a frame's own (and keeps the frame's id in the reading's extra).
        self.context = ParseContext(
            meter_id=options.meter_id,
            timezone=options.timezone,  # None: the format's own zone (DSMR: Europe/Amsterdam)
            encryption_key=options.encryption_key,
            authentication_key=options.authentication_key,
        )
        self._payload_extra = options.aggregate is not None or options.forward_extra
        prefix = f"{options.topic_prefix}/{options.meter_id}"
        self.readings_topic = f"{prefix}/readings"
        self.spool = Spool(
            options.spool_path,
            max_messages=options.spool_max_messages,
            max_bytes=options.spool_max_bytes,
            synchronous=options.spool_synchronous,
        )
        address = parse_broker_url(options.mqtt_url)
        self.client_id = options.client_id or address.username or options.meter_id
        self.uplink = Uplink(
            self.spool,
            address,
            client_id=self.client_id,
            status_topic=f"{prefix}/status",
            ca_file=options.ca_file,
            reconnect_max_s=options.reconnect_max_s,
        )
        self.snapshot: dict[str, Any] = {}  # the latest counters, readable from other threads
        self.drops = DropWatch(reminder_s=options.status_interval_s)

    # -- counters ----------------------------------------------------------------------------

    def counters_document(self) -> dict[str, Any]:
        uplink = self.uplink.counters
        return {
            "bytes_read": self.counters.bytes_read,
            "bytes_sent": uplink.bytes_sent,
            "frames": self.counters.frames,
            "skipped_bytes": self.framer.skipped_bytes,
            "oversize_frames": self.framer.oversize,
            "parse_errors": dict(self.counters.parse_errors),
            "readings": self.counters.readings,
            "messages": self.counters.messages,
            "published": uplink.published,
            "not_delivered": uplink.not_delivered,
            "rejected": uplink.rejected,
            "spooled": len(self.spool),
            "spool_bytes": self.spool.size_bytes,
            "dropped": self.spool.dropped,
        }

    def status_payload(self, online: bool) -> bytes:
        return orjson.dumps(
            {
                "online": online,
                "gateway": "meterhub-edge",
                "source": self.options.source_name,
                "format": self.options.format_name,
                "aggregate": (
                    int(self.options.aggregate.total_seconds()) if self.options.aggregate else None
                ),
                "counters": self.snapshot,
            }
        )

    def _report(self, final: bool = False) -> None:
        self.snapshot = self.counters_document()
        c = self.snapshot
        log.info(
            "edge %s meter_id=%s bytes_read=%d bytes_sent=%d frames=%d readings=%d messages=%d "
            "published=%d not_delivered=%d spooled=%d dropped=%d parse_errors=%d",
            "final" if final else "counters",
            self.options.meter_id,
            c["bytes_read"],
            c["bytes_sent"],
            c["frames"],
            c["readings"],
            c["messages"],
            c["published"],
            c["not_delivered"],
            c["spooled"],
            c["dropped"],
            sum(self.counters.parse_errors.values()),
        )

    # -- stages ------------------------------------------------------------------------------

    async def _read(self, frames: asyncio.Queue[bytes | None]) -> None:
        async for chunk in self.source:
            self.counters.bytes_read += len(chunk)
            for frame in self.framer.feed(chunk):
                await frames.put(frame)
        for frame in self.framer.flush():
            await frames.put(frame)

    async def _parse(
        self, frames: asyncio.Queue[bytes | None], readings: asyncio.Queue[Reading | None]
    ) -> None:
        while (frame := await frames.get()) is not None:
            self.counters.frames += 1
            for reading in self._parse_frame(frame):
                await readings.put(reading)
        await readings.put(None)

    def _parse_frame(self, frame: bytes) -> list[Reading]:
        try:
            return self.parser(frame, self.context)
        except ParseError as exc:
            self.counters.parse_errors[exc.code] += 1
            log.warning(
                "edge parse_error meter_id=%s code=%s reason=%s bytes=%d",
                self.options.meter_id,
                exc.code,
                exc.message,
                len(frame),
            )
            return []
        except Exception:  # a parser bug must not stop the meter's data
            self.counters.parse_errors["parser_crash"] += 1
            log.exception(
                "edge parser_crash meter_id=%s bytes=%d", self.options.meter_id, len(frame)
            )
            return []

    async def _aggregate(self, readings: asyncio.Queue[Reading | None]) -> None:
        interval = self.options.aggregate
        # With summaries, look at the wall clock now and then: a meter that goes quiet must not
        # hold its last interval back forever.
        poll_s = None if interval is None else min(60.0, interval.total_seconds())
        while True:
            try:
                reading = await asyncio.wait_for(readings.get(), poll_s)
            except TimeoutError:
                self._spool(self.aggregator.due(datetime.now(UTC)))
                continue
            if reading is None:
                break
            self.counters.readings += 1
            self._spool(self.aggregator.add(reading))
        self._spool(self.aggregator.flush())

    def _spool(self, outgoing: list[Reading]) -> None:
        for reading in outgoing:
            payload = reading_payload(reading, extra=self._payload_extra)
            self.uplink.enqueue(self.readings_topic, payload)
            self.counters.messages += 1
            notice = self.drops.observe(self.spool.last_append_dropped, time.monotonic())
            if notice is not None:
                self._tell_drops(notice)

    def _tell_drops(self, notice: DropNotice) -> None:
        bounds = (
            f"max_messages={self.spool.max_messages} max_bytes={self.spool.max_bytes} "
            f"spooled={len(self.spool)} dropped_total={self.spool.dropped}"
        )
        meter = self.options.meter_id
        if notice.phase is Phase.STARTED:
            log.warning(
                "edge spool_full meter_id=%s %s: the uplink has not delivered for a while and "
                "the spool is at its bound; the oldest messages are being dropped to keep the "
                "newest",
                meter,
                bounds,
            )
        elif notice.phase is Phase.CONTINUING:
            log.warning(
                "edge spool_still_dropping meter_id=%s dropped=%d seconds=%.0f %s",
                meter,
                notice.dropped,
                notice.seconds,
                bounds,
            )
        else:
            log.info(
                "edge spool_stopped_dropping meter_id=%s dropped=%d seconds=%.0f %s",
                meter,
                notice.dropped,
                notice.seconds,
                bounds,
            )

    def _tell_undelivered(self) -> None:
        left = len(self.spool)
        if left:
            log.warning(
                "edge exit_undelivered meter_id=%s spooled=%d spool_bytes=%d: not delivered; "
                "they stay in %s and are sent first at the next start",
                self.options.meter_id,
                left,
                self.spool.size_bytes,
                self.options.spool_path,
            )

    async def _status(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.status_interval_s)
            self._report()
            self.uplink.publish_status(self.status_payload(online=True))

    # -- the whole -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        """Run until ``stop`` is set or a finite source ends; return the final counters."""
        frames: asyncio.Queue[bytes | None] = asyncio.Queue(self.options.queue_size)
        readings: asyncio.Queue[Reading | None] = asyncio.Queue(self.options.queue_size)
        uplink_stop = asyncio.Event()
        self.snapshot = self.counters_document()
        self.uplink.status_payload = self.status_payload(online=True)
        self.uplink.start()
        reader = asyncio.create_task(self._read(frames))
        parser = asyncio.create_task(self._parse(frames, readings))
        aggregator = asyncio.create_task(self._aggregate(readings))
        pump = asyncio.create_task(self.uplink.run(uplink_stop))
        status = asyncio.create_task(self._status(uplink_stop))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
            source_ended = reader.done()
            if not source_ended:
                reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader  # re-raises a source failure
            await frames.put(None)
            await parser
            await aggregator
            if source_ended and not stop.is_set():
                await self.uplink.drain(self.options.drain_timeout_s)
        finally:
            for task in (reader, parser, aggregator, stopper):
                task.cancel()
            uplink_stop.set()
            await asyncio.gather(pump, status, return_exceptions=True)
            self._report(final=True)
            await self.uplink.close(self.status_payload(online=False))
            self._tell_undelivered()
            self.spool.close()
        return self.snapshot
