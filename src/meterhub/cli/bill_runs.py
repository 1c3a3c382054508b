"""`meterhub bill run | schedule | daily | show | final | load-tariff`: bill runs, the daily job,
bill documents and the final bill at a move-out."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from meterhub.config import get_settings
from meterhub.readings.local_time import local_instant
from meterhub.store.db import make_engine

log = logging.getLogger(__name__)


def run_command(
    period: Annotated[str, typer.Option(help="YYYY-MM: the month the billing period starts in")],
    chunk_size: Annotated[int, typer.Option(help="consumers per transaction")] = 500,
    utility: Annotated[str, typer.Option(help="bill number prefix")] = "MH",
) -> None:
    """Issue the bills of one period (idempotent: bills already issued are kept)."""
    from meterhub.billing import service as billing

    settings = get_settings()
    today = datetime.now(settings.zone).date()
    try:
        result = billing.run_bills(
            make_engine(settings.database_url),
            period,
            settings=settings,
            today=today,
            utility=utility,
            chunk_size=chunk_size,
        )
    except (billing.PeriodNotOver, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    summary = {
        "period": result.period,
        "from": result.start.isoformat(),
        "to_exclusive": result.end.isoformat(),
        "consumers": result.consumers,
        "issued": len(result.issued),
        "skipped": result.skipped,
        "not_served": result.not_served,
        "errors": [error.as_dict() for error in result.errors],
    }
    typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if result.errors:
        raise typer.Exit(1)


def schedule_command(
    once: Annotated[bool, typer.Option(help="check once and exit (for cron or a timer)")] = False,
    every: Annotated[int, typer.Option(help="seconds between checks")] = 3600,
) -> None:
    """Run the period that ended on the cycle day (utility's zone), once it is due."""
    from meterhub.billing import service as billing

    settings = get_settings()
    engine = make_engine(settings.database_url)
    while True:
        for result in billing.run_due_periods(engine, settings, datetime.now(settings.zone).date()):
            typer.echo(
                f"{result.period}: {len(result.issued)} issued, {result.skipped} already "
                f"billed, {len(result.errors)} errors",
                err=True,
            )
        if once:
            return
        time.sleep(every)


def daily_command(
    loop: Annotated[bool, typer.Option(help="keep running: a pass every --every seconds")] = False,
    every: Annotated[int, typer.Option(help="seconds between passes with --loop")] = 3600,
    utility: Annotated[str, typer.Option(help="bill number prefix")] = "MH",
) -> None:
    """One idempotent pass of everything billing does by the calendar: the bill run due on the
    cycle day, prepaid accrual, late fees and rebates, reminders, then sending what is due.
    For cron (once a day or hourly) or, with --loop, as a service. Prints a JSON summary."""
    from meterhub.billing import service as billing
    from meterhub.notify.channels import ChannelError, configured_channels

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    try:
        channels = configured_channels(settings.email_url, settings.sms_url)
    except ChannelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(settings.database_url)
    while True:
        report = billing.daily_pass(engine, settings, datetime.now(UTC), channels, utility=utility)
        typer.echo(orjson.dumps(report.as_dict()))
        if not loop:
            if report.errors:
                raise typer.Exit(1)
            return
        time.sleep(every)


def show_command(
    number: Annotated[str, typer.Argument(help="bill number, e.g. MH-2026-000123")],
    file_format: Annotated[Literal["html", "pdf"], typer.Option("--format")] = "html",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="default: stdout")] = None,
    instructions: Annotated[
        str | None, typer.Option(help="payment instructions added to the tariff's terms")
    ] = None,
) -> None:
    """Write a bill document as HTML or PDF."""
    import sys

    from meterhub.billing import service as billing

    stored = billing.stored_bill(make_engine(get_settings().database_url), number)
    if stored is None:
        typer.echo(f"no bill {number}", err=True)
        raise typer.Exit(1)
    if file_format == "html":
        data = billing.render_html(stored, instructions=instructions).encode()
    else:
        data = billing.render_pdf(stored, instructions=instructions)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)


def load_tariff_command(
    tariff_file: Annotated[Path, typer.Argument(help="tariff document, YAML or JSON")],
) -> None:
    """Validate a tariff document and store it (replacing the stored one with its id)."""
    from meterhub.billing import service as billing

    try:
        tariff = billing.load_tariff(tariff_file)
    except billing.TariffInvalid as exc:
        typer.echo(f"{tariff_file}: invalid tariff ({len(exc.problems)} problems)", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    billing.store_tariff(
        make_engine(get_settings().database_url),
        tariff,
        source_file=tariff_file.name,
        now=datetime.now(UTC),
    )
    typer.echo(f"tariff {tariff.id} stored ({len(tariff.versions)} versions)")


def final_command(
    consumer: Annotated[str, typer.Argument(help="the consumer moving out")],
    at: Annotated[
        str,
        typer.Option(
            "--at", help="when the supply ended, ISO 8601; without an offset, in METERHUB_TIMEZONE"
        ),
    ],
    utility: Annotated[str, typer.Option(help="bill number prefix")] = "MH",
) -> None:
    """Move-out: issue the consumer's final bill for the current period up to AT, close the
    account and its meter (in one transaction); print the bill number."""
    from meterhub.billing import service as billing

    settings = get_settings()
    try:
        when = local_instant(at, "--at", settings.zone)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        number = billing.issue_final_bill(
            make_engine(settings.database_url), consumer, when, settings=settings, utility=utility
        )
    except billing.FinalBillRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    issued = f"final bill {number} issued" if number else "no postpaid bill (prepaid)"
    typer.echo(f"{issued}; consumer {consumer} closed from {when.isoformat()}")


def register(bill_app: typer.Typer) -> None:
    bill_app.command("run")(run_command)
    bill_app.command("schedule")(schedule_command)
    bill_app.command("daily")(daily_command)
    bill_app.command("show")(show_command)
    bill_app.command("final")(final_command)
    bill_app.command("load-tariff")(load_tariff_command)
