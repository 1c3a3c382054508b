"""`meterhub consumer`: open an account, put it on a tariff, choose its channels, show it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from meterhub.billing.core.tariff import load_tariff
from meterhub.billing.service import save_tariff
from meterhub.cli import consumers as consumer_command
from meterhub.config import get_settings
from meterhub.devices.registry import add_meter
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade
from meterhub.store.schema_delivery import delivery_preferences

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tariffs"
runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    url = f"sqlite:///{tmp_path / 'meterhub.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        save_tariff(conn, load_tariff(EXAMPLES / "nea-domestic.yaml"))
        save_tariff(conn, load_tariff(EXAMPLES / "uk-economy7-price-cap.yaml"))
    monkeypatch.setenv("METERHUB_DATABASE_URL", url)
    monkeypatch.delenv("METERHUB_CONFIG", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    consumer_command.register(app)
    yield app
    get_settings.cache_clear()


def invoke(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["consumer", *args])
    return result.exit_code, result.output


def test_an_account_is_opened_put_on_a_tariff_and_shown(app: typer.Typer) -> None:
    assert invoke(app, "add", "C-1", "--name", "Sita Thapa", "--email", "sita@example.com")[0] == 0
    assert (
        invoke(app, "tariff", "C-1", "nea-domestic", "--from", "2026-01-01", "--amperes", "15")[0]
        == 0
    )
    code, output = invoke(app, "show", "C-1")
    assert code == 0, output
    shown = orjson.loads(output)
    assert (shown["name"], shown["email"], shown["status"]) == (
        "Sita Thapa",
        "sita@example.com",
        "active",
    )
    assert shown["tariffs"] == [{"from": "2026-01-01", "tariff_id": "nea-domestic", "amperes": 15}]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["C 1", "--name", "X"], "consumer id"),
        (["C-2", "--name", " "], "needs a name"),
        (["C-2", "--name", "X", "--email", "sita-at-example"], "not an address"),
        (["C-2", "--name", "X", "--phone", "9812345678"], "international form"),
        # A trailing newline is not part of an id, an address or a number.
        (["C-2\n", "--name", "X"], "consumer id"),
        (["C-2", "--name", "X", "--email", "sita@example.com\n"], "not an address"),
        (["C-2", "--name", "X", "--phone", "+9779812345678\n"], "international form"),
    ],
)
def test_bad_account_details_are_refused_with_the_reason(
    app: typer.Typer, args: list[str], reason: str
) -> None:
    code, output = invoke(app, "add", *args)
    assert code == 2 and reason in output


def test_an_account_with_meters_is_shown_with_them(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita")
    engine = make_engine(get_settings().database_url)
    add_meter(engine, "M-2", consumer_id="C-1", phase=3)
    add_meter(engine, "M-1", consumer_id="C-1", sanctioned_load_kw=5.0)
    code, output = invoke(app, "show", "C-1")
    assert code == 0, output
    assert orjson.loads(output)["meters"] == [
        {"id": "M-1", "status": "active", "sanctioned_load_kw": 5.0, "phase": 1},
        {"id": "M-2", "status": "active", "sanctioned_load_kw": None, "phase": 3},
    ]


def test_an_unknown_account_is_refused_in_one_line(app: typer.Typer) -> None:
    code, output = invoke(app, "show", "C-9")
    assert (code, output) == (2, "error: unknown consumer 'C-9'\n")


def test_a_second_account_with_the_same_id_is_refused(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita")
    code, output = invoke(app, "add", "C-1", "--name", "Ram")
    assert code == 2 and "already exists" in output


def test_a_tariff_by_ampere_rating_needs_the_rating(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita")
    code, output = invoke(app, "tariff", "C-1", "nea-domestic", "--from", "2026-01-01")
    assert code == 2 and "give --amperes" in output
    assert invoke(app, "tariff", "C-1", "uk-economy7-price-cap", "--from", "2026-01-01")[0] == 0


def test_an_unknown_tariff_or_consumer_is_refused(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita")
    code, output = invoke(app, "tariff", "C-1", "no-such", "--from", "2026-01-01")
    assert code == 2 and "unknown tariff 'no-such'" in output and "nea-domestic" in output
    code, output = invoke(app, "tariff", "C-9", "nea-domestic", "--from", "2026-01-01")
    assert code == 2 and "unknown consumer 'C-9'" in output


def test_two_assignments_from_the_same_day_are_refused(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita")
    invoke(app, "tariff", "C-1", "uk-economy7-price-cap", "--from", "2026-01-01")
    code, output = invoke(app, "tariff", "C-1", "uk-economy7-price-cap", "--from", "2026-01-01")
    assert code == 2 and "already on uk-economy7-price-cap from 2026-01-01" in output


def test_notification_channels_are_checked_and_stored(app: typer.Typer) -> None:
    invoke(app, "add", "C-1", "--name", "Sita", "--email", "sita@example.com")
    assert invoke(app, "notify", "C-1", "--channels", "both", "--phone", "+9779812345678")[0] == 0
    with make_engine(get_settings().database_url).connect() as conn:
        row = conn.execute(select(delivery_preferences)).one()
    assert (row.consumer_id, row.channels, row.phone) == ("C-1", "both", "+9779812345678")
    code, output = invoke(app, "notify", "C-1", "--channels", "pigeon")
    assert code == 2 and "email, sms, both, none" in output
    code, output = invoke(app, "notify", "C-1", "--channels", "sms", "--phone", "12")
    assert code == 2 and "international form" in output
