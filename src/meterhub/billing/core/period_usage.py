"""A period's usage of one meter: determinants, daily kWh for the chart, dates with estimates.

Two ways to the same numbers, both pure. ``usage_from_intervals`` runs ``compute_determinants``
over ``Interval`` objects. ``SlotTable`` classifies the period's 15-minute slots once (season,
time-of-use window, day type, local day, local half hour and hour) and sums a meter's energies,
packed as the store's bill-run query returns them (``store.bill_usage.packed_intervals``), over
runs of slots of one class: slices of a tuple of ints, not a loop over intervals. It places
intervals that all last the same whole number of quarter hours and start on the slot grid;
anything else (5-minute intervals, mixed lengths, a start a second late) it refuses (None), and
the bill run takes the first way for that meter. tests/unit/test_billing_run_usage.py checks
the summing, tests/integration/test_bill_runs.py the two ways against each other.
"""

from __future__ import annotations

import struct
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from operator import add

from meterhub.billing.core.determinants import (
    KWH_QUANTUM,
    Bin,
    Classifier,
    Determinants,
    compute_determinants,
    floor_local,
    period_bounds_utc,
    season_days,
)
from meterhub.billing.core.tariff import Tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

SLOT = timedelta(minutes=15)
SLOT_SECONDS = 900
DEMAND = Decimal("0.001")


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    determinants: Determinants
    daily_kwh: dict[date, Decimal] = field(default_factory=dict)  # local day -> kWh imported
    estimated_dates: list[date] = field(default_factory=list)


def usage_from_intervals(
    intervals: Sequence[Interval], tariff: Tariff, start: date, end: date
) -> PeriodUsage:
    determinants = compute_determinants(intervals, tariff, start, end)
    first, last = period_bounds_utc(start, end, tariff.zone)
    zone = tariff.zone
    daily: dict[date, Decimal] = defaultdict(Decimal)
    estimated: set[date] = set()
    for interval in intervals:
        if not first <= interval.start < last:
            continue
        day = interval.start.astimezone(zone).date()
        daily[day] += Decimal(repr(interval.import_kwh)).quantize(KWH_QUANTUM)
        if interval.quality is not Quality.ACTUAL:
            estimated.add(day)
    return PeriodUsage(determinants, dict(sorted(daily.items())), sorted(estimated))


def _kwh(micro: int) -> Decimal:
    """Whole micro-kWh as kWh with six decimals, as a sum of quantized Decimals prints."""
    return Decimal(micro).scaleb(-6)


class SlotTable:
    """Every 15-minute slot of the period, what the tariff makes of it, and how to sum a meter's
    slots into determinants."""

    def __init__(self, tariff: Tariff, start: date, end: date) -> None:
        zone = tariff.zone
        classify = Classifier.for_period(tariff, start, end)
        self.start, self.end = start, end
        self.first, self.last = period_bounds_utc(start, end, zone)
        self.days_by_season = season_days(tariff, start, end)
        days: list[date] = []
        keys: list[tuple[str, str, str]] = []
        # Local half hours and hours, numbered: equal numbers, same demand window.
        half_hours: list[int] = []
        hours: list[int] = []
        windows: dict[datetime, int] = {}
        slot = self.first
        while slot < self.last:
            local = slot.astimezone(zone)
            days.append(local.date())
            keys.append(classify(slot))
            half_hours.append(windows.setdefault(floor_local(local, 30), len(windows)))
            hours.append(windows.setdefault(floor_local(local, 60), len(windows)))
            slot += SLOT
        self.size = len(days)
        self.days, self.half_hours, self.hours = days, half_hours, hours
        # Runs of consecutive slots of one local day and one class: a meter's energy is summed
        # run by run (July on PG&E E-TOU-C: 93 runs for 2,976 slots).
        self.runs: list[tuple[int, int]] = []
        self.run_keys: list[tuple[date, tuple[str, str, str]]] = []
        self.run_of: list[int] = []
        for index, key in enumerate(zip(days, keys, strict=True)):
            if not self.run_keys or self.run_keys[-1] != key:
                self.runs.append((index, index + 1))
                self.run_keys.append(key)
            else:
                self.runs[-1] = (self.runs[-1][0], index + 1)
            self.run_of.append(len(self.runs) - 1)
        # The starts of a meter with every slot, in order, as the query packs them.
        self.in_order = struct.pack(
            f">{self.size}i", *range(0, self.size * SLOT_SECONDS, SLOT_SECONDS)
        )
        self.half_hour_spans = _spans(half_hours)
        self.hour_spans = _spans(hours)
        # Every local half hour two slots and every hour two half hours, from the first slot
        # (true unless a zone's clock shifts by less than an hour): window sums by strides.
        self.paired = all(b - a == 2 for a, b in self.half_hour_spans) and all(
            b - a == 4 for a, b in self.hour_spans
        )

    def usage(
        self, seconds: int, starts: bytes, energy: bytes, export: int, estimated: Sequence[int]
    ) -> PeriodUsage | None:
        """A meter's usage from its intervals, all ``seconds`` long: their starts in seconds
        from the period's first instant and their micro-kWh, packed big-endian int4 and int8 in
        the same order. None if one cannot be placed here (off the slot grid, or no integer)."""
        count = len(starts) // 4
        if len(energy) != count * 8:
            return None
        values: Sequence[int] = struct.unpack(f">{count}q", energy)
        run_sums: list[int | None]
        peaks: tuple[int, int | None, int | None]
        if starts != self.in_order:
            offsets = struct.unpack(f">{count}i", starts)
            if any(offset % SLOT_SECONDS for offset in offsets):
                return None
            slots = [offset // SLOT_SECONDS for offset in offsets]
            if seconds != SLOT_SECONDS or count != self.size:
                run_sums, peaks = self._scattered(slots, values, seconds)
                return self._assemble(run_sums, peaks, seconds, count, export, estimated)
            # Every slot once (the primary key makes starts unique), in another order.
            ordered = [0] * count
            deque(map(ordered.__setitem__, slots, values), maxlen=0)
            values = ordered
        # Every slot once, in order: sums over slices.
        run_sums = [sum(values[a:b]) for a, b in self.runs]
        if self.paired:
            halves = list(map(add, values[0::2], values[1::2]))
            peaks = (max(values), max(halves), max(map(add, halves[0::2], halves[1::2])))
        else:
            peaks = (
                max(values),
                max(sum(values[a:b]) for a, b in self.half_hour_spans),
                max(sum(values[a:b]) for a, b in self.hour_spans),
            )
        return self._assemble(run_sums, peaks, seconds, count, export, estimated)

    def _scattered(
        self, placed: Sequence[int], values: Sequence[int], seconds: int
    ) -> tuple[list[int | None], tuple[int, int | None, int | None]]:
        """Gaps, or intervals longer than a slot: interval by interval. A run or a demand
        window without intervals has no sum (None), as in ``compute_determinants``."""
        run_sums: list[int | None] = [None] * len(self.runs)
        half_hours: dict[int, int] = defaultdict(int)
        hours: dict[int, int] = defaultdict(int)
        run_of, half_hour_of, hour_of = self.run_of, self.half_hours, self.hours
        for slot, kwh in zip(placed, values, strict=True):
            run = run_of[slot]
            run_sums[run] = (run_sums[run] or 0) + kwh
            half_hours[half_hour_of[slot]] += kwh
            hours[hour_of[slot]] += kwh
        return run_sums, (
            max(values),
            max(half_hours.values()) if seconds <= 1800 else None,
            max(hours.values()) if seconds <= 3600 else None,
        )

    def _assemble(
        self,
        run_sums: Sequence[int | None],
        peaks: tuple[int, int | None, int | None],
        seconds: int,
        count: int,
        export: int,
        estimated: Sequence[int],
    ) -> PeriodUsage:
        bins: dict[Bin, int] = {}
        day_types: dict[str, int] = {}
        daily: dict[date, int] = {}
        for (day, (season, window, day_type)), kwh in zip(self.run_keys, run_sums, strict=True):
            if kwh is None:
                continue
            bins[season, window] = bins.get((season, window), 0) + kwh
            day_types[day_type] = day_types.get(day_type, 0) + kwh
            daily[day] = daily.get(day, 0) + kwh
        peak, half_hour, hour = peaks
        # As compute_determinants: the 15-minute peak counts from zero, the windows' do not;
        # a window counts intervals no longer than itself.
        max_demand = {
            15: _kwh(max(peak, 0)) * 3600 / seconds if seconds <= 900 else Decimal(0),
            30: _kwh(half_hour) * 2 if half_hour is not None else Decimal(0),
            60: _kwh(hour) if hour is not None else Decimal(0),
        }
        determinants = Determinants(
            start=self.start,
            end=self.end,
            days=Decimal((self.end - self.start).days),
            import_kwh=_kwh(sum(daily.values())),
            export_kwh=_kwh(export),
            energy_by_bin={key: _kwh(kwh) for key, kwh in bins.items()},
            days_by_season=self.days_by_season,
            energy_by_day_type={key: _kwh(kwh) for key, kwh in day_types.items()},
            max_demand_kw={m: kw.quantize(DEMAND) for m, kw in max_demand.items()},
            intervals=count,
            estimated_intervals=len(estimated),
        )
        return PeriodUsage(
            determinants,
            {day: _kwh(kwh) for day, kwh in daily.items()},
            sorted({self.days[offset // SLOT_SECONDS] for offset in estimated}),
        )


def _spans(windows: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) slot ranges of equal window numbers."""
    spans: list[tuple[int, int]] = []
    for index, window in enumerate(windows):
        if index and windows[index - 1] == window:
            spans[-1] = (spans[-1][0], index + 1)
        else:
            spans.append((index, index + 1))
    return spans
