"""GET /healthz: the process answers and the database takes a query."""

from __future__ import annotations

from fastapi import APIRouter

from meterhub.store import queries
from meterhub.web.deps import ConnectionDep

router = APIRouter()


@router.get("/healthz")
def health(conn: ConnectionDep) -> dict[str, str]:
    queries.ping(conn)
    return {"status": "ok"}
