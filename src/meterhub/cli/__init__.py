"""The `meterhub` command line: every Typer command, thin (parse arguments, call a service,
print). Nothing outside this package imports it."""

from meterhub.cli.main import app, main

__all__ = ["app", "main"]
