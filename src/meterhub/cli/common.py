"""What every command shares: log format, and a stop event set by SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

import typer


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format='{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )
    # The MQTT libraries log every packet and state change at INFO: keep their warnings only.
    for chatty in ("gmqtt", "amqtt", "transitions", "alembic", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


async def until_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def fail(message: str, code: int = 1) -> typer.Exit:
    """One readable line on stderr and a non-zero exit (raise the result)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)
