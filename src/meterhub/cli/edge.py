"""`meterhub edge`: read a local meter and publish its readings to the central broker."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from meterhub.edge.aggregate import parse_interval
from meterhub.edge.gateway import Gateway, GatewayOptions
from meterhub.edge.sources import open_source, parse_source_url
from meterhub.mqtt import parse_broker_url
from meterhub.protocols.base import FORMATS, ParseError, hex_key


def _hex_key(value: str | None, name: str) -> bytes | None:
    try:
        return hex_key(value, name)
    except ParseError as exc:
        raise typer.BadParameter(exc.message) from None


def edge_command(
    source: Annotated[
        str,
        typer.Option(
            help="serial:///dev/ttyUSB0?baud=115200, tcp://HOST:PORT or file:PATH[?follow=1]"
        ),
    ],
    format_name: Annotated[str, typer.Option("--format", help=", ".join(sorted(FORMATS)))],
    mqtt_url: Annotated[
        str,
        typer.Option(
            envvar="METERHUB_EDGE_MQTT_URL", help="mqtts://METER_ID:SECRET@host:8883 (the meter's)"
        ),
    ],
    meter_id: Annotated[
        str | None,
        typer.Option(
            help="the meter id of every reading and of the topic, replacing the id a frame "
            "carries (the parser keeps that one in extra); default: the MQTT username, which "
            "the broker ties to it"
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="MQTT client id; default: the MQTT username (dynamic security binds a meter's "
            "credential to a client id equal to its meter id)"
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="zone of meters that send local time; default: the format's own "
            "(Europe/Amsterdam for DSMR, UTC for the others); summaries align to it (or UTC)"
        ),
    ] = None,
    forward_extra: Annotated[
        bool,
        typer.Option(
            "--forward-extra",
            help="forwarded readings also carry the parser's extra fields (OBIS map, M-Bus "
            "channels, the frame's own ids): 4 to 13 times the bytes of a DSMR reading; "
            "default: the contract's fields only",
        ),
    ] = False,
    ca_file: Annotated[Path | None, typer.Option(help="CA bundle for mqtts://")] = None,
    topic_prefix: Annotated[str, typer.Option(help="first topic level")] = "meters",
    aggregate: Annotated[
        str, typer.Option(help="none (every reading) or a summary period: 1m, 15m, 1h")
    ] = "none",
    spool: Annotated[Path, typer.Option(help="SQLite store-and-forward file")] = Path(
        "edge-spool.db"
    ),
    spool_max_messages: Annotated[int, typer.Option(min=1)] = 100_000,
    spool_max_bytes: Annotated[int, typer.Option(min=1024)] = 64 * 1024 * 1024,
    key: Annotated[str | None, typer.Option(help="DLMS encryption key, hex")] = None,
    auth_key: Annotated[str | None, typer.Option(help="DLMS authentication key, hex")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    status_interval: Annotated[float, typer.Option(help="seconds between status reports")] = 60.0,
) -> None:
    """Edge gateway: local meter -> parse -> aggregate -> disk spool -> MQTT (contract v1)."""
    logging.basicConfig(
        level="INFO",
        format='{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )
    try:
        spec = parse_source_url(source)
        address = parse_broker_url(mqtt_url)
        interval = parse_interval(aggregate)
        zone = None if timezone is None else ZoneInfo(timezone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        typer.echo(str(exc) or f"unknown time zone {timezone!r}", err=True)
        raise typer.Exit(2) from None
    if format_name not in FORMATS:
        typer.echo(f"unknown format {format_name!r}; known: {', '.join(sorted(FORMATS))}", err=True)
        raise typer.Exit(2)
    meter = meter_id or address.username
    if not meter:
        typer.echo("--meter-id is needed when the MQTT URL has no username", err=True)
        raise typer.Exit(2)
    options = GatewayOptions(
        format_name=format_name,
        meter_id=meter,
        mqtt_url=mqtt_url,
        spool_path=spool,
        timezone=zone,
        client_id=client_id,
        forward_extra=forward_extra,
        ca_file=ca_file,
        topic_prefix=topic_prefix,
        aggregate=interval,
        spool_max_messages=spool_max_messages,
        spool_max_bytes=spool_max_bytes,
        encryption_key=_hex_key(key, "--key"),
        authentication_key=_hex_key(auth_key, "--auth-key"),
        source_name=spec.describe(),
        status_interval_s=status_interval,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if duration is not None:
            loop.call_later(duration, stop.set)
        await Gateway(options, open_source(spec)).run(stop)

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("edge")(edge_command)
