"""The broker's state file, rewritten from the meters table (SQLite), and the restart command."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, update

from meterhub.devices import broker_state, credentials, dynsec, mosquitto, registry
from meterhub.store.schema import meters

TOPICS = dynsec.Topics()
SERVICES = {
    mosquitto.INGEST_ACCOUNT: credentials.hash_secret("i", iterations=1),
    mosquitto.ADMIN_ACCOUNT: credentials.hash_secret("a", iterations=1),
}


def _usernames(path: Path) -> list[str]:
    return [client["username"] for client in orjson.loads(path.read_bytes())["clients"]]


def test_the_state_holds_meters_with_access_and_the_services(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    registry.add_meter(sqlite_engine, "M-2")
    registry.add_meter(sqlite_engine, "M-1")
    registry.add_meter(sqlite_engine, "M-3")
    with sqlite_engine.begin() as conn:
        conn.execute(update(meters).where(meters.c.id == "M-3").values(status="inactive"))
    path = tmp_path / "broker" / "dynamic-security.json"
    written = broker_state.write_state(sqlite_engine, path, TOPICS, services=SERVICES)
    assert _usernames(path) == ["M-1", "M-2", "meterhub-admin", "meterhub-ingest"]
    assert (written.meters, written.services) == (2, ("meterhub-admin", "meterhub-ingest"))
    assert written.bytes == path.stat().st_size
    # The broker (another user, same group) reads it; nobody else.
    assert stat.S_IMODE(path.stat().st_mode) == broker_state.STATE_FILE_MODE == 0o640


def test_a_rewrite_keeps_the_service_accounts_of_the_file(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "dynamic-security.json"
    broker_state.write_state(sqlite_engine, path, TOPICS, services=SERVICES)
    registry.add_meter(sqlite_engine, "M-1")
    broker_state.write_state(sqlite_engine, path, TOPICS)
    assert _usernames(path) == ["M-1", "meterhub-admin", "meterhub-ingest"]
    assert broker_state.read_service_hashes(path) == SERVICES


def test_the_service_hashes_are_kept_beside_the_state_readable_by_meterhub_only(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "dynamic-security.json"
    broker_state.write_state(sqlite_engine, path, TOPICS, services=SERVICES)
    sidecar = broker_state.services_path(path)
    assert orjson.loads(sidecar.read_bytes()) == SERVICES
    assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600


def test_without_the_sidecar_the_services_come_from_the_state_itself(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """A state written by the broker's own save, or before the sidecar existed."""
    path = tmp_path / "dynamic-security.json"
    path.write_bytes(
        orjson.dumps(dynsec.state_document([], SERVICES, TOPICS), option=orjson.OPT_INDENT_2)
    )
    registry.add_meter(sqlite_engine, "M-1")
    broker_state.write_state(sqlite_engine, path, TOPICS)
    assert _usernames(path) == ["M-1", "meterhub-admin", "meterhub-ingest"]
    assert broker_state.read_service_hashes(path) == SERVICES


def test_a_state_file_that_is_not_json_is_reported(sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "dynamic-security.json"
    path.write_text("user meterhub-ingest\n")
    with pytest.raises(broker_state.BrokerStateError, match="not a JSON"):
        broker_state.write_state(sqlite_engine, path, TOPICS)
    assert path.read_text() == "user meterhub-ingest\n"


def test_without_a_file_there_are_no_service_accounts(tmp_path: Path) -> None:
    assert broker_state.read_service_hashes(tmp_path / "absent.json") == {}


def test_the_restart_command_runs_and_its_failure_is_explained(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    broker_state.restart_broker(f"{sys.executable} -c \"open('{marker}', 'w')\"")
    assert marker.exists()
    failing = f"{sys.executable} -c \"import sys; sys.exit('unit mosquitto not found')\""
    with pytest.raises(broker_state.BrokerStateError, match="exited with 1: unit mosquitto"):
        broker_state.restart_broker(failing)
    with pytest.raises(broker_state.BrokerStateError, match="failed"):
        broker_state.restart_broker(str(tmp_path / "no-such-command"))
