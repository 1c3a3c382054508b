"""The one OBIS → reading-field table, shared by every OBIS-based parser (DSMR, IEC 62056-21,
DLMS/COSEM).

Codes are keyed in the normalised form ``A-B:C.D.E`` (``normalise_obis``). Each entry names the
quantity, the unit its value is converted to (kWh, W, V, A, ...), and which field of the reading
object it feeds. How the registers become one reading (``reading_fields``):

- ``import_kwh`` is 1.8.0; without a total, the sum of the tariff registers 1.8.1, 1.8.2, ...
  (DSMR meters send only the tariff registers). ``import_kwh_by_tariff`` = {"1": 1.8.1, ...}.
  ``export_kwh`` likewise from 2.8.0 or 2.8.x.
- ``power_w`` is the contract's net import power: (1.7.0 - 2.7.0), converted to W. A meter that
  exports shows a negative ``power_w``.
- The reading has one ``voltage_v`` and one ``current_a``: they take L1 (32.7.0 / 31.7.0), or the
  phase-less 12.7.0 / 11.7.0 when that is what the meter sends; every phase stays in ``extra``.
- Everything else (per-phase values, reactive energy, gas and water on M-Bus channels, counters)
  goes to ``extra["obis"]`` keyed by its code, with value and unit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from meterhub.protocols.base import ParseError
from meterhub.protocols.checks import finite
from meterhub.readings.vee import NON_FINITE


@dataclass(frozen=True, slots=True)
class ObisField:
    name: str  # descriptive, unique: "import_kwh_t1", "voltage_l2_v"
    unit: str  # unit the value is converted to ("" when dimensionless)
    # The reading attribute the value feeds, or None when it only goes to extra.
    reading_field: str | None = None
    tariff: str | None = None  # for tariff registers: the key in *_by_tariff
    phase: int | None = None  # 1, 2, 3 for per-phase quantities
    sign: int = 1  # -1 for export power, which counts against net import power_w


@dataclass(frozen=True, slots=True)
class ObisValue:
    """One value as read from a frame, after ``convert``: value in the field's unit."""

    value: float
    unit: str


def _energy(direction: str, reading_field: str) -> dict[str, ObisField]:
    # C = 1 (active import) or 2 (active export); D = 8 (register); E = tariff (0 = total).
    c = "1" if direction == "import" else "2"
    table = {f"1-0:{c}.8.0": ObisField(f"{direction}_kwh", "kWh", reading_field)}
    for tariff in range(1, 5):
        table[f"1-0:{c}.8.{tariff}"] = ObisField(
            f"{direction}_kwh_t{tariff}", "kWh", reading_field, tariff=str(tariff)
        )
    return table


def _phases(
    c_by_phase: tuple[int, int, int], name: str, unit: str, reading_field: str | None
) -> dict[str, ObisField]:
    return {
        f"1-0:{c}.7.0": ObisField(
            f"{name}_l{phase}_{unit.lower()}", unit, reading_field if phase == 1 else None, None,
            phase,
        )
        for phase, c in enumerate(c_by_phase, start=1)
    }  # fmt: skip


OBIS_FIELDS: dict[str, ObisField] = {
    **_energy("import", "import_kwh"),
    **_energy("export", "export_kwh"),
    "1-0:3.8.0": ObisField("reactive_import_kvarh", "kvarh"),
    "1-0:4.8.0": ObisField("reactive_export_kvarh", "kvarh"),
    "1-0:1.7.0": ObisField("power_import_w", "W", "power_w"),
    "1-0:2.7.0": ObisField("power_export_w", "W", "power_w", sign=-1),
    "1-0:3.7.0": ObisField("reactive_power_import_var", "var"),
    "1-0:4.7.0": ObisField("reactive_power_export_var", "var"),
    "1-0:12.7.0": ObisField("voltage_v", "V", "voltage_v"),
    "1-0:11.7.0": ObisField("current_a", "A", "current_a"),
    **_phases((32, 52, 72), "voltage", "V", "voltage_v"),
    **_phases((31, 51, 71), "current", "A", "current_a"),
    **_phases((21, 41, 61), "power_import", "W", None),
    **_phases((22, 42, 62), "power_export", "W", None),
    **_phases((23, 43, 63), "reactive_power_import", "var", None),
    **_phases((24, 44, 64), "reactive_power_export", "var", None),
    "1-0:13.7.0": ObisField("power_factor", "", "pf"),
    "1-0:14.7.0": ObisField("frequency_hz", "Hz", "freq_hz"),
    "1-0:1.6.0": ObisField("max_demand_import_w", "W"),
    "1-0:2.6.0": ObisField("max_demand_export_w", "W"),
    # DSMR power-quality counters (dimensionless counts, durations in s).
    "0-0:96.7.21": ObisField("power_failures", ""),
    "0-0:96.7.9": ObisField("long_power_failures", ""),
    "1-0:32.32.0": ObisField("voltage_sags_l1", ""),
    "1-0:52.32.0": ObisField("voltage_sags_l2", ""),
    "1-0:72.32.0": ObisField("voltage_sags_l3", ""),
    "1-0:32.36.0": ObisField("voltage_swells_l1", ""),
    "1-0:52.36.0": ObisField("voltage_swells_l2", ""),
    "1-0:72.36.0": ObisField("voltage_swells_l3", ""),
}

# Identification and housekeeping codes that parsers interpret themselves (not values).
CLOCK = "0-0:1.0.0"
EQUIPMENT_ID = "0-0:96.1.1"  # DSMR meter id (hex-encoded ASCII)
EQUIPMENT_ID_ALT = "0-0:96.1.0"  # E.ON Hungary and others
LOGICAL_DEVICE_NAME = "0-0:42.0.0"
TARIFF_INDICATOR = "0-0:96.14.0"

# unit (as written by meters, lower-cased) -> (unit converted to, factor)
_UNITS: dict[str, tuple[str, Decimal]] = {
    "wh": ("kWh", Decimal("0.001")),
    "kwh": ("kWh", Decimal(1)),
    "mwh": ("kWh", Decimal(1000)),
    "w": ("W", Decimal(1)),
    "kw": ("W", Decimal(1000)),
    "v": ("V", Decimal(1)),
    "kv": ("V", Decimal(1000)),
    "a": ("A", Decimal(1)),
    "ma": ("A", Decimal("0.001")),
    "varh": ("kvarh", Decimal("0.001")),
    "kvarh": ("kvarh", Decimal(1)),
    "var": ("var", Decimal(1)),
    "kvar": ("var", Decimal(1000)),
    "hz": ("Hz", Decimal(1)),
    "s": ("s", Decimal(1)),
    "m3": ("m3", Decimal(1)),
    "gj": ("GJ", Decimal(1)),
}

_ONE = Decimal(1)
_INF = float("inf")

_OBIS = re.compile(
    r"^(?:(?P<a>\d{1,3})-(?P<b>\d{1,3}):)?"
    r"(?P<c>\d{1,3}|[A-Z])\.(?P<d>\d{1,3}|[A-Z])(?:\.(?P<e>\d{1,3}))?"
    r"(?:[*&.](?P<f>\d{1,3}))?\Z"
)


@lru_cache(maxsize=4096)
def normalise_obis(code: str) -> str:
    """``A-B:C.D.E`` from the spellings meters use.

    Accepts ``1-0:1.8.0``, ``1-0:1.8.0*255``, ``1-0:1.8.0.255``, the IEC 62056-21 short form
    ``1.8.0`` (A-B taken as ``1-0``, electricity) and service letters (``0-0:C.1.0``, ``F.F``).
    Leading zeros are dropped (``1-0:01.08.00`` → ``1-0:1.8.0``). A group F other than 255 names
    a historical value (billing period), so it is kept: ``1-0:1.8.1*07`` → ``1-0:1.8.1*7``,
    distinct from the current register. Raises ``ParseError("bad_obis")`` otherwise.

    Cached: a meter sends the same few dozen codes in every frame (a refused code raises, and
    exceptions are not cached).
    """
    match = _OBIS.match(code.strip().upper())
    if match is None:
        raise ParseError("bad_obis", f"{code[:40]!r} is not an OBIS code")
    a, b = match["a"] or "1", match["b"] or "0"
    parts = [str(int(p)) if p.isdigit() else p for p in (a, b, match["c"], match["d"])]
    e = str(int(match["e"])) if match["e"] else "0"
    key = f"{parts[0]}-{parts[1]}:{parts[2]}.{parts[3]}.{e}"
    f = match["f"]
    if f is not None and int(f) != 255:
        key += f"*{int(f)}"
    return key


@lru_cache(maxsize=4096)
def obis_from_bytes(raw: bytes) -> str:
    """The normalised code of a 6-byte DLMS/COSEM logical name (A, B, C, D, E, F). Cached, as
    ``normalise_obis`` is."""
    if len(raw) != 6:
        raise ParseError("bad_obis", f"an OBIS logical name has 6 bytes, got {len(raw)}")
    a, b, c, d, e, f = raw
    key = f"{a}-{b}:{c}.{d}.{e}"
    return key if f == 255 else f"{key}*{f}"


def convert(value: Decimal | float | int | str, unit: str | None, field: ObisField) -> float:
    """``value`` written in ``unit`` (None or "" = already in the field's unit), in the field's
    unit. Decimal arithmetic, so 0.908 kW is exactly 908.0 W. ``ParseError("bad_unit")`` when
    the unit does not fit the field (a kWh register sent in V is a broken frame);
    ``ParseError("non_finite")`` when the value, or its float in the field's unit, is infinite
    or NaN (a float64 near its top times a DLMS scaler of 10^127)."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ParseError("bad_value", f"{str(value)[:40]!r} is not a number") from None
    if not number.is_finite():
        raise ParseError(NON_FINITE, f"{field.name} is not a finite number")
    if not unit:
        return finite(float(number), field.name)
    target, factor = _UNITS.get(unit.lower(), (unit, Decimal(1)))
    if target.lower() != field.unit.lower():
        raise ParseError("bad_unit", f"{field.name} expects {field.unit}, frame says {unit!r}")
    return finite(float(number * factor), field.name)


# unit (lower-cased) -> (unit converted to, factor), the factor None when it is 1.
_TEXT_UNITS: dict[str, tuple[str, Decimal | None]] = {
    unit: (target, None if factor == 1 else factor) for unit, (target, factor) in _UNITS.items()
}
# A decimal text of at most this many characters has at most 28 digits: Decimal's default
# precision, so multiplying it by 1 is exact and float(text) is what Decimal would give.
_EXACT_TEXT = 28


def convert_text(text: str, unit: str | None, field: ObisField) -> float:
    """``convert`` for a value that is decimal text (``[+-]digits[.digits]``, as a data line
    carries it): the same result, through Decimal only when a factor other than 1 applies.
    Text of more than 308 digits is infinity as a float: ``ParseError("non_finite")``."""
    if not unit:
        return finite(float(text), field.name)
    fits, factor = _text_factor(unit, field.unit)
    if not fits:
        raise ParseError("bad_unit", f"{field.name} expects {field.unit}, frame says {unit!r}")
    if factor is None and len(text) <= _EXACT_TEXT:
        return float(text)  # at most 28 characters: far inside the float range
    value = float(Decimal(text) * (factor or _ONE))
    if -_INF < value < _INF:
        return value
    return finite(value, field.name)  # raises


@lru_cache(maxsize=512)
def _text_factor(unit: str, field_unit: str) -> tuple[bool, Decimal | None]:
    """Whether ``unit`` converts to ``field_unit``, and the factor (None when it is 1)."""
    target, factor = _TEXT_UNITS.get(unit.lower(), (unit, None))
    return target.lower() == field_unit.lower(), factor


def canonical_text(text: str, unit: str) -> tuple[float, str]:
    """``canonical`` for decimal text, through Decimal only when a factor other than 1 applies."""
    target, factor = _TEXT_UNITS.get(unit.lower(), (unit, None))
    if factor is None and len(text) <= _EXACT_TEXT:
        return float(text), target
    return finite(float(Decimal(text) * (factor or _ONE)), f"a value in {unit}"), target


def canonical(value: Decimal | float | int | str, unit: str) -> tuple[float, str]:
    """A value of a code the table does not know, in the canonical unit of its dimension
    (Wh -> kWh, kW -> W, kvar -> var); unknown units are kept as written."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    target, factor = _UNITS.get(unit.lower(), (unit, Decimal(1)))
    return finite(float(number * factor), f"a value in {unit or 'no unit'}"), target


def unit_of(unit: str | None) -> str | None:
    """A unit as written by a meter in its canonical spelling (kWh, W, m3, ...), when known."""
    if not unit:
        return unit
    known = _UNITS.get(unit.lower())
    return unit if known is None or known[1] != 1 else known[0]


@lru_cache(maxsize=4096)
def is_register(code: str) -> bool:
    """True for a cumulative electricity register: A = 1 (electricity), D = 8 (time integral
    since the meter's start), any channel, quantity, tariff or billing period (``1-0:1.8.1``,
    ``1-1:2.8.0``, ``1-0:3.8.0``, ``1-0:1.8.0*7``). Such a value is never below zero."""
    a_b, _, cdef = code.partition(":")
    parts = cdef.split("*")[0].split(".")
    return a_b.split("-")[0] == "1" and len(parts) == 3 and parts[1] == "8"


def in_reading(code: str) -> bool:
    """True when the reading's own fields carry this code's value in full, so that it needs no
    copy under ``extra``: totals, import tariffs, net power parts, pf, frequency. Per-phase
    values and export tariffs (the reading has no place for them) go to ``extra``."""
    field = OBIS_FIELDS.get(code)
    if field is None or field.reading_field is None or field.phase is not None:
        return False
    return field.tariff is None or field.reading_field == "import_kwh"


# For per-line lookups: the codes ``reading_fields`` takes a value from (the others it skips),
# and the codes ``in_reading`` says yes to.
READING_FIELD_CODES = frozenset(
    code for code, field in OBIS_FIELDS.items() if field.reading_field is not None
)
IN_READING_CODES = frozenset(code for code in OBIS_FIELDS if in_reading(code))


def reading_fields(values: Mapping[str, ObisValue]) -> dict[str, object]:
    """The reading's measurement fields from converted values keyed by normalised code.

    Returns only the fields that the values determine: ``import_kwh``, ``export_kwh``,
    ``import_kwh_by_tariff``, ``power_w``, ``voltage_v``, ``current_a``, ``pf``, ``freq_hz``.
    """
    totals: dict[str, float] = {}
    tariffs: dict[str, dict[str, float]] = {}
    power: float | None = None
    for code, obis_value in values.items():
        field = OBIS_FIELDS.get(code)
        if field is None or field.reading_field is None:
            continue
        target, value = field.reading_field, obis_value.value
        if field.tariff is not None:
            tariffs.setdefault(target, {})[field.tariff] = value
        elif target == "power_w":
            power = (power or 0.0) + field.sign * value
        elif field.phase is None or target not in totals:
            # A phase-less value (12.7.0) wins over L1 (32.7.0).
            totals[target] = value
    result: dict[str, object] = dict(totals)
    for register in ("import_kwh", "export_kwh"):
        by_tariff = tariffs.get(register)
        if register not in totals and by_tariff:
            # round: 800.1 + 434.467 is 1234.5670000000002 in binary floating point. A sum of
            # values near the top of the float range is infinite: refused, not printed as null.
            total = finite(sum(by_tariff.values()), f"the sum of the {register} tariffs")
            result[register] = round(total, 6)
    if tariffs.get("import_kwh"):
        result["import_kwh_by_tariff"] = dict(sorted(tariffs["import_kwh"].items()))
    if power is not None:
        result["power_w"] = round(finite(power, "power import - export"), 6)
    return result
