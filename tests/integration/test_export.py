"""`meterhub export`: readings, intervals, events and rejects as CSV or Parquet, with filters.

Run through the real command line (typer's CliRunner on ``meterhub.cli.app``) against a seeded
SQLite file or PostgreSQL database named by METERHUB_DATABASE_URL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner, Result

from meterhub.cli import app
from meterhub.config import get_settings
from meterhub.readings.events import DeadLetter, MeterEvent
from meterhub.readings.model import Reading
from meterhub.store import schema
from meterhub.store.export import export
from meterhub.store.ingest_writes import IngestWriter, WriteBatch

pytestmark = pytest.mark.integration

# Local midnight 2026-11-02 in Kathmandu (+05:45) is 18:15 UTC on 2026-11-01.
T0 = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
QUARTER = timedelta(minutes=15)

READING_HEADER = [
    "meter_id",
    "ts",
    "received_at",
    "seq",
    "import_kwh",
    "export_kwh",
    "import_kwh_by_tariff",
    "power_w",
    "voltage_v",
    "current_a",
    "pf",
    "freq_hz",
    "extra",
    "quality",
    "flags",
]
HEADERS = {
    "readings": READING_HEADER,
    "intervals": [
        "meter_id",
        "start",
        "seconds",
        "import_kwh",
        "export_kwh",
        "quality",
        "computed_at",
    ],
    "events": ["meter_id", "id", "ts", "type", "source", "payload", "received_at"],
    "rejects": ["id", "received_at", "topic", "meter_id", "payload", "reason_code", "message"],
}


def seed(engine: Engine) -> None:
    """M-1 and M-2, 4 readings each at 18:00, 18:15, 18:30, 18:45 UTC (M-1 100+n kWh, M-2
    200+n kWh), 3 intervals each, one meter event, two rejected messages."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.meters), [{"id": m, "created_at": RECEIVED} for m in ("M-1", "M-2")]
        )
    readings = [
        Reading(meter, T0 + QUARTER * n, import_kwh=base + n, voltage_v=230.0)
        for meter, base in (("M-2", 200.0), ("M-1", 100.0))  # stored order must not matter
        for n in range(4)
    ]
    event = MeterEvent("M-1", "ev-1", T0, "cover_open", "meter", {"cover": "open"}, RECEIVED)
    rejects = [
        DeadLetter("meters/M-1/readings", "M-1", b"{not json", "bad_json", "no", RECEIVED),
        DeadLetter(
            "meters/../x", None, b"\xff", "bad_topic", "topic", RECEIVED + timedelta(seconds=1)
        ),
    ]
    IngestWriter(engine).write(
        WriteBatch(received_at=RECEIVED, readings=readings, events=[event], dead_letters=rejects)
    )
    with engine.begin() as conn:
        conn.execute(
            insert(schema.intervals),
            [
                {
                    "meter_id": meter,
                    "start": T0 + QUARTER * n,
                    "seconds": 900,
                    "import_kwh": 1.0,
                    "export_kwh": 0.0,
                    "quality": "actual",
                    "computed_at": RECEIVED,
                }
                for meter in ("M-1", "M-2")
                for n in range(3)
            ],
        )


@pytest.fixture
def database(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The seeded test database as the CLI's METERHUB_DATABASE_URL (settings cache cleared)."""
    seed(any_engine)
    monkeypatch.setenv(
        "METERHUB_DATABASE_URL", any_engine.url.render_as_string(hide_password=False)
    )
    get_settings.cache_clear()
    yield any_engine
    get_settings.cache_clear()


@pytest.fixture
def empty_database(any_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv(
        "METERHUB_DATABASE_URL", any_engine.url.render_as_string(hide_password=False)
    )
    get_settings.cache_clear()
    yield any_engine
    get_settings.cache_clear()


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["export", *args], catch_exceptions=False)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_readings_csv_to_stdout_has_a_header_and_every_row(database: Engine) -> None:
    result = run("readings")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(",") == READING_HEADER
    rows = csv_rows(result.stdout)
    assert len(rows) == 8  # 2 meters x 4 readings
    # Ordered by meter, then time.
    assert [(r["meter_id"], float(r["import_kwh"])) for r in rows] == [
        ("M-1", 100.0),
        ("M-1", 101.0),
        ("M-1", 102.0),
        ("M-1", 103.0),
        ("M-2", 200.0),
        ("M-2", 201.0),
        ("M-2", 202.0),
        ("M-2", 203.0),
    ]
    assert "8 readings rows exported" in result.stderr


def test_meter_and_utc_time_filters_select_a_half_open_range(database: Engine) -> None:
    # [18:15, 18:45) UTC holds M-2's readings at 18:15 and 18:30: 201 and 202 kWh.
    result = run(
        "readings",
        "--meter",
        "M-2",
        "--from",
        "2026-11-01T18:15:00+00:00",
        "--to",
        "2026-11-01T18:45:00+00:00",
    )
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    assert [(r["meter_id"], float(r["import_kwh"])) for r in rows] == [
        ("M-2", 201.0),
        ("M-2", 202.0),
    ]
    assert "2 readings rows exported" in result.stderr


@pytest.mark.parametrize(
    "engine_fixture",
    [
        pytest.param(
            "sqlite_engine",
        ),
        "pg_engine",
    ],
)
def test_from_in_the_utility_zone_means_that_instant(
    request: pytest.FixtureRequest, engine_fixture: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)
    seed(engine)
    monkeypatch.setenv("METERHUB_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    # The README's form: --from 2026-11-02T00:00:00+05:45 is 18:15 UTC; readings at 18:15, 18:30
    # and 18:45 UTC qualify, for each of the 2 meters: 3 x 2 = 6 rows.
    try:
        result = run("readings", "--from", "2026-11-02T00:00:00+05:45")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.stderr
    assert len(csv_rows(result.stdout)) == 6


def test_csv_to_an_output_file(database: Engine, tmp_path: Path) -> None:
    target = tmp_path / "intervals.csv"
    result = run("intervals", "--meter", "M-1", "--output", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # the data went to the file, not to stdout
    rows = csv_rows(target.read_text())
    assert len(rows) == 3  # M-1's 3 intervals
    assert {r["meter_id"] for r in rows} == {"M-1"}
    assert sum(float(r["import_kwh"]) for r in rows) == pytest.approx(3.0)  # 3 x 1 kWh
    assert "3 intervals rows exported" in result.stderr


def test_parquet_to_a_file_reads_back_with_types(database: Engine, tmp_path: Path) -> None:
    target = tmp_path / "readings.parquet"
    result = run("readings", "--format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(target)
    assert table.column_names == READING_HEADER
    assert table.num_rows == 8
    m1, m2 = [100.0, 101.0, 102.0, 103.0], [200.0, 201.0, 202.0, 203.0]
    assert table.column("import_kwh").to_pylist() == [*m1, *m2]
    assert str(table.schema.field("import_kwh").type) == "double"
    assert str(table.schema.field("ts").type).startswith("timestamp")


def test_parquet_to_stdout_with_filters(database: Engine) -> None:
    # M-1 from 18:30 UTC: readings at 18:30 and 18:45 (102, 103 kWh).
    result = run(
        "readings", "--format", "parquet", "--meter", "M-1", "--from", "2026-11-01T18:30:00+00:00"
    )
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(io.BytesIO(result.stdout_bytes))
    assert table.column("meter_id").to_pylist() == ["M-1", "M-1"]
    assert table.column("import_kwh").to_pylist() == [102.0, 103.0]


@pytest.mark.parametrize(
    "engine_fixture",
    [
        pytest.param(
            "sqlite_engine",
        ),
        "pg_engine",
    ],
)
def test_exported_timestamps_say_they_are_utc(
    request: pytest.FixtureRequest, engine_fixture: str, tmp_path: Path
) -> None:
    engine: Engine = request.getfixturevalue(engine_fixture)
    seed(engine)
    text_out = io.BytesIO()
    export(engine, "readings", text_out, file_format="csv", meter_id="M-1")
    first = csv_rows(text_out.getvalue().decode())[0]
    assert datetime.fromisoformat(first["ts"]) == T0  # a naive time never equals an aware one
    parquet_out = io.BytesIO()
    export(engine, "readings", parquet_out, file_format="parquet", meter_id="M-1")
    ts_type = pq.read_table(io.BytesIO(parquet_out.getvalue())).schema.field("ts").type
    assert getattr(ts_type, "tz", None) in ("UTC", "Etc/UTC", "+00:00")


def test_events_export_json_payload_as_text(database: Engine) -> None:
    result = run("events", "--meter", "M-1")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    cover = [r for r in rows if r["type"] == "cover_open"]
    assert len(cover) == 1
    assert cover[0]["payload"] == '{"cover":"open"}'
    assert cover[0]["source"] == "meter"


def test_rejects_export_keeps_raw_payload_and_reason(database: Engine) -> None:
    result = run("rejects")
    assert result.exit_code == 0, result.stderr
    rows = csv_rows(result.stdout)
    # In order of arrival; undecodable bytes kept visible as escapes.
    assert [(r["reason_code"], r["payload"]) for r in rows] == [
        ("bad_json", "{not json"),
        ("bad_topic", "\\xff"),
    ]
    one_meter = csv_rows(run("rejects", "--meter", "M-1").stdout)
    assert [r["reason_code"] for r in one_meter] == ["bad_json"]


@pytest.mark.parametrize("kind", ["readings", "intervals", "events", "rejects"])
def test_an_empty_csv_export_still_has_the_header(empty_database: Engine, kind: str) -> None:
    result = run(kind)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [",".join(HEADERS[kind])]
    assert f"0 {kind} rows exported" in result.stderr


def test_a_filter_that_matches_nothing_still_has_the_header(database: Engine) -> None:
    result = run("readings", "--meter", "NO-SUCH-METER")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [",".join(READING_HEADER)]


def test_an_empty_parquet_export_has_the_columns(empty_database: Engine, tmp_path: Path) -> None:
    target = tmp_path / "empty.parquet"
    result = run("intervals", "--format", "parquet", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    table = pq.read_table(target)
    assert table.num_rows == 0
    assert table.column_names == HEADERS["intervals"]


@pytest.mark.parametrize("option", ["--from", "--to"])
def test_a_bound_without_an_offset_exits_2_with_a_clear_message(
    database: Engine, option: str
) -> None:
    result = run("readings", option, "2026-11-01T00:00:00")
    assert result.exit_code == 2
    assert f"{option} needs a UTC offset" in result.stderr
    assert result.stdout == ""


def test_csv_in_several_chunks_has_one_header(any_engine: Engine) -> None:
    seed(any_engine)
    out = io.BytesIO()
    # 8 readings in chunks of 3: 3 + 3 + 2, one header line.
    count = export(any_engine, "readings", out, file_format="csv", chunk_rows=3)
    lines = out.getvalue().decode().splitlines()
    assert count == 8
    assert len(lines) == 1 + 8
    assert lines.count(",".join(READING_HEADER)) == 1


def test_parquet_in_several_chunks_survives_a_column_null_in_the_first(
    any_engine: Engine,
) -> None:
    # M-1's readings (first in meter order) have no power_w; M-2's have 50 W.
    with any_engine.begin() as conn:
        conn.execute(
            insert(schema.meters), [{"id": m, "created_at": RECEIVED} for m in ("M-1", "M-2")]
        )
    readings = [Reading("M-1", T0 + QUARTER * n, import_kwh=100.0 + n) for n in range(2)] + [
        Reading("M-2", T0 + QUARTER * n, import_kwh=200.0 + n, power_w=50.0) for n in range(2)
    ]
    IngestWriter(any_engine).write(WriteBatch(received_at=RECEIVED, readings=readings))
    out = io.BytesIO()
    # Chunks of 2: M-1's rows (power_w null), then M-2's (power_w 50.0).
    count = export(any_engine, "readings", out, file_format="parquet", chunk_rows=2)
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert count == 4
    assert table.column("power_w").to_pylist() == [None, None, 50.0, 50.0]
