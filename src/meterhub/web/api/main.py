"""/api/v1: the versioned JSON API, gathered from the area routers."""

from __future__ import annotations

from fastapi import APIRouter

from meterhub.web.api.routes import ingest, meters

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
api_router.include_router(meters.router)
api_router.include_router(ingest.router)
