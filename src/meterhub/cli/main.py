"""The root of the `meterhub` command line: every sub-command registered here."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from meterhub.cli import bill, consumers, edge, meters, parse, sim
from meterhub.cli import db as db_commands
from meterhub.cli import export as export_commands
from meterhub.cli import ingest as ingest_commands
from meterhub.cli import run as run_commands
from meterhub.config import UnknownSettingError

app = typer.Typer(help="meterhub: smart-metering platform", no_args_is_help=True)
app.add_typer(db_commands.db_app, name="db")
ingest_commands.register(app)
run_commands.register(app)
export_commands.register(app)
sim.register(app)
meters.register(app)
parse.register(app)
consumers.register(app)
bill.register(app)
edge.register(app)


# What the database says when the schema was never created (SQLite; PostgreSQL's UndefinedTable).
_NO_SCHEMA = ("no such table", "does not exist")


def main() -> None:
    """The `meterhub` command: errors the operator can fix end in one readable line, not a
    traceback."""
    try:
        app()
    except UnknownSettingError as exc:
        _exit(str(exc), 2)
    except ValidationError as exc:
        problems = "; ".join(
            f"METERHUB_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        _exit(f"invalid setting: {problems}", 2)
    except (sa_exc.OperationalError, sa_exc.ProgrammingError) as exc:
        text = str(exc.orig)
        if any(marker in text for marker in _NO_SCHEMA):
            _exit(
                f"the database has no meterhub schema ({text.splitlines()[0]}): run "
                "`meterhub db upgrade` first",
                1,
            )
        if isinstance(exc, sa_exc.OperationalError):
            _exit(f"cannot use the database: {text.splitlines()[0] if text else exc}", 1)
        raise


def _exit(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
