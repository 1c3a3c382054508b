"""`meterhub serve` (the web app) and `meterhub demo` (everything in one process)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from meterhub.cli.common import setup_logging, until_signal
from meterhub.config import get_settings
from meterhub.store.db import make_engine

commands = typer.Typer()


@commands.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the web app."""
    import uvicorn

    from meterhub.web.app import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings, make_engine(settings.database_url)), host=host, port=port)


@commands.command()
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

    setup_logging()
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
        await run_demo(options, await until_signal())

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.registered_commands.extend(commands.registered_commands)
