"""``meterhub meter import``: a CSV of meters read and checked row by row (pure).

The header names the columns, in any order: ``id`` is required, the others are optional and are
the options of ``meter add`` (``consumer, transformer, sanctioned_kw, phase, lat, lon, model,
firmware, role, installed_at``); an empty cell means the option's default. Every problem of every
row is collected, each naming its line (the header is line 1) and column, so that one pass over a
file lists all there is to fix. Whether consumers and transformers exist and whether an id is
already registered is checked against the database afterwards (``registry.import_meters``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from meterhub.devices.meter_rules import MeterSpec, RowError, RowsError, problems
from meterhub.readings.local_time import local_instant

COLUMNS = (
    "id",
    "consumer",
    "transformer",
    "sanctioned_kw",
    "phase",
    "lat",
    "lon",
    "model",
    "firmware",
    "role",
    "installed_at",
)
# Longer cells are refused before any other check: model and firmware are free text, but a
# registry row is not the place for a megabyte of it.
MAX_CELL = 256


def _number(text: str, column: str, line: int, errors: list[RowError]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        errors.append(RowError(line, column, f"not a number: {text!r}"))
        return None
    if not math.isfinite(value):
        errors.append(RowError(line, column, f"not a finite number: {text!r}"))
        return None
    return value


def _row(
    cells: dict[str, str], line: int, zone: ZoneInfo
) -> tuple[MeterSpec | None, list[RowError]]:
    errors: list[RowError] = []
    for column, value in cells.items():
        if len(value) > MAX_CELL:
            errors.append(RowError(line, column, f"longer than {MAX_CELL} characters"))
    if errors:
        return None, errors

    def text(column: str) -> str | None:
        return cells.get(column) or None

    numbers: dict[str, float | None] = {}
    for column in ("sanctioned_kw", "lat", "lon"):
        raw = text(column)
        numbers[column] = None if raw is None else _number(raw, column, line, errors)
    phase = 1
    if (raw_phase := text("phase")) is not None:
        if raw_phase.isdigit():
            phase = int(raw_phase)
        else:
            errors.append(RowError(line, "phase", f"phase must be 1 or 3, got {raw_phase!r}"))
    installed_at = None
    if (raw_at := text("installed_at")) is not None:
        try:
            installed_at = local_instant(raw_at, "installed_at", zone)
        except ValueError as exc:
            errors.append(RowError(line, "installed_at", str(exc)))
    meter_id = cells.get("id", "")
    if not meter_id:
        errors.append(RowError(line, "id", "a meter id is required"))
    if errors:
        return None, errors
    spec = MeterSpec(
        meter_id=meter_id,
        consumer_id=text("consumer"),
        transformer_id=text("transformer"),
        sanctioned_load_kw=numbers["sanctioned_kw"],
        phase=phase,
        latitude=numbers["lat"],
        longitude=numbers["lon"],
        model=text("model"),
        firmware=text("firmware"),
        role=text("role") or "consumer",
        installed_at=installed_at,
    )
    errors += [RowError(line, column, message) for column, message in problems(spec)]
    return (None if errors else spec), errors


def parse_meter_csv(lines: Iterable[str], zone: ZoneInfo) -> list[tuple[int, MeterSpec]]:
    """(line number, meter) for each data row; RowsError listing every problem if any.

    ``zone``: an ``installed_at`` without an offset is a local time there (METERHUB_TIMEZONE).
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise RowsError(
            [RowError(1, None, "the file is empty: a header row is required")]
        ) from None
    except csv.Error as exc:
        raise RowsError([RowError(1, None, f"not a CSV header: {exc}")]) from None
    columns = [name.strip().lstrip("\ufeff").lower() for name in header]
    header_errors = [
        RowError(1, name, f"unknown column: the columns are {', '.join(COLUMNS)}")
        for name in columns
        if name not in COLUMNS
    ]
    header_errors += [
        RowError(1, name, "column given twice")
        for n, name in enumerate(columns)
        if name in columns[:n]
    ]
    if "id" not in columns:
        header_errors.append(RowError(1, "id", "the header must name an 'id' column"))
    if header_errors:
        raise RowsError(header_errors)

    rows: list[tuple[int, MeterSpec]] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue  # blank lines, as spreadsheets leave them at the end
            if len(values) != len(columns):
                errors.append(
                    RowError(line, None, f"{len(values)} cells where the header has {len(columns)}")
                )
                continue
            cells = {name: value.strip() for name, value in zip(columns, values, strict=True)}
            spec, row_errors = _row(cells, line, zone)
            errors += row_errors
            if spec is None:
                continue
            if spec.meter_id in first_line:
                errors.append(
                    RowError(line, "id", f"meter {spec.meter_id!r} is also on line "
                             f"{first_line[spec.meter_id]}")
                )  # fmt: skip
                continue
            first_line[spec.meter_id] = line
            rows.append((line, spec))
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, None, f"not valid CSV: {exc}"))
    if errors:
        raise RowsError(errors)
    if not rows:
        raise RowsError([RowError(1, None, "no meters in the file")])
    return rows
