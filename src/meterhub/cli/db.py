"""`meterhub db upgrade`."""

from __future__ import annotations

import typer

from meterhub.config import get_settings
from meterhub.store.db import make_engine

db_app = typer.Typer(help="database schema", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Create or migrate the schema (Alembic) on METERHUB_DATABASE_URL."""
    from meterhub.store.migrate import current_revision, upgrade

    engine = make_engine(get_settings().database_url)
    upgrade(engine, revision)
    typer.echo(f"database at revision {current_revision(engine)}")
