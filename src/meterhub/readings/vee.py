"""Validation, estimation and editing (VEE) rules for readings. Pure: plain values in, findings out.

Two kinds of rule:

* ``check_reading`` runs on the ingest hot path for every decoded reading and refuses readings
  that can never be right, whatever else the meter sent. It returns the first hard rejection.
* ``assess_sequence`` runs later over one meter's stored readings sorted by ``ts``. Rules that
  compare a reading with its neighbours live here, because arrival order is arbitrary (late data,
  store-and-forward spools) and only the sorted sequence gives the same answer every time.

Reason codes of ``check_reading`` (a ``Rejection``; checked in this order, fields in
``MEASUREMENT_FIELDS`` order followed by ``import_kwh_by_tariff``):

====================== ======================================================================
code                   meaning
====================== ======================================================================
``ts_in_future``       ``ts`` is later than ``now + max_future`` (meter clock runs ahead)
``ts_too_old``         ``ts`` is earlier than ``now - max_age`` (past the late-data horizon)
``no_measurement``     none of ``import_kwh``, ``export_kwh``, ``power_w`` is present
``non_finite``         NaN or infinity in a numeric field, ``field`` names it
``negative_register``  an energy register below zero, ``field`` names it
``value_out_of_range`` a value outside its physical bounds, ``field`` names it
====================== ======================================================================

Flags of ``assess_sequence`` (an ``Assessment`` per reading):

============================= ===============================================================
flag                          meaning and effect
============================= ===============================================================
``register_rollover``         import register wrapped past ``register_max_kwh``; delta is
                              ``(max - prev) + new``; quality actual
``meter_reset``               import register went to (near) zero or dropped by more than half;
                              delta is ``new`` (energy since the reset); quality estimated
``register_glitch``           a small backwards step; delta 0 and the reading is suspect
``spike``                     energy (or ``power_w``) above the meter's physical maximum power;
                              an energy spike is not counted and the reading is suspect
``register_jump``             the reading confirms that the register really moved to the level
                              of the preceding spike (meter swap, register preset): the jump is
                              not counted, energy counts again from the new level; estimated
``zero_streak``               register unchanged for at least ``zero_streak`` while voltage is
                              present: bypass, theft or a stuck register; quality unchanged
``export_register_backwards`` the export register went backwards; export delta 0
============================= ===============================================================

After a glitch or a spike the next delta is computed against the last trusted register, so that
a dip and recovery (100 -> 99.5 -> 100.2) yields 0.2 kWh, not 0.7.

A rollover counts ``(max - prev) + new``: a register that wraps from 99999.999 to 0.000 advanced
one count more than that (0.001 kWh), which is far inside any meter's accuracy class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal, cast

from meterhub.readings.model import Quality, Reading, Rejection

TS_IN_FUTURE = "ts_in_future"
TS_TOO_OLD = "ts_too_old"
NO_MEASUREMENT = "no_measurement"
NON_FINITE = "non_finite"
NEGATIVE_REGISTER = "negative_register"
VALUE_OUT_OF_RANGE = "value_out_of_range"

REGISTER_ROLLOVER = "register_rollover"
METER_RESET = "meter_reset"
REGISTER_GLITCH = "register_glitch"
SPIKE = "spike"
REGISTER_JUMP = "register_jump"
ZERO_STREAK = "zero_streak"
EXPORT_REGISTER_BACKWARDS = "export_register_backwards"

# A register this close to its maximum may wrap on the next reading. Both margins exist because
# 1 % of a small register (9999.9 kWh) is less than one day of a large consumer.
ROLLOVER_MARGIN_FRACTION = 0.01
ROLLOVER_MARGIN_KWH = 5.0
# A register below this after a backwards step has been cleared (reset, new meter).
RESET_NEAR_ZERO_KWH = 1.0
# A drop of more than this fraction of the previous value is a reset, not a glitch.
RESET_DROP_FRACTION = 0.5
# Below this the supply is off, so an unchanged register is expected, not suspicious.
ZERO_STREAK_MIN_VOLTAGE_V = 50.0

StepKind = Literal["first", "normal", "rollover", "reset", "glitch", "spike", "jump", "backwards"]


@dataclass(frozen=True, slots=True)
class ReadingLimits:
    """Bounds beyond which a reading is physically impossible, whatever the meter."""

    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=400)
    min_voltage_v: float = 0.0
    max_voltage_v: float = 500.0
    min_current_a: float = 0.0
    max_current_a: float = 1000.0
    min_pf: float = -1.0
    max_pf: float = 1.0
    min_freq_hz: float = 40.0
    max_freq_hz: float = 70.0
    min_power_w: float = -1e6
    max_power_w: float = 1e6
    # Exclusive: eleven-digit registers do not exist, so such a value is a decoding error.
    register_limit_kwh: float = 1e10


def check_reading(reading: Reading, *, now: datetime, limits: ReadingLimits) -> Rejection | None:
    """The first hard rejection of ``reading``, or None when it may be stored."""
    if reading.ts > now + limits.max_future:
        return Rejection(TS_IN_FUTURE, f"timestamp {reading.ts.isoformat()} is in the future")
    if reading.ts < now - limits.max_age:
        return Rejection(TS_TOO_OLD, f"timestamp {reading.ts.isoformat()} is too old")
    if reading.import_kwh is None and reading.export_kwh is None and reading.power_w is None:
        return Rejection(NO_MEASUREMENT, "none of import_kwh, export_kwh, power_w is present")
    # Written out field by field: this runs for every reading, and a loop over getattr costs
    # several times as much. A failed chained comparison also catches NaN, so the clean path
    # needs no isfinite call.
    register_limit = limits.register_limit_kwh
    value = reading.import_kwh
    if value is not None and not 0.0 <= value < register_limit:
        return _register_rejection("import_kwh", value)
    value = reading.export_kwh
    if value is not None and not 0.0 <= value < register_limit:
        return _register_rejection("export_kwh", value)
    value = reading.power_w
    if value is not None and not limits.min_power_w <= value <= limits.max_power_w:
        return _bounds_rejection("power_w", value)
    value = reading.voltage_v
    if value is not None and not limits.min_voltage_v <= value <= limits.max_voltage_v:
        return _bounds_rejection("voltage_v", value)
    value = reading.current_a
    if value is not None and not limits.min_current_a <= value <= limits.max_current_a:
        return _bounds_rejection("current_a", value)
    value = reading.pf
    if value is not None and not limits.min_pf <= value <= limits.max_pf:
        return _bounds_rejection("pf", value)
    value = reading.freq_hz
    if value is not None and not limits.min_freq_hz <= value <= limits.max_freq_hz:
        return _bounds_rejection("freq_hz", value)
    if reading.import_kwh_by_tariff:
        for tariff, value in reading.import_kwh_by_tariff.items():
            if not 0.0 <= value < register_limit:
                return _register_rejection(f"import_kwh_by_tariff.{tariff}", value)
    return None


def columns_within_limits(
    stamps: Sequence[datetime],
    columns: Mapping[str, Sequence[float | None]],
    *,
    now: datetime,
    limits: ReadingLimits,
) -> bool:
    """True when every reading of a batch, given column by column, passes ``check_reading``.

    A shortcut for clean batches: a few min/max calls per column instead of a dozen comparisons
    per reading. False says only "some reading may fail": the caller then checks each reading
    with ``check_reading``, which names the problem. The columns must not hold NaN (JSON cannot
    carry one), since min/max do not order NaN.
    """
    if not stamps:
        return True
    if min(stamps) < now - limits.max_age or max(stamps) > now + limits.max_future:
        return False
    imports, exports, powers = (
        columns.get(name, ()) for name in ("import_kwh", "export_kwh", "power_w")
    )
    if None in imports and not _each_has_a_measurement(imports, exports, powers):
        return False
    bounds = {
        "import_kwh": (0.0, limits.register_limit_kwh),
        "export_kwh": (0.0, limits.register_limit_kwh),
        "power_w": (limits.min_power_w, limits.max_power_w),
        "voltage_v": (limits.min_voltage_v, limits.max_voltage_v),
        "current_a": (limits.min_current_a, limits.max_current_a),
        "pf": (limits.min_pf, limits.max_pf),
        "freq_hz": (limits.min_freq_hz, limits.max_freq_hz),
    }
    for name, column in columns.items():
        low, high = bounds[name]
        # Skip the filtering copy when the column has no gaps (the usual case).
        values = cast(
            "Sequence[float]", [v for v in column if v is not None] if None in column else column
        )
        if not values:
            continue
        smallest, largest = min(values), max(values)
        if smallest < low or largest > high:
            return False
        if name in ("import_kwh", "export_kwh") and largest >= high:
            return False  # the register limit is exclusive
    return True


def _each_has_a_measurement(*columns: Sequence[float | None]) -> bool:
    return all(any(v is not None for v in row) for row in zip(*columns, strict=True))


def _bounds_rejection(field: str, value: float) -> Rejection:
    if not math.isfinite(value):
        return Rejection(NON_FINITE, f"{field} is {value}", field)
    return Rejection(VALUE_OUT_OF_RANGE, f"{field} {value} is outside its physical bounds", field)


def _register_rejection(field: str, value: float) -> Rejection:
    if not math.isfinite(value):
        return Rejection(NON_FINITE, f"{field} is {value}", field)
    if value < 0.0:
        return Rejection(NEGATIVE_REGISTER, f"{field} {value} is below zero", field)
    return Rejection(VALUE_OUT_OF_RANGE, f"{field} {value} is beyond any real register", field)


@dataclass(frozen=True, slots=True)
class MeterProfile:
    """What the platform knows about a meter that bounds what its registers can do."""

    meter_id: str
    sanctioned_load_kw: float | None
    phase: int  # 1 or 3
    register_max_kwh: float | None
    nominal_voltage_v: float = 230.0
    max_current_a: float = 100.0  # per phase

    @property
    def max_power_kw(self) -> float:
        """The most power the installation can draw: above it, a register step is not energy."""
        # Twice the sanctioned load because consumers overdraw their sanction routinely; the
        # service cable's rating bounds it when the sanction is unknown or small.
        supply_kw = self.phase * self.nominal_voltage_v * self.max_current_a / 1000.0
        if self.sanctioned_load_kw is None:
            return supply_kw
        return max(self.sanctioned_load_kw * 2.0, supply_kw)


@dataclass(frozen=True, slots=True)
class RegisterStep:
    """How a register moved since the reading it is measured against.

    ``since`` is the timestamp of that reading: the last trusted one, which is not always the
    previous one (a glitch or a spike in between is skipped). ``delta_kwh`` is the energy to
    count over ``[since, ts]``; for kind ``first`` it is 0 and ``since`` equals ``ts``.
    """

    kind: StepKind
    delta_kwh: float
    since: datetime


@dataclass(frozen=True, slots=True)
class Assessment:
    quality: Quality
    flags: tuple[str, ...]
    step: RegisterStep | None  # import register; None when the reading carries none
    export_step: RegisterStep | None = None  # export register; None when the reading carries none


def export_delta(prev: Reading, cur: Reading) -> float:
    """Export energy between two readings; a backwards export register counts nothing."""
    if prev.export_kwh is None or cur.export_kwh is None:
        return 0.0
    return max(cur.export_kwh - prev.export_kwh, 0.0)


def assess_sequence(
    readings: Sequence[Reading], profile: MeterProfile, *, zero_streak: timedelta
) -> list[Assessment]:
    """One assessment per reading of one meter, in input order; input must be sorted by ``ts``."""
    _require_sorted(readings)
    max_power_kw = profile.max_power_kw
    import_tracker = _ImportTracker(profile.register_max_kwh, max_power_kw)
    streak = _ZeroStreak(zero_streak)
    last_export: Reading | None = None
    assessments: list[Assessment] = []
    for reading in readings:
        flags: list[str] = []
        quality = Quality.ACTUAL
        step = None
        if reading.import_kwh is not None:
            step = import_tracker.advance(reading)
            quality, step_flag = _STEP_OUTCOME[step.kind]
            if step_flag:
                flags.append(step_flag)
        if reading.power_w is not None and reading.power_w > max_power_kw * 1000.0:
            if SPIKE not in flags:
                flags.append(SPIKE)
            quality = Quality.SUSPECT
        if streak.advance(reading):
            flags.append(ZERO_STREAK)
        export_step = None
        if reading.export_kwh is not None:
            export_step = _export_step(last_export, reading)
            if export_step.kind == "backwards":
                flags.append(EXPORT_REGISTER_BACKWARDS)
            last_export = reading
        assessments.append(Assessment(quality, tuple(flags), step, export_step))
    return assessments


# Quality and flag of a reading by the way its import register moved.
_STEP_OUTCOME: dict[StepKind, tuple[Quality, str | None]] = {
    "first": (Quality.ACTUAL, None),
    "normal": (Quality.ACTUAL, None),
    "rollover": (Quality.ACTUAL, REGISTER_ROLLOVER),
    "reset": (Quality.ESTIMATED, METER_RESET),
    "glitch": (Quality.SUSPECT, REGISTER_GLITCH),
    "spike": (Quality.SUSPECT, SPIKE),
    "jump": (Quality.ESTIMATED, REGISTER_JUMP),
}


def _require_sorted(readings: Sequence[Reading]) -> None:
    for earlier, later in pairwise(readings):
        if later.ts < earlier.ts:
            raise ValueError("readings must be sorted by ts")


class _ImportTracker:
    """Follows the import register from one trusted reading to the next."""

    def __init__(self, register_max_kwh: float | None, max_power_kw: float) -> None:
        self.register_max_kwh = register_max_kwh
        self.max_power_kw = max_power_kw
        self.trusted: Reading | None = None
        # The latest spike, kept so that the next reading can show whether the register really
        # moved there; without it a meter swap would be a spike for ever.
        self.spiked: Reading | None = None

    def advance(self, reading: Reading) -> RegisterStep:
        step = self._classify(reading)
        self.spiked = reading if step.kind == "spike" else None
        if step.kind not in ("glitch", "spike"):
            self.trusted = reading
        return step

    def _classify(self, reading: Reading) -> RegisterStep:
        trusted = self.trusted
        if trusted is None:
            return RegisterStep("first", 0.0, reading.ts)
        assert trusted.import_kwh is not None and reading.import_kwh is not None
        prev, new = trusted.import_kwh, reading.import_kwh
        max_energy = self._max_energy_kwh(trusted.ts, reading.ts)
        if new >= prev:
            if new - prev <= max_energy:
                return RegisterStep("normal", new - prev, trusted.ts)
            return self._spike_or_jump(reading, trusted.ts)
        if self._is_rollover(prev, new, max_energy):
            assert self.register_max_kwh is not None
            return RegisterStep("rollover", self.register_max_kwh - prev + new, trusted.ts)
        if new < RESET_NEAR_ZERO_KWH or prev - new > RESET_DROP_FRACTION * prev:
            # What was consumed between the last reading and the reset is lost; what the register
            # shows now is the best estimate of the energy since, if it is physically possible.
            since_reset = max(new, 0.0) if new <= max_energy else 0.0
            return RegisterStep("reset", since_reset, trusted.ts)
        return RegisterStep("glitch", 0.0, trusted.ts)

    def _spike_or_jump(self, reading: Reading, trusted_ts: datetime) -> RegisterStep:
        spiked = self.spiked
        if spiked is not None and spiked.import_kwh is not None and reading.import_kwh is not None:
            since_spike = reading.import_kwh - spiked.import_kwh
            if 0.0 <= since_spike <= self._max_energy_kwh(spiked.ts, reading.ts):
                return RegisterStep("jump", since_spike, spiked.ts)
        return RegisterStep("spike", 0.0, trusted_ts)

    def _is_rollover(self, prev: float, new: float, max_energy: float) -> bool:
        register_max = self.register_max_kwh
        if register_max is None:
            return False
        margin = max(register_max * ROLLOVER_MARGIN_FRACTION, ROLLOVER_MARGIN_KWH)
        return register_max - prev <= margin and register_max - prev + new <= max_energy

    def _max_energy_kwh(self, start: datetime, end: datetime) -> float:
        return self.max_power_kw * (end - start).total_seconds() / 3600.0


class _ZeroStreak:
    """Tells whether the import register has stood still under voltage for long enough."""

    def __init__(self, threshold: timedelta) -> None:
        self.threshold = threshold
        self.register: float | None = None
        self.started: datetime | None = None

    def advance(self, reading: Reading) -> bool:
        powered = reading.voltage_v is not None and reading.voltage_v > ZERO_STREAK_MIN_VOLTAGE_V
        if not powered or reading.import_kwh is None:
            self.register, self.started = None, None
            return False
        if self.started is None or reading.import_kwh != self.register:
            self.register, self.started = reading.import_kwh, reading.ts
            return False
        return reading.ts - self.started >= self.threshold


def _export_step(previous: Reading | None, reading: Reading) -> RegisterStep:
    if previous is None:
        return RegisterStep("first", 0.0, reading.ts)
    assert previous.export_kwh is not None and reading.export_kwh is not None
    if reading.export_kwh < previous.export_kwh:
        return RegisterStep("backwards", 0.0, previous.ts)
    return RegisterStep("normal", export_delta(previous, reading), previous.ts)
