"""/api/v1/ingest: what the ingest workers have counted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meterhub.store import queries
from meterhub.web.deps import ConnectionDep

router = APIRouter(prefix="/ingest")


@router.get("/counters")
def counters(conn: ConnectionDep) -> list[dict[str, Any]]:
    return queries.ingest_counters(conn)
