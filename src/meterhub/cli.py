"""The `meterhub` command line: wiring only; the work lives in the capability packages."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from meterhub.billing.command import register as register_billing
from meterhub.config import get_settings
from meterhub.consumer_command import register as register_consumers
from meterhub.devices.command import register as register_devices
from meterhub.edge.command import register as register_edge
from meterhub.mqtt import parse_broker_url
from meterhub.protocols.command import register as register_protocols
from meterhub.sim.command import register as register_sim
from meterhub.store.db import make_engine

app = typer.Typer(help="meterhub: smart-metering platform", no_args_is_help=True)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
app.add_typer(db_app, name="db")
register_sim(app)
register_devices(app)
register_protocols(app)
register_consumers(app)
register_billing(app)
register_edge(app)


def _logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format='{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )
    # The MQTT libraries log every packet and state change at INFO: keep their warnings only.
    for chatty in ("gmqtt", "amqtt", "transitions", "alembic", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the schema (Alembic) on METERHUB_DATABASE_URL."""
    from meterhub.store.migrate import current_revision, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")


async def _until_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@app.command()
def ingest(
    derive: Annotated[bool, typer.Option(help="also derive intervals in this process")] = True,
    retire: Annotated[
        str | None,
        typer.Option(
            "--retire",
            metavar="WORKER_ID",
            help="hand back the session of a worker that is gone for good: take and store "
            "what the broker kept for it, then end its session, so that the broker queues "
            "nothing more for it",
        ),
    ] = None,
) -> None:
    """Run an ingest worker: MQTT (shared subscription) -> validation -> store."""
    from meterhub.ingest.service import run_ingest

    _logging()
    settings = get_settings()
    if retire is not None:
        settings = settings.model_copy(update={"worker_id": retire})

    async def main() -> None:
        stop = await _until_signal()
        await run_ingest(
            settings, stop, derive=derive and retire is None, retire=retire is not None
        )

    from gmqtt.mqtt.handler import MQTTConnectError

    try:
        asyncio.run(main())
    except (MQTTConnectError, OSError) as exc:
        # One readable line (never the URL: it may hold the password).
        address = parse_broker_url(settings.mqtt_url)
        who = address.username or "anonymous"
        typer.echo(f"error: broker {address.host}:{address.port} refused {who}: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def derive(
    follow: Annotated[bool, typer.Option(help="keep running and poll for new work")] = False,
) -> None:
    """Recompute intervals for queued meters (VEE over sorted readings)."""
    import time

    from meterhub.ingest.deriver import IntervalDeriver

    _logging()
    deriver = IntervalDeriver(get_settings(), make_engine(get_settings().database_url))
    while True:
        processed = deriver.drain()
        typer.echo(f"derived intervals for {processed} meter windows", err=True)
        if not follow:
            return
        time.sleep(2)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the web app."""
    import uvicorn

    from meterhub.web.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings, make_engine(settings.database_url)), host=host, port=port)


@app.command()
def demo(
    meters: Annotated[int, typer.Option(help="simulated consumer meters")] = 300,
    speed: Annotated[float, typer.Option(help="simulated seconds per real second")] = 120.0,
    history: Annotated[str, typer.Option(help="history to backfill, e.g. 7d")] = "7d",
    port: Annotated[int, typer.Option(help="web port (0 picks a free one)")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="where the SQLite database lives")] = Path("data"),
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    seed: int = 1,
) -> None:
    """Everything in one process: embedded broker, SQLite, ingest, simulator, web app."""
    from meterhub.demo import DemoOptions, run_demo

    _logging()
    options = DemoOptions(
        meters=meters,
        speed=speed,
        history=history,
        web_port=port,
        data_dir=data_dir,
        duration=duration,
        seed=seed,
    )

    async def main() -> None:
        await run_demo(options, await _until_signal())

    asyncio.run(main())


@app.command("export")
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


if __name__ == "__main__":  # pragma: no cover
    app()
