"""Forward every reading, or one summary reading per interval (pure).

A summary is a contract reading, so the platform needs nothing new to take it:

- ``ts`` is the interval's end (intervals aligned to the wall clock of the configured zone, so a
  15-minute summary ends at :00, :15, :30, :45 local time, also in Asia/Kathmandu at +05:45);
- ``import_kwh``, ``export_kwh`` and ``import_kwh_by_tariff`` are the registers of the interval's
  last reading: cumulative, so the platform derives interval energy exactly as from any meter;
- ``voltage_v``, ``current_a``, ``pf``, ``freq_hz`` are the last reading's values;
- ``extra`` has ``power_w_min``, ``power_w_max``, ``power_w_mean`` (arithmetic mean of the
  samples), ``samples`` (readings in the interval; not ``readings``, which the contract reserves
  for a batch ``{"readings": [...]}``), ``interval_s``, and ``import_kwh_delta`` /
  ``export_kwh_delta`` (register at this interval's end minus at the previous summary's end; absent
  for the first summary). ``power_w`` itself is left out: it means an instantaneous value.

A summary is emitted when the first reading of a later interval arrives, by ``due`` once the wall
clock has passed an interval's end, or by ``flush`` at shutdown (then ``ts`` is the last reading's
time and ``extra.partial`` is true, since the interval has not ended). A reading older than the
interval being summed (a meter clock stepping back) opens a new summary of its own interval.

Summary timestamps strictly increase. The platform keys a reading by meter and ``ts`` and keeps
the first of two with the same key and other values (a ``reading_conflict``), so a summary whose
natural ``ts`` is not after the previous summary's gets the previous one plus one second. That
happens to the partial summary when its only reading is at the end of an interval ``due``
already closed, to an interval that a late reading (a meter clock behind the gateway's, or
stepping back) opens again after ``due`` closed it, and to ``flush`` then more readings then
another ``flush``. Its values are then the meter's newer registers at a later ``ts``, which keeps
the registers in order too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from meterhub.readings.model import Reading

UTC_ZONE = ZoneInfo("UTC")


class Aggregator(Protocol):
    def add(self, reading: Reading) -> list[Reading]: ...
    def due(self, now: datetime) -> list[Reading]: ...
    def flush(self) -> list[Reading]: ...


class ForwardAll:
    """Every reading as it is."""

    def add(self, reading: Reading) -> list[Reading]:
        return [reading]

    def due(self, now: datetime) -> list[Reading]:
        return []

    def flush(self) -> list[Reading]:
        return []


def interval_bounds(ts: datetime, interval: timedelta, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The [start, end) interval that holds ``ts``, aligned to local midnight in ``zone``."""
    local = ts.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Wall-clock arithmetic (aware datetimes in the same zone subtract as wall time in Python):
    # intervals tile the local day; on a DST change the interval across it is shorter or longer.
    elapsed = local.replace(tzinfo=None) - midnight.replace(tzinfo=None)
    start_wall = midnight.replace(tzinfo=None) + (elapsed // interval) * interval
    end_wall = start_wall + interval
    start = start_wall.replace(tzinfo=zone).astimezone(ts.tzinfo)
    end = end_wall.replace(tzinfo=zone).astimezone(ts.tzinfo)
    return start, end


@dataclass(slots=True)
class _Open:
    start: datetime
    end: datetime
    last: Reading
    count: int = 0
    power_count: int = 0
    power_sum: float = 0.0
    power_min: float = float("inf")
    power_max: float = float("-inf")


@dataclass(slots=True)
class IntervalSummary:
    interval: timedelta
    zone: ZoneInfo = UTC_ZONE
    _open: _Open | None = None
    _previous_end: dict[str, float] = field(default_factory=dict)
    _last_ts: datetime | None = None  # of the latest summary: the next one's ts is later

    def add(self, reading: Reading) -> list[Reading]:
        emitted: list[Reading] = []
        current = self._open
        if current is not None and not current.start <= reading.ts < current.end:
            emitted.append(self._close(current, current.end, partial=False))
            current = None
        if current is None:
            start, end = interval_bounds(reading.ts, self.interval, self.zone)
            current = self._open = _Open(start, end, reading)
        current.last = reading
        current.count += 1
        if reading.power_w is not None:
            power = reading.power_w
            current.power_count += 1
            current.power_sum += power
            current.power_min = min(current.power_min, power)
            current.power_max = max(current.power_max, power)
        return emitted

    def due(self, now: datetime) -> list[Reading]:
        """The open interval's summary once ``now`` has passed its end (a meter gone quiet)."""
        current = self._open
        if current is None or now < current.end:
            return []
        return [self._close(current, current.end, partial=False)]

    def flush(self) -> list[Reading]:
        current = self._open
        if current is None:
            return []
        return [self._close(current, current.last.ts, partial=True)]

    def _close(self, current: _Open, ts: datetime, *, partial: bool) -> Reading:
        self._open = None
        if self._last_ts is not None and ts <= self._last_ts:
            ts = self._last_ts + timedelta(seconds=1)
        self._last_ts = ts
        last = current.last
        extra: dict[str, object] = {
            "samples": current.count,
            "interval_s": int(self.interval.total_seconds()),
        }
        if current.power_count:
            extra["power_w_min"] = current.power_min
            extra["power_w_max"] = current.power_max
            extra["power_w_mean"] = round(current.power_sum / current.power_count, 3)
        for name, value in (("import_kwh", last.import_kwh), ("export_kwh", last.export_kwh)):
            if value is None:
                continue
            before = self._previous_end.get(name)
            if before is not None:
                # Rounded: 1234.567 - 1234.5 in binary floating point is 0.06699999999999591.
                extra[f"{name}_delta"] = round(value - before, 6)
            self._previous_end[name] = value
        if partial:
            extra["partial"] = True
        return Reading(
            meter_id=last.meter_id,
            ts=ts,
            import_kwh=last.import_kwh,
            export_kwh=last.export_kwh,
            import_kwh_by_tariff=last.import_kwh_by_tariff,
            voltage_v=last.voltage_v,
            current_a=last.current_a,
            pf=last.pf,
            freq_hz=last.freq_hz,
            extra=extra,
        )


def parse_interval(text: str) -> timedelta | None:
    """``none`` -> None (forward all); ``15m``, ``1h``, ``30s``, ``900`` (seconds) -> timedelta."""
    value = text.strip().lower()
    if value in ("none", "0", ""):
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        seconds = int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)
    except ValueError:
        raise ValueError(f"aggregate {text!r}: use none, or a period like 15m, 1h, 30s") from None
    if seconds <= 0 or 86_400 % seconds:
        raise ValueError(f"aggregate {text!r}: the period must divide a day (e.g. 1m, 15m, 1h)")
    return timedelta(seconds=seconds)


def aggregator_for(
    interval: timedelta | None, zone: ZoneInfo = UTC_ZONE
) -> ForwardAll | IntervalSummary:
    return ForwardAll() if interval is None else IntervalSummary(interval, zone)
