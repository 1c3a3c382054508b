"""`meterhub ingest` and `meterhub derive`."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from meterhub.cli.common import setup_logging, until_signal
from meterhub.config import get_settings
from meterhub.mqtt import parse_broker_url
from meterhub.store.db import make_engine

commands = typer.Typer()


@commands.command()
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

    setup_logging()
    settings = get_settings()
    if retire is not None:
        settings = settings.model_copy(update={"worker_id": retire})

    async def main() -> None:
        stop = await until_signal()
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


@commands.command()
def derive(
    follow: Annotated[bool, typer.Option(help="keep running and poll for new work")] = False,
) -> None:
    """Recompute intervals for queued meters (VEE over sorted readings)."""
    import time

    from meterhub.ingest.deriver import IntervalDeriver

    setup_logging()
    deriver = IntervalDeriver(get_settings(), make_engine(get_settings().database_url))
    while True:
        processed = deriver.drain()
        typer.echo(f"derived intervals for {processed} meter windows", err=True)
        if not follow:
            return
        time.sleep(2)


def register(app: typer.Typer) -> None:
    app.registered_commands.extend(commands.registered_commands)
