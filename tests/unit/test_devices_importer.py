"""meter import end to end on SQLite: all or nothing, secrets written once to a 0600 file."""

from __future__ import annotations

import csv
import stat
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from meterhub.devices import credentials, importer, registry
from meterhub.devices.meter_rules import RowsError
from meterhub.store.schema import consumers, meter_installations, meters

UTC_ZONE = ZoneInfo("UTC")


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meters.csv"
    path.write_text(text)
    return path


def _hashes(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row.id: row.credential_hash for row in conn.execute(select(meters))}


def test_each_meter_gets_its_own_secret_and_only_its_hash_is_stored(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    source = _csv(tmp_path, "id,phase\n" + "".join(f"M-{n},3\n" for n in range(25)))
    out = tmp_path / "out" / "secrets.csv"
    result = importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE, workers=2)
    assert result.meters == 25 and result.credentials_path == out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(importer.CREDENTIALS_HEADER)
    assert [r["meter_id"] for r in rows] == [f"M-{n}" for n in range(25)]
    assert all(r["mqtt_username"] == r["mqtt_client_id"] == r["meter_id"] for r in rows)
    assert len({r["mqtt_password"] for r in rows}) == 25
    stored = _hashes(sqlite_engine)
    for row in rows:
        assert row["mqtt_password"] not in stored[row["meter_id"]]
        assert credentials.verify(row["mqtt_password"], stored[row["meter_id"]])


def test_a_bad_row_registers_nothing_and_writes_no_file(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    source = _csv(tmp_path, "id,phase\nM-1,1\nM-2,2\n")
    out = tmp_path / "secrets.csv"
    with pytest.raises(RowsError, match="line 3, column 'phase'"):
        importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE)
    assert not out.exists()
    assert registry.list_meters(sqlite_engine) == []


def test_a_row_the_database_refuses_registers_nothing_and_writes_no_file(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    source = _csv(tmp_path, "id,consumer\nM-1,\nM-2,C-404\n")
    out = tmp_path / "secrets.csv"
    with pytest.raises(RowsError, match="line 3, column 'consumer': unknown consumer 'C-404'"):
        importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE)
    assert not out.exists()
    assert registry.list_meters(sqlite_engine) == []


def test_an_existing_credentials_file_is_never_overwritten(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    source = _csv(tmp_path, "id\nM-1\n")
    out = tmp_path / "secrets.csv"
    out.write_text("yesterday's secrets")
    with pytest.raises(importer.CredentialsFileExistsError, match="never overwrites"):
        importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE)
    assert out.read_text() == "yesterday's secrets"
    assert registry.list_meters(sqlite_engine) == []


def test_a_file_that_appears_during_the_import_is_kept_and_nothing_registered(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _csv(tmp_path, "id\nM-1\n")
    out = tmp_path / "secrets.csv"
    original = importer.hash_all

    def hash_then_race(secrets: list[str], workers: int | None = None) -> list[str]:
        out.write_text("another operator's import")
        return original(secrets, workers)

    monkeypatch.setattr(importer, "hash_all", hash_then_race)
    with pytest.raises(importer.CredentialsFileExistsError):
        importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE)
    assert out.read_text() == "another operator's import"
    assert registry.list_meters(sqlite_engine) == []


def test_when_the_commit_fails_the_credentials_file_is_removed(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _csv(tmp_path, "id\nM-1\n")
    out = tmp_path / "secrets.csv"
    real = registry.import_meters

    def commit_fails(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise ConnectionError("server closed the connection during COMMIT")

    monkeypatch.setattr(registry, "import_meters", commit_fails)
    with pytest.raises(ConnectionError):
        importer.import_file(sqlite_engine, source, out, zone=UTC_ZONE)
    assert not out.exists()


def test_installed_at_without_an_offset_is_local_time(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    with sqlite_engine.begin() as conn:
        conn.execute(consumers.insert().values(id="C-1", name="Ram", created_at=datetime.now(UTC)))
    source = _csv(tmp_path, "id,consumer,installed_at\nM-1,C-1,2026-03-01T09:00\n")
    importer.import_file(sqlite_engine, source, tmp_path / "s.csv", zone=ZoneInfo("Asia/Kathmandu"))
    with sqlite_engine.connect() as conn:
        installed_at = conn.execute(select(meter_installations.c.installed_at)).scalar_one()
    assert installed_at == datetime(2026, 3, 1, 3, 15, tzinfo=UTC)  # 09:00 at UTC+05:45


def test_hash_all_keeps_the_order_of_the_secrets() -> None:
    secrets = [f"s{n}" for n in range(2_500)]
    hashes = importer.hash_all(secrets, workers=2)
    assert len(hashes) == 2_500
    assert all(credentials.verify(s, h) for s, h in zip(secrets[::250], hashes[::250], strict=True))
