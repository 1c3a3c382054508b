"""`meterhub export`: readings, intervals, events, rejected messages as CSV or Parquet."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from meterhub.config import get_settings
from meterhub.store.db import make_engine

commands = typer.Typer()


@commands.command("export")
def export_command(
    kind: Annotated[Literal["readings", "intervals", "events", "rejects"], typer.Argument()],
    file_format: Annotated[Literal["csv", "parquet"], typer.Option("--format")] = "csv",
    meter: Annotated[str | None, typer.Option(help="one meter id")] = None,
    start: Annotated[datetime | None, typer.Option("--from", help="ISO 8601 with offset")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="ISO 8601 with offset")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file; default stdout")
    ] = None,
) -> None:
    """Export readings, intervals, events or rejected messages as CSV or Parquet."""
    from meterhub.store.export import export

    for name, value in (("--from", start), ("--to", end)):
        if value is not None and value.tzinfo is None:
            typer.echo(f"{name} needs a UTC offset, e.g. 2026-11-01T00:00:00+05:45", err=True)
            raise typer.Exit(2)
    engine = make_engine(get_settings().database_url)
    if output is None:
        count = export(
            engine,
            kind,
            sys.stdout.buffer,
            file_format=file_format,
            meter_id=meter,
            start=start,
            end=end,
        )
        sys.stdout.buffer.flush()
    else:
        with output.open("wb") as handle:
            count = export(
                engine, kind, handle, file_format=file_format, meter_id=meter, start=start, end=end
            )
    typer.echo(f"{count} {kind} rows exported", err=True)


def register(app: typer.Typer) -> None:
    app.registered_commands.extend(commands.registered_commands)
