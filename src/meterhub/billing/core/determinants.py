"""Billing determinants from intervals: what a tariff prices. Pure: intervals in, numbers out.

Every calendar question is asked in the utility's zone: the period is local dates
``[start, end)``; a 15-minute interval belongs to the local day, season, day type
(weekday/weekend/holiday) and time-of-use window that contain its start. Energy is converted to
Decimal once per interval, at 1e-6 kWh, so the sums by window add up to the total exactly.

Max demand is the highest average kW over 15-, 30- and 60-minute windows aligned to the local
clock (in +05:45 a half hour is local hh:00-hh:30, not UTC's).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from meterhub.billing.core.tariff import ANY, DayType, Tariff
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

KWH_QUANTUM = Decimal("0.000001")
DEMAND_WINDOWS = (15, 30, 60)
Bin = tuple[str, str]  # (season, window)


@dataclass(frozen=True, slots=True)
class Determinants:
    """One period's billing quantities. Energy in kWh, demand in kW, days may be fractional
    once a period is pro-rated."""

    start: date  # local, inclusive
    end: date  # local, exclusive
    days: Decimal
    import_kwh: Decimal
    export_kwh: Decimal = Decimal(0)
    energy_by_bin: Mapping[Bin, Decimal] = field(default_factory=dict)
    days_by_season: Mapping[str, Decimal] = field(default_factory=dict)
    energy_by_day_type: Mapping[str, Decimal] = field(default_factory=dict)
    max_demand_kw: Mapping[int, Decimal] = field(default_factory=dict)  # by window minutes
    intervals: int = 0
    estimated_intervals: int = 0  # not plain measurements: a bill must say so

    def energy_in_season(self, season: str | None) -> Decimal:
        if season is None:
            return self.import_kwh
        return sum(
            (kwh for (name, _), kwh in self.energy_by_bin.items() if name == season), Decimal(0)
        )

    def days_in_season(self, season: str | None) -> Decimal:
        if season is None:
            return self.days
        return self.days_by_season.get(season, Decimal(0))

    def scaled(self, fraction: Decimal, start: date, end: date) -> Determinants:
        """The share of a period's quantities that falls to ``[start, end)`` when it is
        pro-rated by days (energy, days and season days scale; max demand does not)."""
        return replace(
            self,
            start=start,
            end=end,
            days=self.days * fraction,
            import_kwh=self.import_kwh * fraction,
            export_kwh=self.export_kwh * fraction,
            energy_by_bin={key: kwh * fraction for key, kwh in self.energy_by_bin.items()},
            days_by_season={key: d * fraction for key, d in self.days_by_season.items()},
            energy_by_day_type={k: kwh * fraction for k, kwh in self.energy_by_day_type.items()},
        )


def period_bounds_utc(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instants local ``start`` and ``end`` begin, in UTC."""
    return _midnight(start, zone), _midnight(end, zone)


def determinants_from_totals(
    tariff: Tariff,
    start: date,
    end: date,
    import_kwh: Decimal,
    *,
    export_kwh: Decimal = Decimal(0),
    max_demand_kw: Mapping[int, Decimal] | None = None,
) -> Determinants:
    """Determinants from register reads (no intervals): enough for slab and flat tariffs.

    With seasons, the energy is shared between them by days. A tariff with time-of-use windows
    cannot be priced from totals: ``ValueError``.
    """
    if tariff.time_of_use is not None:
        raise ValueError(f"{tariff.id} prices time-of-use windows: intervals are needed")
    days_by_season = season_days(tariff, start, end)
    days = Decimal((end - start).days)
    energy_by_bin = {
        (season, ANY): import_kwh * season_day_count / days
        for season, season_day_count in days_by_season.items()
    }
    # Keep the total exact: the last season takes what division left over.
    last = list(energy_by_bin)[-1]
    energy_by_bin[last] = import_kwh - sum(
        (kwh for key, kwh in energy_by_bin.items() if key != last), Decimal(0)
    )
    return Determinants(
        start=start,
        end=end,
        days=days,
        import_kwh=import_kwh,
        export_kwh=export_kwh,
        energy_by_bin=energy_by_bin,
        days_by_season=days_by_season,
        max_demand_kw=dict(max_demand_kw or {}),
    )


def compute_determinants(
    intervals: Iterable[Interval], tariff: Tariff, start: date, end: date
) -> Determinants:
    """Determinants of ``[start, end)`` (local dates in the tariff's zone) from intervals.

    Intervals that start outside the period are ignored; the bins are the tariff's seasons and
    time-of-use windows, the day types its weekend days and holiday calendar.
    """
    zone = tariff.zone
    first, last = period_bounds_utc(start, end, zone)
    classify = Classifier.for_period(tariff, start, end)
    energy_by_bin: dict[Bin, Decimal] = defaultdict(Decimal)
    by_day_type: dict[str, Decimal] = defaultdict(Decimal)
    demand_kwh: dict[int, dict[datetime, Decimal]] = {m: defaultdict(Decimal) for m in (30, 60)}
    demand_15_kw = Decimal(0)
    import_total = export_total = Decimal(0)
    count = estimated = 0
    for interval in intervals:
        if not first <= interval.start < last:
            continue
        kwh = Decimal(repr(interval.import_kwh)).quantize(KWH_QUANTUM)
        export = Decimal(repr(interval.export_kwh)).quantize(KWH_QUANTUM)
        season, window, day_type = classify(interval.start)
        energy_by_bin[season, window] += kwh
        by_day_type[day_type] += kwh
        import_total += kwh
        export_total += export
        count += 1
        if interval.quality is not Quality.ACTUAL:
            estimated += 1
        if interval.seconds <= 900:
            demand_15_kw = max(demand_15_kw, kwh * 3600 / interval.seconds)
        local = interval.start.astimezone(zone)
        for minutes, sums in demand_kwh.items():
            if interval.seconds <= minutes * 60:
                sums[floor_local(local, minutes)] += kwh
    max_demand = {15: demand_15_kw}
    for minutes, sums in demand_kwh.items():
        max_demand[minutes] = max(sums.values(), default=Decimal(0)) * 60 / minutes
    return Determinants(
        start=start,
        end=end,
        days=Decimal((end - start).days),
        import_kwh=import_total,
        export_kwh=export_total,
        energy_by_bin=dict(energy_by_bin),
        days_by_season=season_days(tariff, start, end),
        energy_by_day_type=dict(by_day_type),
        max_demand_kw={m: kw.quantize(Decimal("0.001")) for m, kw in max_demand.items()},
        intervals=count,
        estimated_intervals=estimated,
    )


def season_days(tariff: Tariff, start: date, end: date) -> dict[str, Decimal]:
    if not tariff.seasons:
        # Every day is in the one season ANY: no need to ask day by day (bill runs price a
        # million of these; the loop below was half the time of a slab bill).
        return {ANY: Decimal((end - start).days)} if end > start else {}
    days: dict[str, Decimal] = defaultdict(Decimal)
    day = start
    while day < end:
        days[tariff.season_of(day)] += 1
        day += timedelta(days=1)
    return dict(days)


def holiday_set(tariff: Tariff, start: date, end: date) -> frozenset[date]:
    """The tariff's holidays between ``start`` and ``end`` (the ``holidays`` package)."""
    if tariff.holidays is None:
        return frozenset()
    calendar = tariff.holidays
    years = tuple(range(start.year, end.year + 1))
    return frozenset(
        {*_country_holidays(calendar.country, calendar.subdivision, years), *calendar.extra_dates}
    )


def day_type(day: date, tariff: Tariff, holiday_dates: frozenset[date]) -> DayType:
    if day in holiday_dates:
        return "holiday"
    return "weekend" if day.weekday() in tariff.weekend_days else "weekday"


@lru_cache(maxsize=256)
def _country_holidays(
    country: str, subdivision: str | None, years: tuple[int, ...]
) -> frozenset[date]:
    import holidays

    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=years))


class Classifier:
    """(season, window, day type) of an interval start; cached per local date and clock time.
    Both ways to a period's usage (``compute_determinants`` and ``period_usage.SlotTable``)
    classify by it."""

    def __init__(
        self, tariff: Tariff, zone: ZoneInfo, clock_zone: ZoneInfo, holiday_dates: frozenset[date]
    ) -> None:
        self.tariff, self.zone, self.clock_zone = tariff, zone, clock_zone
        self.holiday_dates = holiday_dates
        self.days: dict[date, tuple[str, DayType]] = {}
        self.windows: dict[tuple[str, DayType, time], str] = {}

    @classmethod
    def for_period(cls, tariff: Tariff, start: date, end: date) -> Classifier:
        """The classifier of ``[start, end)``: the tariff's zone, the clock its time-of-use
        windows are read on, its holidays in the period."""
        zone = tariff.zone
        clock_zone = (
            ZoneInfo(tariff.time_of_use.clock_zone)
            if tariff.time_of_use and tariff.time_of_use.clock_zone
            else zone
        )
        return cls(tariff, zone, clock_zone, holiday_set(tariff, start, end))

    def __call__(self, start: datetime) -> tuple[str, str, DayType]:
        local = start.astimezone(self.zone)
        day = local.date()
        known = self.days.get(day)
        if known is None:
            known = self.days[day] = (
                self.tariff.season_of(day),
                day_type(day, self.tariff, self.holiday_dates),
            )
        season, kind = known
        clock = start.astimezone(self.clock_zone).time()
        key = (season, kind, clock)
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = self._window(season, kind, clock)
        return season, window, kind

    def _window(self, season: str, kind: DayType, clock: time) -> str:
        tou = self.tariff.time_of_use
        if tou is None:
            return ANY
        for window in tou.windows:
            if (
                kind in window.day_types
                and (window.seasons is None or season in window.seasons)
                and window.contains(clock)
            ):
                return window.name
        return tou.default_window


def floor_local(local: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long window of the local clock that ``local`` is in, in
    UTC (demand windows are aligned to the local clock)."""
    floored = local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
    return floored.astimezone(UTC)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
