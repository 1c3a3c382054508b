"""meter import's CSV: what a row becomes, and every problem named by line and column."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.devices.meter_csv import COLUMNS, parse_meter_csv
from meterhub.devices.meter_rules import MeterSpec, RowsError

KATHMANDU = ZoneInfo("Asia/Kathmandu")


def _parse(text: str) -> list[tuple[int, MeterSpec]]:
    return parse_meter_csv(text.splitlines(keepends=True), KATHMANDU)


def _errors(text: str) -> list[str]:
    with pytest.raises(RowsError) as caught:
        _parse(text)
    return [str(error) for error in caught.value.errors]


def test_every_column_of_meter_add_is_read() -> None:
    text = (
        ",".join(COLUMNS) + "\nM-1,C-1,T-1,5.5,3,27.7,85.3,EM-3,1.2.0,consumer,2026-02-15T10:30\n"
    )
    [(line, spec)] = _parse(text)
    assert line == 2
    assert spec == MeterSpec(
        meter_id="M-1",
        consumer_id="C-1",
        transformer_id="T-1",
        sanctioned_load_kw=5.5,
        phase=3,
        latitude=27.7,
        longitude=85.3,
        model="EM-3",
        firmware="1.2.0",
        role="consumer",
        installed_at=datetime(2026, 2, 15, 4, 45, tzinfo=UTC),  # 10:30 in Kathmandu
    )


def test_only_id_is_required_and_empty_cells_take_the_defaults() -> None:
    [(_, spec)] = _parse("role,id,phase\n,M-1,\n")
    assert spec == MeterSpec(meter_id="M-1")


def test_a_byte_order_mark_blank_lines_and_spaces_are_tolerated() -> None:
    rows = _parse("\ufeffid , phase\n M-1 , 3 \n\n,\nM-2,1\n")
    assert [(line, spec.meter_id, spec.phase) for line, spec in rows] == [
        (2, "M-1", 3),
        (5, "M-2", 1),
    ]


def test_each_bad_cell_is_named_by_line_and_column() -> None:
    text = (
        "id,phase,sanctioned_kw,lat,lon,role,installed_at,consumer\n"
        "M-1,2,5,27,85,consumer,,\n"  # phase
        "M/2,1,-1,27,85,consumer,,\n"  # id, sanctioned_kw
        "M-3,1,5,91,181,boss,,\n"  # lat, lon, role
        "M-4,x,nan,a,85,consumer,,\n"  # phase, sanctioned_kw, lat
        "M-5,1,5,27,85,consumer,2026-02-15,\n"  # installed_at without a consumer
        "M-6,1,5,27,85,consumer,last Tuesday,C-1\n"  # installed_at garbled
    )
    errors = _errors(text)
    assert errors == [
        "line 2, column 'phase': phase must be 1 or 3, got 2",
        "line 3, column 'id': invalid meter id 'M/2': use 1-64 ASCII letters, digits, '-' or '_'",
        "line 3, column 'sanctioned_kw': sanctioned load must be positive, got -1.0 kW",
        "line 4, column 'lat': latitude must be between -90 and 90, got 91.0",
        "line 4, column 'lon': longitude must be between -180 and 180, got 181.0",
        "line 4, column 'role': unknown role 'boss': one of consumer, transformer_main, "
        "feeder_main, sub",
        "line 5, column 'sanctioned_kw': not a finite number: 'nan'",
        "line 5, column 'lat': not a number: 'a'",
        "line 5, column 'phase': phase must be 1 or 3, got 'x'",
        "line 6, column 'installed_at': an installation time needs the consumer the meter supplies",
        "line 7, column 'installed_at': installed_at 'last Tuesday' is not an ISO 8601 date and "
        "time",
    ]


def test_a_meter_twice_in_the_file_names_both_lines() -> None:
    assert _errors("id\nM-1\nM-2\nM-1\n") == ["line 4, column 'id': meter 'M-1' is also on line 2"]


def test_a_row_with_the_wrong_number_of_cells_is_refused() -> None:
    assert _errors("id,phase\nM-1\nM-2,1,x\n") == [
        "line 2: 1 cells where the header has 2",
        "line 3: 3 cells where the header has 2",
    ]


def test_the_header_must_name_known_columns_once_and_include_id() -> None:
    assert _errors("meter,phase,phase\nM-1,1,1\n") == [
        "line 1, column 'meter': unknown column: the columns are " + ", ".join(COLUMNS),
        "line 1, column 'phase': column given twice",
        "line 1, column 'id': the header must name an 'id' column",
    ]


def test_an_empty_file_or_one_without_meters_is_refused() -> None:
    assert _errors("") == ["line 1: the file is empty: a header row is required"]
    assert _errors("id\n\n") == ["line 1: no meters in the file"]


def test_a_reserved_service_name_is_refused_as_an_id() -> None:
    [error] = _errors("id\nmeterhub-ingest\n")
    assert error.startswith("line 2, column 'id': invalid meter id 'meterhub-ingest'")


def test_an_overlong_cell_is_refused_before_anything_else() -> None:
    [error] = _errors("id,model\nM-1," + "x" * 300 + "\n")
    assert error == "line 2, column 'model': longer than 256 characters"


def test_the_message_lists_fifty_problems_and_counts_the_rest() -> None:
    text = "id,phase\n" + "".join(f"M-{n},2\n" for n in range(60))
    with pytest.raises(RowsError) as caught:
        _parse(text)
    message = str(caught.value)
    assert message.startswith("60 problem(s), nothing registered:")
    assert message.count("phase must be 1 or 3") == 50
    assert message.endswith("... and 10 more")


cells = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)


@given(st.lists(st.lists(cells, min_size=1, max_size=4), max_size=6))
def test_any_file_either_parses_or_says_why_by_line(rows: list[list[str]]) -> None:
    """No input makes the parser fail in any other way."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["id", "phase", "lat", "installed_at"][: max((len(r) for r in rows), default=1)]
    )
    writer.writerows(rows)
    try:
        parsed = parse_meter_csv(out.getvalue().splitlines(keepends=True), KATHMANDU)
    except RowsError as exc:
        assert exc.errors and all(error.line >= 1 for error in exc.errors)
    else:
        assert parsed and len({spec.meter_id for _, spec in parsed}) == len(parsed)
