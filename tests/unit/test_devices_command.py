"""CLI: ``meter`` and ``broker`` sub-commands through typer's CliRunner on a tiny app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import insert, select
from typer.testing import CliRunner

from meterhub.config import get_settings
from meterhub.devices import command, credentials, mosquitto
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    url = f"sqlite:///{tmp_path / 'meterhub.db'}"
    upgrade(make_engine(url))
    monkeypatch.setenv("METERHUB_DATABASE_URL", url)
    monkeypatch.delenv("METERHUB_MOSQUITTO_PASSWD_FILE", raising=False)
    monkeypatch.delenv("METERHUB_MOSQUITTO_ACL_FILE", raising=False)
    monkeypatch.delenv("METERHUB_CONFIG", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    command.register(app)
    yield app
    get_settings.cache_clear()


def _password(output: str) -> str:
    match = re.search(r"MQTT password: (\S+)", output)
    assert match, output
    return match.group(1)


def test_meter_add_prints_credential_once_with_warning(app: typer.Typer) -> None:
    result = runner.invoke(app, ["meter", "add", "MTR-1", "--sanctioned-kw", "5", "--phase", "3"])
    assert result.exit_code == 0, result.output
    assert len(_password(result.output)) == 32
    assert "not shown again" in result.output


def test_meter_add_duplicate_fails_with_message(app: typer.Typer) -> None:
    runner.invoke(app, ["meter", "add", "MTR-1"])
    result = runner.invoke(app, ["meter", "add", "MTR-1"])
    assert result.exit_code == 1
    assert "already registered" in result.output


def test_meter_add_invalid_id_fails_with_message(app: typer.Typer) -> None:
    result = runner.invoke(app, ["meter", "add", "MTR/#"])
    assert result.exit_code == 1
    assert "invalid meter id" in result.output


def test_meter_add_rewrites_broker_files_when_configured(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    passwd.write_text(f"meterhub-ingest:{credentials.hash_secret('svc', iterations=1)}\n")
    monkeypatch.setenv("METERHUB_MOSQUITTO_PASSWD_FILE", str(passwd))
    monkeypatch.setenv("METERHUB_MOSQUITTO_ACL_FILE", str(acl))
    get_settings.cache_clear()
    result = runner.invoke(app, ["meter", "add", "MTR-1"])
    assert result.exit_code == 0, result.output
    entries = mosquitto.parse_password_file(passwd.read_text())
    assert set(entries) == {"MTR-1", "meterhub-ingest"}  # the service account survives
    assert credentials.verify(_password(result.output), entries["MTR-1"])
    assert "pattern read meters/%u/cmd" in acl.read_text()


def test_rotate_credential_prints_a_new_secret(app: typer.Typer) -> None:
    first = _password(runner.invoke(app, ["meter", "add", "MTR-1"]).output)
    result = runner.invoke(app, ["meter", "rotate-credential", "MTR-1"])
    assert result.exit_code == 0, result.output
    assert "New MQTT password for MTR-1" in result.output
    assert first not in result.output


def test_rotate_credential_of_unknown_meter_fails(app: typer.Typer) -> None:
    result = runner.invoke(app, ["meter", "rotate-credential", "MTR-404"])
    assert result.exit_code == 1
    assert "not registered" in result.output


def test_meter_list_never_shows_credentials(app: typer.Typer) -> None:
    secret = _password(runner.invoke(app, ["meter", "add", "MTR-1"]).output)
    result = runner.invoke(app, ["meter", "list"])
    assert result.exit_code == 0
    assert "MTR-1" in result.output
    assert secret not in result.output
    assert "$7$" not in result.output


def test_broker_mosquitto_config_writes_three_files(app: typer.Typer, tmp_path: Path) -> None:
    runner.invoke(app, ["meter", "add", "MTR-1"])
    out = tmp_path / "broker"
    result = runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["acl", "mosquitto.conf", "passwd"]
    assert f"password_file {out / 'passwd'}" in (out / "mosquitto.conf").read_text()


def test_broker_mosquitto_config_prints_verifiable_service_passwords(
    app: typer.Typer, tmp_path: Path
) -> None:
    out = tmp_path / "broker"
    result = runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out)])
    entries = mosquitto.parse_password_file((out / "passwd").read_text())
    for name in mosquitto.SERVICE_ACCOUNTS:
        match = re.search(rf"{name}: (\S+)", result.output)
        assert match, result.output
        assert credentials.verify(match.group(1), entries[name])


def test_meter_add_with_installed_at_records_the_move_in(app: typer.Typer) -> None:
    engine = make_engine(get_settings().database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.consumers).values(id="C-9", name="Sita", created_at=datetime.now(UTC))
        )
    result = runner.invoke(
        app,
        ["meter", "add", "MTR-9", "--consumer", "C-9", "--installed-at", "2026-02-15T10:30+05:45"],
    )
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        row = conn.execute(select(schema.meter_installations)).one()
    assert (row.consumer_id, row.meter_id) == ("C-9", "MTR-9")
    assert row.installed_at == datetime(2026, 2, 15, 4, 45, tzinfo=UTC)
    assert row.removed_at is None


def test_meter_add_installed_at_without_a_consumer_is_refused(app: typer.Typer) -> None:
    result = runner.invoke(app, ["meter", "add", "MTR-10", "--installed-at", "2026-02-15"])
    assert result.exit_code != 0
    assert "needs the consumer" in result.output


def test_meter_add_with_a_garbled_installed_at_is_refused_and_registers_nothing(
    app: typer.Typer,
) -> None:
    result = runner.invoke(app, ["meter", "add", "MTR-11", "--installed-at", "last Tuesday"])
    assert result.exit_code != 0
    assert "--installed-at 'last Tuesday' is not an ISO 8601 date and time" in result.output
    with make_engine(get_settings().database_url).connect() as conn:
        assert conn.execute(select(schema.meters)).first() is None
