"""`meterhub bill pay` (a counter payment) and `meterhub bill ledger CONSUMER`: wiring only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import typer

from meterhub.config import get_settings
from meterhub.store.db import make_engine

if TYPE_CHECKING:
    from meterhub.billing.core.ledger import Account


def pay_command(
    consumer_id: Annotated[str, typer.Argument(help="the consumer account paid into")],
    amount: Annotated[str, typer.Option(help="amount paid, e.g. 1250.00")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. NPR")],
    entered_by: Annotated[str, typer.Option("--by", help="the staff member taking it")],
    method: Annotated[str, typer.Option(help="cash or cheque")] = "cash",
    reference: Annotated[
        str | None, typer.Option(help="slip or cheque number: the same one is recorded once")
    ] = None,
    received_at: Annotated[
        str | None, typer.Option("--at", help="when it was received (ISO 8601 with offset)")
    ] = None,
) -> None:
    """Record a cash or cheque payment taken at the counter and print its receipt."""
    from meterhub.billing import service as billing

    try:
        paid = Decimal(amount)
        when = datetime.fromisoformat(received_at) if received_at else datetime.now(UTC)
    except (InvalidOperation, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if when.tzinfo is None:
        typer.echo("error: --at needs a UTC offset", err=True)
        raise typer.Exit(2)
    if method not in ("cash", "cheque"):
        typer.echo("error: --method is cash or cheque", err=True)
        raise typer.Exit(2)
    counter_method: Literal["cash", "cheque"] = "cash" if method == "cash" else "cheque"
    engine = make_engine(get_settings().database_url)
    try:
        recorded = billing.pay_at_counter(
            engine,
            consumer_id=consumer_id,
            amount=paid,
            currency=currency.upper(),
            method=counter_method,
            entered_by=entered_by,
            received_at=when,
            reference=reference,
        )
    except billing.PaymentRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if recorded.duplicate:
        typer.echo(f"already recorded as payment {recorded.payment_id}", err=True)
    typer.echo(recorded.receipt, nl=False)


def ledger_command(
    consumer_id: Annotated[str, typer.Argument(help="the consumer account")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="statement date YYYY-MM-DD (default today, UTC)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Statement of account: open bills, balance, arrears and ageing."""
    from meterhub.billing import service as billing

    try:
        day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(get_settings().database_url)
    try:
        account = billing.account_statement(engine, consumer_id, day)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(orjson.dumps(_document(consumer_id, account), option=orjson.OPT_INDENT_2))
        return
    typer.echo(f"Statement for {consumer_id} on {account.as_of}")
    for item in account.open_items:
        typer.echo(f"  {item.kind} {item.ref}: {item.open} of {item.amount} open, due {item.due}")
    if account.unapplied_credit:
        typer.echo(f"  credit held: {account.unapplied_credit}")
    typer.echo(f"Balance: {account.balance}")
    typer.echo(f"Arrears: {account.arrears}")
    typer.echo("Ageing:  " + ", ".join(f"{k}: {v}" for k, v in account.ageing.items()))


def _document(consumer_id: str, account: Account) -> dict[str, Any]:
    return {
        "consumer_id": consumer_id,
        "as_of": account.as_of.isoformat(),
        "balance": str(account.balance),
        "arrears": str(account.arrears),
        "credit": str(account.unapplied_credit),
        "ageing": {bucket: str(amount) for bucket, amount in account.ageing.items()},
        "open": [
            {
                "kind": i.kind,
                "ref": i.ref,
                "due": i.due.isoformat(),
                "amount": str(i.amount),
                "open": str(i.open),
            }
            for i in account.open_items
        ],
    }


def register(bill_app: typer.Typer) -> None:
    bill_app.command("pay")(pay_command)
    bill_app.command("ledger")(ledger_command)
