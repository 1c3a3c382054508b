"""`meterhub bill deliver | deliveries` and `meterhub bill prepaid ...`: wiring only."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import Engine

from meterhub.config import Settings, get_settings
from meterhub.notify.channels import ChannelError, configured_channels
from meterhub.store.db import make_engine


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url)


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


# ---------------------------------------------------------------------------- delivery


def deliver_command(
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="try every failed delivery again now")
    ] = False,
) -> None:
    """Queue issued bills not yet queued, then send everything due; print the counts."""
    from meterhub.billing import service as billing

    settings = get_settings()
    try:
        channels = configured_channels(settings.email_url, settings.sms_url)
    except ChannelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not channels:
        typer.echo(
            "no channel configured: set METERHUB_EMAIL_URL and/or METERHUB_SMS_URL", err=True
        )
        raise typer.Exit(2)
    counts = billing.queue_and_send(
        _engine(settings), settings, channels, _now(), retry=retry_failed
    )
    typer.echo(_json(counts))
    if counts["failed"]:
        raise typer.Exit(1)


def deliveries_command(
    failed: Annotated[
        bool, typer.Option("--failed", help="only those whose last try failed")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
) -> None:
    """List deliveries (one JSON object a line): status, attempts, last error, next attempt."""
    from meterhub.billing import service as billing

    for row in billing.deliveries(_engine(get_settings()), failed_only=failed, limit=limit):
        typer.echo(_json(row))


# ---------------------------------------------------------------------------- prepaid


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        typer.echo(f"error: not an amount: {text!r}", err=True)
        raise typer.Exit(2) from None
    if not value.is_finite() or value <= 0:
        typer.echo("error: the amount must be positive", err=True)
        raise typer.Exit(2)
    return value


def prepaid_open_command(
    consumer: str,
    meter: Annotated[str, typer.Option(help="the meter whose intervals are charged")],
    tariff: Annotated[str, typer.Option(help="tariff id")],
) -> None:
    """Open a prepaid account: intervals from now on are charged to it."""
    from meterhub.billing import service as billing

    try:
        billing.open_prepaid_account(_engine(get_settings()), consumer, meter, tariff, _now())
    except billing.PrepaidError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_json({"consumer_id": consumer, "meter_id": meter, "tariff_id": tariff}))


def prepaid_topup_command(
    consumer: str,
    amount: str,
    reference: Annotated[
        str | None, typer.Option(help="slip or payment reference: credited once")
    ] = None,
    entered_by: Annotated[
        str | None, typer.Option("--by", help="who took the money (default: this user)")
    ] = None,
    method: Annotated[str, typer.Option(help="cash or cheque")] = "cash",
) -> None:
    """Credit a top-up: a counter payment (ledger credit and receipt) that credits the prepaid
    account and requests reconnection if it brings a disconnected account above zero."""
    from meterhub.billing import service as billing

    value = _amount(amount)
    if method not in ("cash", "cheque"):
        typer.echo("error: --method is cash or cheque", err=True)
        raise typer.Exit(2)
    try:
        recorded, balance = billing.top_up(
            _engine(get_settings()),
            consumer_id=consumer,
            amount=value,
            method="cash" if method == "cash" else "cheque",
            entered_by=entered_by or getpass.getuser(),
            received_at=_now(),
            reference=reference,
        )
    except (billing.PrepaidError, billing.PaymentRefused) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        _json(
            {
                "consumer_id": consumer,
                "balance": f"{balance:.2f}",
                "action": recorded.supply_action,
                "payment_id": recorded.payment_id,
                "receipt_number": recorded.receipt_number,
                "duplicate": recorded.duplicate,
            }
        )
    )


def prepaid_balance_command(consumer: str) -> None:
    """The account's balance: top-ups less charges."""
    from meterhub.billing import service as billing

    try:
        account, value = billing.prepaid_status(_engine(get_settings()), consumer)
    except billing.PrepaidError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        _json(
            {
                "consumer_id": consumer,
                "balance": f"{value:.2f}",
                "accrued_until": account.accrued_until,
                "supply_state": account.supply_state,
            }
        )
    )


def prepaid_run_command() -> None:
    """Charge new intervals to every prepaid account; queue low-balance warnings; request
    disconnection at zero within the allowed hours (one transaction per account)."""
    from meterhub.billing import service as billing

    settings = get_settings()
    results = billing.accrue_all(_engine(settings), settings, _now())
    for result in results:
        typer.echo(_json(result), err="error" in result)
    if any("error" in result for result in results):
        raise typer.Exit(1)


def register(bill_app: typer.Typer) -> None:
    bill_app.command("deliver")(deliver_command)
    bill_app.command("deliveries")(deliveries_command)
    prepaid_app = typer.Typer(help="prepaid accounts", no_args_is_help=True)
    prepaid_app.command("open")(prepaid_open_command)
    prepaid_app.command("topup")(prepaid_topup_command)
    prepaid_app.command("balance")(prepaid_balance_command)
    prepaid_app.command("run")(prepaid_run_command)
    bill_app.add_typer(prepaid_app, name="prepaid")
