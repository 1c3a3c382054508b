"""The column shortcut for clean batches agrees with the per-reading check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from meterhub.readings.model import MEASUREMENT_FIELDS, Reading
from meterhub.readings.vee import ReadingLimits, check_reading, columns_within_limits

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIMITS = ReadingLimits()

# Values around every bound, so that both sides of each limit are drawn often.
edge_values = st.one_of(
    st.none(),
    st.sampled_from([-1e6 - 1, -1e6, -1.0, -0.001, 0.0, 0.5, 1.0, 39.9, 40.0, 50.0, 70.0, 70.1]),
    st.sampled_from([230.0, 500.0, 500.1, 1000.0, 1000.1, 1e6, 1e6 + 1, 1e10 - 1, 1e10]),
    st.floats(min_value=-2e10, max_value=2e10, allow_nan=False, allow_infinity=False),
)
offsets = st.sampled_from([-401 * 86400, -400 * 86400 + 1, -3600, 0, 299, 300, 301, 86400])


@given(st.lists(st.tuples(offsets, *[edge_values] * len(MEASUREMENT_FIELDS)), max_size=20))
def test_column_check_passes_exactly_when_every_reading_passes(rows: list[tuple]) -> None:  # type: ignore[type-arg]
    readings = [
        Reading(
            "M-1",
            NOW + timedelta(seconds=row[0]),
            **dict(zip(MEASUREMENT_FIELDS, row[1:], strict=True)),
        )
        for row in rows
    ]
    stamps = [r.ts for r in readings]
    columns = {name: [getattr(r, name) for r in readings] for name in MEASUREMENT_FIELDS}
    every_reading_passes = all(check_reading(r, now=NOW, limits=LIMITS) is None for r in readings)
    assert columns_within_limits(stamps, columns, now=NOW, limits=LIMITS) == every_reading_passes
