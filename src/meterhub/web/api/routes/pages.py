"""GET /: the meter list page (HTML), with the fleet's counts and the ingest counters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from meterhub.store import queries
from meterhub.web.api.routes.meters import MAX_OFFSET
from meterhub.web.deps import ConnectionDep, SettingsDep

COUNTER_LABELS = {
    ("accepted", "reading"): "readings stored",
    ("accepted", "event"): "events",
    ("accepted", "status"): "status messages",
    ("duplicate", "reading"): "duplicates",
    ("conflict", "reading"): "conflicts",
}
PAGE_SIZE = 500
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parents[2] / "templates"))

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def meter_page(
    request: Request,
    conn: ConnectionDep,
    settings: SettingsDep,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Any:
    meters = queries.meters_overview(conn, limit=PAGE_SIZE, offset=offset)
    counts = queries.count_meters(conn)
    counters = queries.ingest_counters(conn)
    return TEMPLATES.TemplateResponse(
        request,
        "meters.html",
        {
            "counter_labels": COUNTER_LABELS,
            "meters": meters,
            "counts": counts,
            "counters": counters,
            "zone": settings.zone,
            "now": datetime.now(UTC),
        },
    )
