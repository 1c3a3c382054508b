"""/api/v1/meters: the meter list with each meter's state, and a meter's usage by period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from meterhub.readings.model import METER_ID_PATTERN
from meterhub.readings.usage import UsageBucket
from meterhub.store import meters as meter_store
from meterhub.store import queries
from meterhub.web.deps import ConnectionDep, SettingsDep

# Paging deeper than this is a query nobody means; beyond it the databases' integers overflow.
MAX_OFFSET = 10_000_000
# Usage without ``from`` covers this much before ``to``.
DEFAULT_USAGE_SPAN = timedelta(days=31)

router = APIRouter(prefix="/meters")


@router.get("")
def list_meters(
    conn: ConnectionDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    return [_as_dict(m) for m in queries.meters_overview(conn, limit=limit, offset=offset)]


@router.get("/{meter_id}/usage")
def meter_usage(
    conn: ConnectionDep,
    settings: SettingsDep,
    meter_id: str,
    period: Literal["hour", "day", "month"] = "day",
    start: datetime | None = Query(default=None, alias="from"),
    end: datetime | None = Query(default=None, alias="to"),
) -> dict[str, Any]:
    if not METER_ID_PATTERN.match(meter_id):
        raise HTTPException(422, "meter id must be 1-64 ASCII letters, digits, - or _")
    start, end = _usage_span(start, end)
    if not meter_store.meter_exists(conn, meter_id):
        raise HTTPException(404, f"meter {meter_id} is not registered")
    buckets = queries.usage(conn, meter_id, start, end, period=period, zone=settings.zone)
    return {
        "meter_id": meter_id,
        "period": period,
        "timezone": settings.timezone,
        "buckets": [_bucket(b) for b in buckets],
    }


def _usage_span(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """``[from, to)`` in UTC: ``to`` defaults to now, ``from`` to 31 days before ``to``."""
    try:
        end = _aware(end) if end else datetime.now(UTC)
        start = _aware(start) if start else end - DEFAULT_USAGE_SPAN
    except OverflowError:
        raise HTTPException(422, "timestamps must lie between the years 1 and 9999") from None
    if start >= end:
        raise HTTPException(422, "from must be before to")
    return start, end


def _bucket(bucket: UsageBucket) -> dict[str, Any]:
    return {
        "start": bucket.start_local.isoformat(),
        "end": bucket.end_local.isoformat(),
        "import_kwh": round(bucket.import_kwh, 6),
        "export_kwh": round(bucket.export_kwh, 6),
        "intervals": bucket.intervals,
        "estimated_intervals": bucket.estimated_intervals,
    }


def _aware(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise HTTPException(422, "timestamps need a UTC offset")
    return ts.astimezone(UTC)


def _as_dict(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
