"""`meterhub bill quote`: price a usage file on a tariff document and print the bill as JSON."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import orjson
import typer

from meterhub.cli import bill_delivery, bill_payments, bill_runs


def quote_command(
    tariff_file: Annotated[Path, typer.Option("--tariff", help="tariff document, YAML or JSON")],
    usage_file: Annotated[
        Path, typer.Option("--usage", help="CSV: start (with offset), import_kwh[, export_kwh]")
    ],
    sanctioned_kw: Annotated[
        str | None, typer.Option("--sanctioned-kw", help="sanctioned (contract) load, kW")
    ] = None,
    amperes: Annotated[int | None, typer.Option(help="ampere rating of the supply")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="first day billed (YYYY-MM-DD, local)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="last day billed, inclusive (YYYY-MM-DD)")
    ] = None,
    cycle_days: Annotated[
        int | None, typer.Option(help="length of the full billing cycle, for a partial period")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="override the tariff's time zone (IANA name)")
    ] = None,
) -> None:
    """Price a usage file on a tariff: JSON line items and total on standard output."""
    from meterhub.billing import service as billing

    try:
        tariff = billing.load_tariff(tariff_file)
    except OSError as exc:
        typer.echo(f"cannot read {tariff_file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except billing.TariffInvalid as exc:
        typer.echo(f"{tariff_file}: invalid tariff ({len(exc.problems)} problems)", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            typer.echo(f"--timezone: unknown time zone {timezone!r}", err=True)
            raise typer.Exit(2) from None
        tariff = tariff.model_copy(update={"timezone": timezone})
    try:
        load = None if sanctioned_kw is None else Decimal(sanctioned_kw)
        first = None if start is None else date.fromisoformat(start)
        last = None if end is None else date.fromisoformat(end) + timedelta(days=1)
        intervals = billing.read_usage_csv(usage_file)
        determinants, bill = billing.quote(
            tariff,
            intervals,
            billing.Supply(sanctioned_load_kw=load, amperes=amperes),
            start=first,
            end=last,
            cycle_days=cycle_days,
        )
    except (InvalidOperation, billing.UsageError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"cannot read {usage_file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except billing.TariffGap as exc:
        # A missing price is an error the user sees, never a zero on a bill.
        typer.echo(f"cannot price: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(orjson.dumps(billing.bill_document(bill, determinants), option=orjson.OPT_INDENT_2))


def register(app: typer.Typer) -> None:
    bill_app = typer.Typer(help="billing: tariffs and bills", no_args_is_help=True)
    bill_app.command("quote")(quote_command)
    bill_runs.register(bill_app)
    bill_delivery.register(bill_app)
    bill_payments.register(bill_app)
    app.add_typer(bill_app, name="bill")
