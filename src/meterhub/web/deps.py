"""What routes depend on: the settings, the engine and a connection per request.

``create_app`` puts the settings and the engine on ``app.state``; routes ask for them by
annotation (``SettingsDep``, ``EngineDep``, ``ConnectionDep``), so a route is a plain function
of its inputs and a test can override any of them (``app.dependency_overrides``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine

from meterhub.config import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_connection(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Connection]:
    """One connection for the request, read-only by use: routes that write take the engine and
    own their transaction."""
    with engine.connect() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ConnectionDep = Annotated[Connection, Depends(get_connection)]
