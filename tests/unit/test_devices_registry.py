"""Registry: meters and their credentials in a migrated SQLite file, one by one and in bulk."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from meterhub.devices import credentials, mosquitto, registry
from meterhub.devices.meter_rules import MeterSpec, RowsError
from meterhub.store import keys
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade
from meterhub.store.schema import consumers, meter_installations, meters

HASH = credentials.hash_secret("pw", iterations=1)


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


def test_rotate_credential_of_a_retired_meter_is_refused(engine: Engine) -> None:
    """It has no broker access, so there is nothing for a new secret to open."""
    registry.add_meter(engine, "MTR-1")
    with engine.begin() as connection:
        connection.execute(update(meters).where(meters.c.id == "MTR-1").values(status="replaced"))
    with pytest.raises(registry.RegistryError, match="replaced: it has no broker access"):
        registry.rotate_credential(engine, "MTR-1")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("latitude", 91.0, "latitude must be between -90 and 90"),
        ("longitude", float("nan"), "longitude must be between -180 and 180"),
        ("sanctioned_load_kw", float("inf"), "sanctioned load must be positive"),
        ("role", "boss", "unknown role 'boss'"),
    ],
)
def test_add_meter_refuses_impossible_attributes(
    engine: Engine, option: str, value: object, message: str
) -> None:
    with pytest.raises(registry.RegistryError, match=message):
        registry.add_meter(engine, "MTR-1", **{option: value})  # type: ignore[arg-type]
    assert registry.list_meters(engine) == []


def _consumer(engine: Engine, consumer_id: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            consumers.insert().values(
                id=consumer_id, name=consumer_id, created_at=datetime.now(UTC)
            )
        )


def _stored(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(meters.c.id, meters.c.consumer_id)).all()
    return {row.id: row.consumer_id for row in rows}


def test_import_registers_every_row_with_its_hash_and_installation(engine: Engine) -> None:
    _consumer(engine, "C-1")
    at = datetime(2026, 2, 1, tzinfo=UTC)
    rows = [
        (2, MeterSpec("M-1", consumer_id="C-1", installed_at=at, phase=3)),
        (3, MeterSpec("M-2", role="sub")),
    ]
    hashes = [
        credentials.hash_secret("a", iterations=1),
        credentials.hash_secret("b", iterations=1),
    ]
    registry.import_meters(engine, rows, hashes)
    assert _stored(engine) == {"M-1": "C-1", "M-2": None}
    assert _stored_hash(engine, "M-2") == hashes[1]
    assert [m for m, _ in registry.broker_meter_entries(engine)] == ["M-1", "M-2"]
    with engine.connect() as connection:
        installation = connection.execute(select(meter_installations)).one()
    assert (installation.meter_id, installation.installed_at) == ("M-1", at)


def test_import_names_every_row_the_database_refuses_and_registers_none(engine: Engine) -> None:
    registry.add_meter(engine, "M-OLD")
    rows = [
        (2, MeterSpec("M-1")),
        (3, MeterSpec("M-OLD")),
        (4, MeterSpec("M-2", consumer_id="C-404", transformer_id="T-404")),
    ]
    with pytest.raises(RowsError) as caught:
        registry.import_meters(engine, rows, [HASH] * 3)
    assert [str(e) for e in caught.value.errors] == [
        "line 3, column 'id': meter 'M-OLD' is already registered",
        "line 4, column 'consumer': unknown consumer 'C-404': create it first",
        "line 4, column 'transformer': unknown transformer 'T-404': create it first",
    ]
    assert _stored(engine) == {"M-OLD": None}


def test_import_registers_nothing_when_the_step_before_commit_fails(engine: Engine) -> None:
    def no_credentials_file() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.import_meters(
            engine, [(2, MeterSpec("M-1"))], [HASH], before_commit=no_credentials_file
        )
    assert _stored(engine) == {}


def test_import_checks_ids_in_chunks(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "LOOKUP_CHUNK", 2)
    registry.add_meter(engine, "M-3")
    rows = [(n + 2, MeterSpec(f"M-{n}")) for n in range(5)]
    with pytest.raises(RowsError, match="line 5, column 'id': meter 'M-3' is already registered"):
        registry.import_meters(engine, rows, [HASH] * 5)
