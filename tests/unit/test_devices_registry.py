"""Registry: meters and their credentials in a migrated SQLite file, broker files on disk."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from meterhub.devices import credentials, mosquitto, registry
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade
from meterhub.store.schema import consumers, meters


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'meterhub.db'}")
    upgrade(engine)
    return engine


def _stored_hash(engine: Engine, meter_id: str) -> str | None:
    with engine.connect() as connection:
        value = connection.execute(
            select(meters.c.credential_hash).where(meters.c.id == meter_id)
        ).scalar_one()
    assert value is None or isinstance(value, str)
    return value


def test_add_meter_stores_only_the_hash_of_the_returned_secret(engine: Engine) -> None:
    secret = registry.add_meter(engine, "MTR-1")
    stored = _stored_hash(engine, "MTR-1")
    assert stored is not None
    assert secret not in stored
    assert credentials.verify(secret, stored)


def test_add_meter_records_its_attributes(engine: Engine) -> None:
    registry.add_meter(engine, "MTR-1", sanctioned_load_kw=5.0, phase=3, latitude=27.7)
    with engine.connect() as connection:
        row = connection.execute(select(meters).where(meters.c.id == "MTR-1")).one()
    assert (row.sanctioned_load_kw, row.phase, row.latitude, row.status) == (5.0, 3, 27.7, "active")
    assert row.role == "consumer"
    assert row.created_at is not None


def test_add_meter_refuses_duplicate_id(engine: Engine) -> None:
    registry.add_meter(engine, "MTR-1")
    with pytest.raises(registry.DuplicateMeterError, match="already registered"):
        registry.add_meter(engine, "MTR-1")


def test_add_meter_refuses_invalid_id(engine: Engine) -> None:
    with pytest.raises(mosquitto.InvalidMeterIdError):
        registry.add_meter(engine, "MTR/+")


def test_add_meter_refuses_unknown_consumer(engine: Engine) -> None:
    with pytest.raises(registry.RegistryError, match="unknown consumer"):
        registry.add_meter(engine, "MTR-1", consumer_id="C-404")


def test_add_meter_links_existing_consumer(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            consumers.insert().values(id="C-1", name="Asha", created_at=datetime.now(UTC))
        )
    registry.add_meter(engine, "MTR-1", consumer_id="C-1")
    assert registry.list_meters(engine)[0].consumer_id == "C-1"


def test_add_meter_refuses_phase_two(engine: Engine) -> None:
    with pytest.raises(registry.RegistryError, match="phase"):
        registry.add_meter(engine, "MTR-1", phase=2)


def test_rotate_credential_invalidates_old_secret(engine: Engine) -> None:
    old = registry.add_meter(engine, "MTR-1")
    new = registry.rotate_credential(engine, "MTR-1")
    stored = _stored_hash(engine, "MTR-1")
    assert stored is not None
    assert credentials.verify(new, stored)
    assert not credentials.verify(old, stored)


def test_rotate_credential_of_unknown_meter_fails(engine: Engine) -> None:
    with pytest.raises(registry.UnknownMeterError):
        registry.rotate_credential(engine, "MTR-404")


def test_list_meters_says_whether_a_credential_exists(engine: Engine) -> None:
    registry.add_meter(engine, "MTR-2")
    registry.add_meter(engine, "MTR-1")
    rows = registry.list_meters(engine)
    assert [(r.id, r.has_credential) for r in rows] == [("MTR-1", True), ("MTR-2", True)]


def test_broker_entries_leave_out_retired_meters(engine: Engine) -> None:
    registry.add_meter(engine, "MTR-1")
    registry.add_meter(engine, "MTR-2")
    with engine.begin() as connection:
        connection.execute(update(meters).where(meters.c.id == "MTR-2").values(status="replaced"))
    assert [meter_id for meter_id, _ in registry.broker_meter_entries(engine)] == ["MTR-1"]


def test_write_broker_files_writes_meters_and_services_mode_0600(
    engine: Engine, tmp_path: Path
) -> None:
    registry.add_meter(engine, "MTR-1")
    service_hash = credentials.hash_secret("svc")
    passwd, acl = tmp_path / "broker" / "passwd", tmp_path / "broker" / "acl"
    count = registry.write_broker_files(
        engine, passwd, acl, {"meterhub-ingest": service_hash}, topic_prefix="m"
    )
    assert count == 1
    entries = mosquitto.parse_password_file(passwd.read_text())
    assert set(entries) == {"MTR-1", "meterhub-ingest"}
    assert entries["MTR-1"] == _stored_hash(engine, "MTR-1")
    assert "pattern write m/%u/readings" in acl.read_text()
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    assert stat.S_IMODE(acl.stat().st_mode) == 0o600


def test_write_broker_files_leaves_no_temporary_files(engine: Engine, tmp_path: Path) -> None:
    registry.write_broker_files(engine, tmp_path / "passwd", tmp_path / "acl", {})
    registry.write_broker_files(engine, tmp_path / "passwd", tmp_path / "acl", {})
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []


def test_read_service_accounts_keeps_only_service_lines(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("MTR-1:$7$1$a$b\nmeterhub-control:$7$1$c$d\n")
    assert registry.read_service_accounts(passwd) == {"meterhub-control": "$7$1$c$d"}


def test_read_service_accounts_of_missing_file_is_empty(tmp_path: Path) -> None:
    assert registry.read_service_accounts(tmp_path / "absent") == {}
