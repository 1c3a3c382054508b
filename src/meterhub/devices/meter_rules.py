"""What a meter registration must satisfy before it touches the database (pure).

One copy of the rules for ``meter add`` (first problem raised) and ``meter import`` (every problem
of every row reported, by line and column). Problems name the CSV column, which is also the
``meter add`` option without its dashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from meterhub.devices import mosquitto

METER_ROLES = ("consumer", "transformer_main", "feeder_main", "sub")
# Meters in these states keep no access to the broker.
NO_BROKER_ACCESS = ("inactive", "replaced")
# Errors listed in a refused import's message; the rest are counted.
SHOWN_ERRORS = 50


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """A meter to register, as ``meter add`` takes it."""

    meter_id: str
    consumer_id: str | None = None
    transformer_id: str | None = None
    sanctioned_load_kw: float | None = None
    phase: int = 1
    latitude: float | None = None
    longitude: float | None = None
    model: str | None = None
    firmware: str | None = None
    role: str = "consumer"
    installed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column!r}" if self.column else "")
        return f"{where}: {self.message}"


class RowsError(ValueError):
    """Rows that cannot be registered; nothing was registered."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.line)
        shown = "\n".join(f"  {error}" for error in self.errors[:SHOWN_ERRORS])
        more = len(self.errors) - SHOWN_ERRORS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{len(self.errors)} problem(s), nothing registered:\n{shown}{tail}")


def problems(spec: MeterSpec) -> list[tuple[str, str]]:
    """(column, message) for each rule ``spec`` breaks, in column order."""
    found: list[tuple[str, str]] = []
    try:
        mosquitto.validate_meter_id(spec.meter_id)
    except mosquitto.InvalidMeterIdError as exc:
        found.append(("id", str(exc)))
    kw = spec.sanctioned_load_kw
    if kw is not None and not (math.isfinite(kw) and kw > 0):
        found.append(("sanctioned_kw", f"sanctioned load must be positive, got {kw} kW"))
    if spec.phase not in (1, 3):
        found.append(("phase", f"phase must be 1 or 3, got {spec.phase}"))
    if spec.latitude is not None and not (
        math.isfinite(spec.latitude) and -90 <= spec.latitude <= 90
    ):
        found.append(("lat", f"latitude must be between -90 and 90, got {spec.latitude}"))
    if spec.longitude is not None and not (
        math.isfinite(spec.longitude) and -180 <= spec.longitude <= 180
    ):
        found.append(("lon", f"longitude must be between -180 and 180, got {spec.longitude}"))
    if spec.role not in METER_ROLES:
        found.append(("role", f"unknown role {spec.role!r}: one of {', '.join(METER_ROLES)}"))
    if spec.installed_at is not None:
        if spec.consumer_id is None:
            found.append(
                ("installed_at", "an installation time needs the consumer the meter supplies")
            )
        if spec.installed_at.tzinfo is None:
            found.append(("installed_at", "the installation time needs a time zone"))
    return found
