"""`meterhub parse`: decode a meter's output and print one JSON reading per line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer

from meterhub.protocols.base import FORMATS, ParseContext, ParseError, hex_key, parse
from meterhub.readings.model import Reading, to_document

METER_ID_HELP = (
    "meterhub meter id (the MQTT topic's id) of every reading; replaces the id the frame names, "
    "which is kept as extra.frame_meter_id; required when the frame names none (native, tasmota, "
    "HAN list 1)"
)
TIMEZONE_HELP = (
    "zone of meters that send local time; default: the format's own, Europe/Amsterdam for dsmr, "
    "UTC for the others"
)


def reading_document(reading: Reading) -> dict[str, Any]:
    """A reading as the contract's JSON object, with its meter id (energy kWh, power W)."""
    return to_document(reading, meter_id=True, nest_extra=True)


def parse_command(
    source: Annotated[str, typer.Argument(help="file to read, or - for standard input")] = "-",
    format_name: Annotated[
        str, typer.Option("--format", help=", ".join(sorted(FORMATS)))
    ] = "native",
    meter_id: Annotated[str | None, typer.Option(help=METER_ID_HELP)] = None,
    timezone: Annotated[str | None, typer.Option(help=TIMEZONE_HELP)] = None,
    key: Annotated[str | None, typer.Option(help="DLMS encryption key, hex")] = None,
    auth_key: Annotated[str | None, typer.Option(help="DLMS authentication key, hex")] = None,
) -> None:
    """Parse meter output (DSMR, DLMS/COSEM, IEC 62056-21, Tasmota, Shelly, native JSON)."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        typer.echo(f"cannot read {source}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        try:
            zone = None if timezone is None else ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ParseError("bad_timezone", f"unknown time zone {timezone!r}") from None
        context = ParseContext(
            meter_id=meter_id,
            timezone=zone,
            encryption_key=hex_key(key, "--key"),
            authentication_key=hex_key(auth_key, "--auth-key"),
        )
        readings = parse(format_name, data, context)
    except ParseError as exc:
        typer.echo(f"{exc.code}: {exc.message}", err=True)
        raise typer.Exit(2) from None
    out = sys.stdout.buffer
    for reading in readings:
        out.write(orjson.dumps(reading_document(reading)) + b"\n")
    out.flush()


def register(app: typer.Typer) -> None:
    app.command("parse")(parse_command)
