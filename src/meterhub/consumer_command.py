"""`meterhub consumer add | tariff | notify | show`: consumer accounts from the command line."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import orjson
import typer
from sqlalchemy import select

from meterhub.config import get_settings
from meterhub.consumers import ConsumerError, NewConsumer, add_consumer, assign_tariff, check
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.schema_billing import tariff_assignments

if TYPE_CHECKING:
    from meterhub.billing.delivery import Preference

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
    from meterhub.billing.delivery import CHANNELS_OF, set_preference

    if channels not in CHANNELS_OF:
        raise _fail(f"--channels must be one of {', '.join(CHANNELS_OF)}")
    try:
        check(NewConsumer(consumer_id, "-", email, phone))  # the account's checks
        with make_engine(get_settings().database_url).begin() as conn:
            _require_consumer(conn, consumer_id)
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
    with make_engine(get_settings().database_url).connect() as conn:
        try:
            account = _require_consumer(conn, consumer_id)
        except ConsumerError as exc:
            raise _fail(str(exc)) from None
        m, t = schema.meters, tariff_assignments
        meters = conn.execute(
            select(m.c.id, m.c.status, m.c.sanctioned_load_kw, m.c.phase)
            .where(m.c.consumer_id == consumer_id)
            .order_by(m.c.id)
        ).all()
        assignments = conn.execute(
            select(t.c.from_date, t.c.tariff_id, t.c.amperes)
            .where(t.c.consumer_id == consumer_id)
            .order_by(t.c.from_date)
        ).all()
    document: dict[str, Any] = {
        **{key: account[key] for key in ("id", "name", "email", "phone", "address", "status")},
        "category": account["tariff_category"],
        "meters": [dict(row._mapping) for row in meters],
        "tariffs": [
            {"from": row.from_date, "tariff_id": row.tariff_id, "amperes": row.amperes}
            for row in assignments
        ],
    }
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=_json))


def _require_consumer(conn: Any, consumer_id: str) -> dict[str, Any]:
    c = schema.consumers
    row = conn.execute(select(c).where(c.c.id == consumer_id)).first()
    if row is None:
        raise ConsumerError(f"unknown consumer {consumer_id!r}")
    return dict(row._mapping)


def _json(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def register(app: typer.Typer) -> None:
    app.add_typer(consumer_app, name="consumer")
