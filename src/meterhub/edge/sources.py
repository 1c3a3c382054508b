"""Byte sources for the edge gateway: a file, a TCP socket (a ser2net or P1-to-Ethernet bridge)
or a serial port. Each is an async iterator of chunks and knows nothing about frames.

URLs: ``file:PATH`` (``?follow=1`` keeps reading as the file grows, like ``tail -f``),
``tcp://HOST:PORT``, ``serial:///dev/ttyUSB0?baud=115200&bytesize=8&parity=N&stopbits=1``.
DSMR 4/5 P1 ports are 115200 8N1; DSMR 2.2/3.0 are 9600 7E1; Nordic HAN M-Bus is 2400 8E1 (Kaifa,
Aidon) or 2400 8N1 (Kamstrup). Sockets and serial ports that fail are reopened with a backoff
that doubles from 1 s up to ``max_backoff_s``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("meterhub.edge.sources")

CHUNK_BYTES = 4096


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: str  # file | tcp | serial
    path: str = ""
    host: str = ""
    port: int = 0
    follow: bool = False
    serial: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """For logs and the status payload."""
        if self.kind == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"{self.kind}:{self.path}"


def _flag(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def parse_source_url(url: str) -> SourceSpec:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ValueError(f"source {url!r}: file: needs a path, e.g. file:/var/log/p1.txt")
        return SourceSpec("file", path=path, follow=_flag(query.get("follow", "0")))
    if parts.scheme == "tcp":
        if not parts.hostname or not parts.port:
            raise ValueError(f"source {url!r}: use tcp://HOST:PORT")
        return SourceSpec("tcp", host=parts.hostname, port=parts.port)
    if parts.scheme == "serial":
        if not parts.path:
            raise ValueError(f"source {url!r}: use serial:///dev/ttyUSB0?baud=115200")
        try:
            baudrate = int(query.get("baud", "115200"))
            bytesize = int(query.get("bytesize", "8"))
            stopbits = float(query.get("stopbits", "1"))
        except ValueError:
            raise ValueError(f"source {url!r}: baud, bytesize and stopbits are numbers") from None
        parity = query.get("parity", "N").upper()[:1]
        if parity not in ("N", "E", "O", "M", "S"):
            raise ValueError(f"source {url!r}: parity is one of N, E, O, M, S")
        # Checked here, not left to pyserial: a setting it refuses would be retried forever.
        if bytesize not in (5, 6, 7, 8):
            raise ValueError(f"source {url!r}: bytesize is one of 5, 6, 7, 8")
        if stopbits not in (1, 1.5, 2):
            raise ValueError(f"source {url!r}: stopbits is one of 1, 1.5, 2")
        if baudrate <= 0:
            raise ValueError(f"source {url!r}: baud must be positive")
        settings = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
        }
        return SourceSpec("serial", path=parts.path, serial=settings)
    raise ValueError(f"source {url!r}: use file:PATH, tcp://HOST:PORT or serial:///dev/ttyX")


async def file_chunks(path: Path, *, follow: bool, poll_s: float = 0.2) -> AsyncIterator[bytes]:
    """The file's bytes; with ``follow``, keep reading as it grows (and from the start again when
    it is truncated or replaced, as by log rotation)."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, CHUNK_BYTES)
            if chunk:
                yield chunk
                continue
            if not follow:
                return
            await asyncio.sleep(poll_s)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < handle.tell():
                handle.close()
                handle = await asyncio.to_thread(path.open, "rb")
    finally:
        handle.close()


async def tcp_chunks(host: str, port: int, *, max_backoff_s: float = 30.0) -> AsyncIterator[bytes]:
    backoff = 1.0
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            log.warning(
                "source tcp://%s:%s unreachable (%s); retry in %.0f s", host, port, exc, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
            continue
        log.info("source tcp://%s:%s connected", host, port)
        backoff = 1.0
        try:
            while chunk := await reader.read(CHUNK_BYTES):
                yield chunk
            log.warning("source tcp://%s:%s closed by peer; reconnecting", host, port)
        except OSError as exc:
            log.warning("source tcp://%s:%s failed (%s); reconnecting", host, port, exc)
        finally:
            writer.close()
        await asyncio.sleep(backoff)


async def serial_chunks(
    device: str, settings: dict[str, Any], *, max_backoff_s: float = 30.0
) -> AsyncIterator[bytes]:
    """pyserial in a worker thread; reads return at least every 0.5 s so that a stop is prompt."""
    import serial  # pyserial: imported here so that file and tcp sources work without it

    backoff = 1.0
    while True:
        try:
            port = await asyncio.to_thread(serial.Serial, device, timeout=0.5, **settings)
        except (serial.SerialException, OSError) as exc:
            log.warning("source serial:%s cannot open (%s); retry in %.0f s", device, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
            continue
        log.info("source serial:%s open (%s)", device, _describe_port(port))
        backoff = 1.0
        # One read in the worker thread at a time; the port is closed only when none is running,
        # so a stop never closes the descriptor under a read (whose number the OS may reuse).
        lock = threading.Lock()
        try:
            while True:
                # What is waiting, or block (0.5 s at most) for the next byte: low latency.
                chunk = await asyncio.to_thread(_read_available, port, lock)
                if chunk:
                    yield chunk
        except (serial.SerialException, OSError) as exc:
            log.warning("source serial:%s failed (%s); reopening", device, exc)
        finally:
            port.cancel_read()  # wakes a read that is blocked in select()
            await asyncio.to_thread(_close, port, lock)
        await asyncio.sleep(backoff)


def _describe_port(port: Any) -> str:
    stopbits = f"{port.stopbits:g}"
    return f"{port.baudrate} {port.bytesize}{port.parity}{stopbits}"


def _read_available(port: Any, lock: threading.Lock) -> bytes:
    with lock:
        if not port.is_open:
            return b""
        return bytes(port.read(min(CHUNK_BYTES, max(1, port.in_waiting))))


def _close(port: Any, lock: threading.Lock) -> None:
    with lock:
        port.close()


def open_source(spec: SourceSpec) -> AsyncIterator[bytes]:
    if spec.kind == "file":
        return file_chunks(Path(spec.path), follow=spec.follow)
    if spec.kind == "tcp":
        return tcp_chunks(spec.host, spec.port)
    return serial_chunks(spec.path, spec.serial)
