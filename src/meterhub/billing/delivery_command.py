"""`meterhub bill deliver | deliveries` and `meterhub bill prepaid ...`: wiring only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from meterhub.billing import delivery, prepaid
from meterhub.billing.document import render_pdf
from meterhub.billing.tariff import Tariff, TariffGap, TariffInvalid, load_tariff, parse_tariff
from meterhub.config import Settings, get_settings
from meterhub.notify.channels import Attachment, ChannelError, configured_channels
from meterhub.store.billing_store import load_bill
from meterhub.store.db import make_engine
from meterhub.store.schema_billing import bills
from meterhub.store.tables import metadata


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.database_url)


def _now() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


# ---------------------------------------------------------------------------- bill PDFs


def bill_pdf(conn: Connection, kind: str, subject_id: str) -> Sequence[Attachment]:
    """The issued bill's PDF (the bill-document renderer, from the stored bill: nothing is
    recomputed), attached to bill e-mails."""
    if kind != "bill":
        return ()
    number = conn.execute(select(bills.c.number).where(bills.c.id == int(subject_id))).scalar()
    stored = None if number is None else load_bill(conn, number)
    if stored is None:
        return ()
    return (Attachment(f"bill-{stored.number}.pdf", render_pdf(stored)),)


# ---------------------------------------------------------------------------- delivery


def deliver_command(
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="try every failed delivery again now")
    ] = False,
) -> None:
    """Queue issued bills not yet queued, then send everything due; print the counts."""
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
    engine = _engine(settings)
    now = _now()
    attachments = bill_pdf
    with engine.begin() as conn:
        if retry_failed:
            delivery.retry_now(conn, now)
        queued = delivery.enqueue_issued_bills(
            conn, now, link_url=settings.bill_link_url, attached=True
        )
    counts = delivery.deliver_due(
        engine,
        channels,
        now,
        max_attempts=settings.delivery_max_attempts,
        retry_seconds=settings.delivery_retry_seconds,
        attachments=attachments,
    )
    typer.echo(
        _json(
            {
                "queued": queued,
                "sent": counts.sent,
                "failed": counts.failed,
                "skipped": counts.skipped,
            }
        )
    )
    if counts.failed:
        raise typer.Exit(1)


def deliveries_command(
    failed: Annotated[
        bool, typer.Option("--failed", help="only those whose last try failed")
    ] = False,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
) -> None:
    """List deliveries (one JSON object a line): status, attempts, last error, next attempt."""
    engine = _engine(get_settings())
    with engine.connect() as conn:
        for row in delivery.list_deliveries(conn, failed_only=failed, limit=limit):
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


def tariff_loader(conn: Connection, settings: Settings) -> Callable[[str], Tariff]:
    """A tariff by id: from the tariffs table when the bill-run capability has loaded it there,
    else ``prepaid_tariff_dir/<id>.yaml`` (or .yml, .json)."""
    cache: dict[str, Tariff] = {}
    table = metadata.tables.get("tariffs")

    def load(tariff_id: str) -> Tariff:
        if tariff_id in cache:
            return cache[tariff_id]
        document = None
        if table is not None:
            document = conn.execute(
                select(table.c.document).where(table.c.id == tariff_id)
            ).scalar()
        if document is not None:
            tariff = parse_tariff(document)
        else:
            for suffix in (".yaml", ".yml", ".json"):
                path = Path(settings.prepaid_tariff_dir) / f"{tariff_id}{suffix}"
                if path.exists():
                    tariff = load_tariff(path)
                    break
            else:
                raise TariffGap(f"no tariff document {tariff_id!r}")
        cache[tariff_id] = tariff
        return tariff

    return load


def prepaid_open_command(
    consumer: str,
    meter: Annotated[str, typer.Option(help="the meter whose intervals are charged")],
    tariff: Annotated[str, typer.Option(help="tariff id")],
) -> None:
    """Open a prepaid account: intervals from now on are charged to it."""
    engine = _engine(get_settings())
    try:
        with engine.begin() as conn:
            prepaid.open_account(conn, consumer, meter, tariff, _now())
    except IntegrityError:
        typer.echo("error: unknown consumer, meter or tariff, or the account exists", err=True)
        raise typer.Exit(1) from None
    typer.echo(_json({"consumer_id": consumer, "meter_id": meter, "tariff_id": tariff}))


def prepaid_topup_command(
    consumer: str,
    amount: str,
    reference: Annotated[
        str | None, typer.Option(help="payment reference; credited once (default: generated)")
    ] = None,
) -> None:
    """Credit a top-up; requests reconnection if it brings a disconnected account above zero."""
    value = _amount(amount)
    engine = _engine(get_settings())
    now = _now()
    ref = reference or f"counter-{consumer}-{now.strftime('%Y%m%dT%H%M%S%f')}"
    try:
        with engine.begin() as conn:
            after, action = prepaid.top_up(conn, consumer, value, ref, now)
    except prepaid.PrepaidError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_json({"consumer_id": consumer, "balance": f"{after:.2f}", "action": action}))


def prepaid_balance_command(consumer: str) -> None:
    """The account's balance: top-ups less charges."""
    engine = _engine(get_settings())
    with engine.connect() as conn:
        try:
            account = prepaid.get_account(conn, consumer)
        except prepaid.PrepaidError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        value = prepaid.balance(conn, consumer)
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
    settings = get_settings()
    engine = _engine(settings)
    now = _now()
    problems = 0
    with engine.connect() as conn:
        ids = prepaid.account_ids(conn)
    for consumer_id in ids:
        try:
            with engine.begin() as conn:
                account = prepaid.get_account(conn, consumer_id)
                tariff = tariff_loader(conn, settings)(account.tariff_id)
                outcome = run_account(conn, settings, consumer_id, tariff, now)
        except (TariffGap, TariffInvalid, OSError) as exc:
            problems += 1
            typer.echo(_json({"consumer_id": consumer_id, "error": str(exc)}), err=True)
            continue
        typer.echo(
            _json(
                {
                    "consumer_id": consumer_id,
                    "charged_intervals": outcome.charged,
                    "amount": f"{outcome.amount:.2f}",
                    "balance": f"{outcome.balance:.2f}",
                    "warnings": [f"{w.level:f}" for w in outcome.warnings],
                    "action": outcome.action,
                }
            )
        )
    if problems:
        raise typer.Exit(1)


def run_account(
    conn: Connection, settings: Settings, consumer_id: str, tariff: Tariff, now: datetime
) -> prepaid.AccrualOutcome:
    """Accrue one account and queue its warnings, in the caller's transaction."""
    policy = prepaid.policy_for(
        tariff,
        now,
        start=settings.prepaid_disconnect_from,
        until=settings.prepaid_disconnect_until,
        weekdays=settings.prepaid_disconnect_weekdays,
        holiday_country=settings.prepaid_holiday_country,
    )
    outcome = prepaid.accrue(
        conn, consumer_id, tariff, now, levels=settings.prepaid_warning_levels, policy=policy
    )
    for warning in outcome.warnings:
        delivery.enqueue_warning(
            conn,
            warning.event_id,
            consumer_id,
            level=warning.level,
            balance=warning.balance,
            currency=tariff.currency,
            now=now,
        )
    return outcome


def register(bill_app: typer.Typer) -> None:
    bill_app.command("deliver")(deliver_command)
    bill_app.command("deliveries")(deliveries_command)
    prepaid_app = typer.Typer(help="prepaid accounts", no_args_is_help=True)
    prepaid_app.command("open")(prepaid_open_command)
    prepaid_app.command("topup")(prepaid_topup_command)
    prepaid_app.command("balance")(prepaid_balance_command)
    prepaid_app.command("run")(prepaid_run_command)
    bill_app.add_typer(prepaid_app, name="prepaid")
