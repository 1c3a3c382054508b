"""`meterhub consumer add | tariff | notify | show`: consumer accounts from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, cast

import orjson
import typer

from meterhub.config import get_settings
from meterhub.consumers.service import (
    ConsumerError,
    NewConsumer,
    account,
    add_consumer,
    assign_tariff,
    check,
    require_consumer,
)
from meterhub.store.db import make_engine

if TYPE_CHECKING:
    from meterhub.billing.service import Preference

consumer_app = typer.Typer(help="Consumer accounts: details, tariff, notification channels.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@consumer_app.command("add")
def add_command(
    consumer_id: Annotated[str, typer.Argument(help="account number, printed on bills")],
    name: Annotated[str, typer.Option("--name")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="E.164, e.g. +9779812345678")] = None,
    address: Annotated[str | None, typer.Option("--address")] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="tariff category, when no tariff is assigned")
    ] = None,
) -> None:
    """Open a consumer account."""
    consumer = NewConsumer(consumer_id, name, email, phone, address, category)
    try:
        with make_engine(get_settings().database_url).begin() as conn:
            add_consumer(conn, consumer)
    except ConsumerError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"consumer {consumer_id} added")


@consumer_app.command("tariff")
def tariff_command(
    consumer_id: Annotated[str, typer.Argument()],
    tariff_id: Annotated[str, typer.Argument(help="a stored tariff (meterhub bill load-tariff)")],
    from_date: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="first day, local date")
    ],
    amperes: Annotated[int | None, typer.Option("--amperes", help="supply rating, A")] = None,
) -> None:
    """Put a consumer on a tariff from a date."""
    try:
        with make_engine(get_settings().database_url).begin() as conn:
            assign_tariff(conn, consumer_id, tariff_id, from_date.date(), amperes=amperes)
    except ConsumerError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"consumer {consumer_id} on {tariff_id} from {from_date.date()}")


@consumer_app.command("notify")
def notify_command(
    consumer_id: Annotated[str, typer.Argument()],
    channels: Annotated[str, typer.Option("--channels", help="email, sms, both or none")],
    email: Annotated[str | None, typer.Option("--email", help="instead of the account's")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="instead of the account's")] = None,
) -> None:
    """How bills, receipts, reminders and warnings reach the consumer."""
    from meterhub.billing.service import CHANNELS_OF, set_preference

    if channels not in CHANNELS_OF:
        raise _fail(f"--channels must be one of {', '.join(CHANNELS_OF)}")
    try:
        check(NewConsumer(consumer_id, "-", email, phone))  # the account's checks
        with make_engine(get_settings().database_url).begin() as conn:
            require_consumer(conn, consumer_id)
            set_preference(
                conn, consumer_id, cast("Preference", channels), datetime.now(UTC), email=email,
                phone=phone,
            )  # fmt: skip
    except ConsumerError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"consumer {consumer_id}: notifications by {channels}")


@consumer_app.command("show")
def show_command(consumer_id: Annotated[str, typer.Argument()]) -> None:
    """The account, its meters and its tariff assignments, as JSON."""
    try:
        with make_engine(get_settings().database_url).connect() as conn:
            document = account(conn, consumer_id)
    except ConsumerError as exc:
        raise _fail(str(exc)) from None
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def register(app: typer.Typer) -> None:
    app.add_typer(consumer_app, name="consumer")
