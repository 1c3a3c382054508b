"""`meterhub db upgrade` on fresh databases: prints the revision and can run again safely."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from conftest import PG_ADMIN_URL, ROOT, service_missing
from meterhub.store.db import make_engine

pytestmark = pytest.mark.integration


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from meterhub.store.migrate import MIGRATIONS

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


HEAD = _head_revision()
TABLES = {
    "feeders",
    "transformers",
    "consumers",
    "meters",
    "readings",
    "intervals",
    "interval_work",
    "events",
    "dead_letters",
    "ingest_counters",
}


def db_upgrade(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERHUB_")}
    env["METERHUB_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty PostgreSQL database (no schema at all), dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        service_missing("PostgreSQL at " + PG_ADMIN_URL)
        raise
    name = f"meterhub_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_upgrade_creates_a_fresh_sqlite_file_and_prints_the_revision(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "meterhub.db"  # the directory does not exist yet
    first = db_upgrade(f"sqlite:///{path}")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database at revision {HEAD}"
    assert path.exists()
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_upgrade_twice_on_sqlite_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meterhub.db'}"
    assert db_upgrade(url).returncode == 0
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO feeders (id, name, created_at) VALUES ('F-1', 'F', '2026-11-01')")
        )
    second = db_upgrade(url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"database at revision {HEAD}"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            HEAD
        ]
        assert conn.execute(text("SELECT count(*) FROM feeders")).scalar_one() == 1  # data kept
    engine.dispose()


def test_upgrade_on_a_fresh_postgresql_database(fresh_pg_url: str) -> None:
    first = db_upgrade(fresh_pg_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"database at revision {HEAD}"
    engine = make_engine(fresh_pg_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            kinds: dict[str, str] = dict(
                conn.execute(
                    text(
                        "SELECT relname, relkind FROM pg_class "
                        "WHERE relname IN ('readings', 'intervals', 'meters', "
                        "'readings_default', 'intervals_default')"
                    )
                ).all()
            )
        # readings and intervals are partitioned parents ('p') with DEFAULT partitions ('r').
        assert kinds == {
            "readings": "p",
            "intervals": "p",
            "meters": "r",
            "readings_default": "r",
            "intervals_default": "r",
        }
    finally:
        engine.dispose()


def test_upgrade_twice_on_postgresql_is_harmless(fresh_pg_url: str) -> None:
    assert db_upgrade(fresh_pg_url).returncode == 0
    engine = make_engine(fresh_pg_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO feeders (id, name, created_at) VALUES ('F-1', 'F', now())"))
    second = db_upgrade(fresh_pg_url)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"database at revision {HEAD}"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [
            HEAD
        ]
        assert conn.execute(text("SELECT count(*) FROM feeders")).scalar_one() == 1
    engine.dispose()


def test_upgrade_accepts_the_postgres_scheme_operators_write(fresh_pg_url: str) -> None:
    # postgres:// (Heroku style) is normalised to the psycopg 3 driver.
    url = fresh_pg_url.replace("postgresql://", "postgres://", 1)
    result = db_upgrade(url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"database at revision {HEAD}"


def test_upgrade_against_an_unreachable_database_fails_nonzero(tmp_path: Path) -> None:
    result = db_upgrade("postgresql://postgres@127.0.0.1:1/nowhere")
    assert result.returncode != 0
    assert "database at revision" not in result.stdout
