"""Values no meter can send: the checks every parser applies before a reading leaves it.

A parser refuses them with the reason codes of the native path's checks (``readings.vee``), so that
a dead letter, an edge gateway's ``parse_errors`` and ``meterhub parse`` name the same problem in
the same words whatever the format:

- ``non_finite``: a number that is NaN or infinite, a value in the frame (a DSMR value of more than
  308 digits is infinity once it is a float) or a sum of values (two tariff registers near the top
  of the float range).
- ``negative_register``: a cumulative register (active or reactive energy, any tariff or billing
  period) below zero. Instantaneous values (power in net metering, a signed power factor) may be
  negative and are not checked here.
"""

from __future__ import annotations

import math

from meterhub.protocols.base import ParseError
from meterhub.readings.model import Reading
from meterhub.readings.vee import NEGATIVE_REGISTER, NON_FINITE

_INF = math.inf


def finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise ParseError(NON_FINITE, f"{where} is not a finite number")
    return value


def register(value: float, where: str) -> float:
    """A cumulative register's value, refused when it is not finite or below zero."""
    if not math.isfinite(value):
        raise ParseError(NON_FINITE, f"{where} is not a finite number")
    if value < 0.0:
        raise ParseError(NEGATIVE_REGISTER, f"{where} {value} is below zero: not a register value")
    return value


def checked_reading(reading: Reading) -> Reading:
    """The reading when its own fields are possible; the last guard of every parser, after the
    checks made where the values were read (which name the code or key they came from)."""
    # Written out field by field, as in readings.vee: a chained comparison that fails also
    # catches NaN, so the usual reading costs a few comparisons and no call.
    value = reading.import_kwh
    if value is not None and not 0.0 <= value < _INF:
        register(value, "import_kwh")
    value = reading.export_kwh
    if value is not None and not 0.0 <= value < _INF:
        register(value, "export_kwh")
    value = reading.power_w
    if value is not None and not -_INF < value < _INF:
        finite(value, "power_w")
    value = reading.voltage_v
    if value is not None and not -_INF < value < _INF:
        finite(value, "voltage_v")
    value = reading.current_a
    if value is not None and not -_INF < value < _INF:
        finite(value, "current_a")
    value = reading.pf
    if value is not None and not -_INF < value < _INF:
        finite(value, "pf")
    value = reading.freq_hz
    if value is not None and not -_INF < value < _INF:
        finite(value, "freq_hz")
    if reading.import_kwh_by_tariff:
        for tariff, value in reading.import_kwh_by_tariff.items():
            register(value, f"import_kwh_by_tariff.{tariff}")
    return reading
