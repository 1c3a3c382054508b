"""CLI: ``meter`` and ``broker`` sub-commands through typer's CliRunner on a tiny app."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import typer
from sqlalchemy import insert, select
from typer.testing import CliRunner

from meterhub.cli import meters as command
from meterhub.config import get_settings
from meterhub.devices import credentials, dynsec, mosquitto
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade

runner = CliRunner()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    url = f"sqlite:///{tmp_path / 'meterhub.db'}"
    upgrade(make_engine(url))
    monkeypatch.setenv("METERHUB_DATABASE_URL", url)
    for name in ("DYNSEC_FILE", "CONTROL_URL", "RESTART_COMMAND"):
        monkeypatch.delenv(f"METERHUB_MOSQUITTO_{name}", raising=False)
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


def _configure(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(f"METERHUB_MOSQUITTO_{name.upper()}", value)
    get_settings.cache_clear()


def _state(path: Path) -> dict[str, dict[str, object]]:
    return {c["username"]: c for c in orjson.loads(path.read_bytes())["clients"]}


def test_meter_add_rewrites_the_broker_state_when_configured(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "dynamic-security.json"
    service = credentials.hash_secret("svc", iterations=1)
    state.write_bytes(
        dynsec.state_json(
            dynsec.state_document([], {mosquitto.INGEST_ACCOUNT: service}, dynsec.Topics())
        )
    )
    _configure(monkeypatch, dynsec_file=str(state))
    result = runner.invoke(app, ["meter", "add", "MTR-1"])
    assert result.exit_code == 0, result.output
    clients = _state(state)
    assert set(clients) == {"MTR-1", "meterhub-ingest"}  # the service account survives
    assert dynsec.encoded_hash(clients["meterhub-ingest"]) == service
    encoded = dynsec.encoded_hash(clients["MTR-1"])
    assert encoded is not None and credentials.verify(_password(result.output), encoded)
    assert clients["MTR-1"]["clientid"] == "MTR-1"
    assert "set METERHUB_MOSQUITTO_CONTROL_URL" in result.output


def test_meter_add_without_broker_settings_says_the_broker_was_not_told(
    app: typer.Typer,
) -> None:
    result = runner.invoke(app, ["meter", "add", "MTR-1"])
    assert result.exit_code == 0, result.output
    assert "METERHUB_MOSQUITTO_DYNSEC_FILE is not set" in result.output


def test_an_unreachable_broker_is_a_warning_and_the_state_file_is_still_written(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The meter is registered and its secret shown; the broker takes it when it restarts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once the socket is closed
    state = tmp_path / "dynamic-security.json"
    _configure(
        monkeypatch,
        dynsec_file=str(state),
        control_url=f"mqtt://meterhub-admin:pw@127.0.0.1:{port}",
    )
    result = runner.invoke(app, ["meter", "add", "MTR-1"])
    assert result.exit_code == 0, result.output
    assert "MQTT password:" in result.output
    assert "WARNING: the running broker was not updated (cannot reach the broker" in result.output
    assert "MTR-1" in _state(state)


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


def test_broker_mosquitto_config_writes_the_conf_and_the_state(
    app: typer.Typer, tmp_path: Path
) -> None:
    runner.invoke(app, ["meter", "add", "MTR-1"])
    out = tmp_path / "broker"
    plugin = tmp_path / "mosquitto_dynamic_security.so"
    result = runner.invoke(
        app,
        ["broker", "mosquitto-config", "--out", str(out), "--dynsec-plugin", str(plugin)],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "dynamic-security.json",
        "dynamic-security.json.services",
        "mosquitto.conf",
    ]
    conf = (out / "mosquitto.conf").read_text().splitlines()
    assert f"plugin {plugin}" in conf
    assert f"plugin_opt_config_file {out / 'dynamic-security.json'}" in conf
    assert f"autosave_interval {mosquitto.DEFAULT_AUTOSAVE_SECONDS}" in conf
    assert set(_state(out / "dynamic-security.json")) == {
        "MTR-1",
        "meterhub-admin",
        "meterhub-control",
        "meterhub-ingest",
    }


def test_broker_mosquitto_config_prints_verifiable_service_passwords(
    app: typer.Typer, tmp_path: Path
) -> None:
    out = tmp_path / "broker"
    result = runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out), "--with-sim"])
    assert result.exit_code == 0, result.output
    clients = _state(out / "dynamic-security.json")
    for name in mosquitto.SERVICE_ACCOUNTS:
        match = re.search(rf"  {name}: (\S+)", result.output)
        assert match, result.output
        encoded = dynsec.encoded_hash(clients[name])
        assert encoded is not None and credentials.verify(match.group(1), encoded)
    assert "METERHUB_MOSQUITTO_CONTROL_URL=mqtts://meterhub-admin:" in result.output


def test_the_simulator_account_exists_only_when_asked_for(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "broker"
    result = runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert mosquitto.SIM_ACCOUNT not in _state(out / "dynamic-security.json")
    assert mosquitto.SIM_ACCOUNT not in result.output


def test_broker_sync_rewrites_the_state_and_keeps_the_services(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "broker"
    runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out)])
    state = out / "dynamic-security.json"
    before = _state(state)
    engine = make_engine(get_settings().database_url)
    with engine.begin() as conn:
        conn.execute(
            insert(schema.meters).values(
                id="MTR-9",
                status="active",
                credential_hash=credentials.hash_secret("x", iterations=1),
                created_at=datetime.now(UTC),
            )
        )
    marker = tmp_path / "restarted"
    _configure(
        monkeypatch,
        dynsec_file=str(state),
        restart_command=f"{sys.executable} -c \"open('{marker}', 'w')\"",
    )
    result = runner.invoke(app, ["broker", "sync", "--restart"])
    assert result.exit_code == 0, result.output
    after = _state(state)
    assert set(after) == set(before) | {"MTR-9"}
    assert after["meterhub-ingest"] == before["meterhub-ingest"]
    assert marker.exists()


def test_broker_sync_needs_an_existing_state(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure(monkeypatch, dynsec_file=str(tmp_path / "absent.json"))
    result = runner.invoke(app, ["broker", "sync"])
    assert result.exit_code == 1
    assert "run meterhub broker mosquitto-config first" in result.output


def test_meter_import_registers_writes_the_state_once_and_restarts(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "broker"
    runner.invoke(app, ["broker", "mosquitto-config", "--out", str(out)])
    restarts = tmp_path / "restarts"
    _configure(
        monkeypatch,
        dynsec_file=str(out / "dynamic-security.json"),
        restart_command=f"{sys.executable} -c \"open('{restarts}', 'a').write('x')\"",
    )
    source = tmp_path / "meters.csv"
    source.write_text("id,phase\nM-1,1\nM-2,3\n")
    secrets = tmp_path / "secrets.csv"
    result = runner.invoke(app, ["meter", "import", str(source), "--credentials-out", str(secrets)])
    assert result.exit_code == 0, result.output
    assert "Registered 2 meters" in result.output
    assert {"M-1", "M-2"} <= set(_state(out / "dynamic-security.json"))
    assert restarts.read_text() == "x"  # once for the whole file
    assert "M-1" in secrets.read_text()


def test_meter_import_reports_every_bad_row_and_registers_nothing(
    app: typer.Typer, tmp_path: Path
) -> None:
    source = tmp_path / "meters.csv"
    source.write_text("id,phase\nM-1,2\nM/2,1\n")
    secrets = tmp_path / "secrets.csv"
    result = runner.invoke(app, ["meter", "import", str(source), "--credentials-out", str(secrets)])
    assert result.exit_code == 1
    assert "2 problem(s), nothing registered" in result.output
    assert "line 2, column 'phase'" in result.output
    assert "line 3, column 'id'" in result.output
    assert not secrets.exists()
    assert "0 meters" in runner.invoke(app, ["meter", "list"]).output


def test_meter_import_refuses_to_overwrite_a_credentials_file(
    app: typer.Typer, tmp_path: Path
) -> None:
    source = tmp_path / "meters.csv"
    source.write_text("id\nM-1\n")
    secrets = tmp_path / "secrets.csv"
    secrets.write_text("keep me")
    result = runner.invoke(app, ["meter", "import", str(source), "--credentials-out", str(secrets)])
    assert result.exit_code == 1
    assert "never overwrites" in result.output
    assert secrets.read_text() == "keep me"


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
