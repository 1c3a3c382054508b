"""The reading as the platform sees it once a payload has been decoded.

Energy registers are cumulative kWh counters as the meter shows them; interval energy is derived
from them (see ``readings.intervals``). Timestamps are timezone-aware and normalised to UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# \Z, not $: "$" also matches before a trailing newline, which would let "M1\n" through.
METER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")

# Fields of the v1 reading object that carry measurements. Anything else in a payload is kept
# verbatim under ``Reading.extra`` so that firmware can add fields without being rejected.
MEASUREMENT_FIELDS: tuple[str, ...] = (
    "import_kwh",
    "export_kwh",
    "power_w",
    "voltage_v",
    "current_a",
    "pf",
    "freq_hz",
)


# The reading object's fields after ``ts``, in contract order (docs/mqtt-contract.md).
CONTRACT_FIELDS: tuple[str, ...] = (
    "seq",
    "import_kwh",
    "export_kwh",
    "import_kwh_by_tariff",
    "power_w",
    "voltage_v",
    "current_a",
    "pf",
    "freq_hz",
)


def to_document(
    reading: Reading, *, meter_id: bool = False, nest_extra: bool = False
) -> dict[str, Any]:
    """The reading as a contract JSON object: fields that are None are left out; ``extra`` goes
    back to the top level as the meter sent it, or under "extra" (``nest_extra``)."""
    document: dict[str, Any] = {"meter_id": reading.meter_id} if meter_id else {}
    document["ts"] = reading.ts.isoformat()
    for name in CONTRACT_FIELDS:
        value = getattr(reading, name)
        if value is not None:
            document[name] = value
    if reading.extra:
        if nest_extra:
            document["extra"] = reading.extra
        else:
            document.update(reading.extra)
    return document


class Quality(StrEnum):
    """Quality flag carried by every stored reading and interval (MDM convention)."""

    ACTUAL = "actual"
    ESTIMATED = "estimated"
    EDITED = "edited"
    SUSPECT = "suspect"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made building
# readings the largest single cost of ingestion. Treat readings as immutable all the same.
@dataclass(slots=True)
class Reading:
    meter_id: str
    ts: datetime  # timezone-aware, UTC
    seq: int | None = None
    import_kwh: float | None = None
    export_kwh: float | None = None
    import_kwh_by_tariff: dict[str, float] | None = None
    power_w: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    pf: float | None = None
    freq_hz: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def same_values(self, other: Reading) -> bool:
        """True when two readings for the same key carry the same measurements (a redelivery)."""
        return (
            self.import_kwh == other.import_kwh
            and self.export_kwh == other.export_kwh
            and self.import_kwh_by_tariff == other.import_kwh_by_tariff
            and self.power_w == other.power_w
            and self.voltage_v == other.voltage_v
            and self.current_a == other.current_a
            and self.pf == other.pf
            and self.freq_hz == other.freq_hz
        )


@dataclass(slots=True)
class ReadingBlock:
    """One meter's clean batch kept column by column: no object per reading on the hot path.

    ``columns`` holds one list per name of ``MEASUREMENT_FIELDS``, in that order.
    """

    meter_id: str
    stamps: list[datetime]  # UTC
    seqs: list[int | None]
    columns: dict[str, list[float | None]]

    def __len__(self) -> int:
        return len(self.stamps)

    def readings(self) -> list[Reading]:
        meter_id = self.meter_id
        return [
            Reading(meter_id, ts, seq, imp, exp, None, power, volts, amps, pf, hz, {})
            for ts, seq, imp, exp, power, volts, amps, pf, hz in zip(
                self.stamps, self.seqs, *self.columns.values(), strict=True
            )
        ]


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a payload or a reading was refused: a machine-readable code and a human sentence."""

    code: str
    message: str
    field: str | None = None
