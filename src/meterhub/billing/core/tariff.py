"""Tariffs as data: the versioned tariff document (YAML or JSON), validated by Pydantic.

A tariff is what a utility publishes for one consumer category: its calendar (seasons,
time-of-use windows, holidays) and a list of versions, each with the prices in force from its
``effective_from`` date until the next version's, the last one until the tariff's optional
``effective_until`` (the day a utility withdraws or replaces the schedule). Prices are looked up by
date, never "the current price"; a date that no version covers is an error, never a zero
(``TariffGap``).

``load_tariff`` / ``parse_tariff`` return a ``Tariff`` or raise ``TariffInvalid`` with every
problem at once, each naming the field path (``versions.0.energy.1.slabs.2.rate``) and why.
docs/tariffs.md documents the schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA = "meterhub.tariff/v1"
ANY = "all"  # the season or window name when a tariff has no seasons or no TOU windows
DayType = Literal["weekday", "weekend", "holiday"]
ComponentKind = Literal["energy", "fixed", "demand", "minimum", "export", "tax", "rounding"]

Money = Annotated[Decimal, Field(allow_inf_nan=False)]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- provenance


class Source(_Model):
    """Where the figures come from: a tariff without a source is an opinion."""

    utility: str
    document: str  # regulator order, schedule or tariff sheet name
    date: date
    url: str | None = None
    notes: str | None = None


# ----------------------------------------------------------------------------- calendar


class Season(_Model):
    name: Name
    start: Annotated[str, Field(pattern=r"^\d\d-\d\d$")]  # MM-DD, first day
    end: Annotated[str, Field(pattern=r"^\d\d-\d\d$")]  # MM-DD, last day (may wrap the year)

    def contains(self, day: date) -> bool:
        key = (day.month, day.day)
        first, last = _month_day(self.start), _month_day(self.end)
        if first <= last:
            return first <= key <= last
        return key >= first or key <= last


class HolidayCalendar(_Model):
    """Public holidays from the ``holidays`` package, plus dates the utility names itself."""

    country: str
    subdivision: str | None = None
    extra_dates: list[date] = []


class Window(_Model):
    """A time-of-use window: local clock times ``[start, end)``, which may wrap midnight."""

    name: Name
    start: time
    end: time  # 00:00 means midnight at the end of the day
    day_types: list[DayType] = ["weekday", "weekend", "holiday"]
    seasons: list[Name] | None = None  # None: every season

    def contains(self, clock: time) -> bool:
        if self.start < self.end:
            return self.start <= clock < self.end
        if self.end == time(0):
            return clock >= self.start
        return clock >= self.start or clock < self.end


class TimeOfUse(_Model):
    windows: list[Window]
    default_window: Name  # every moment no window claims
    # Economy 7 meters in Great Britain switch on GMT all year: their windows are read on a clock
    # other than the utility's civil time. Default: the tariff's time zone.
    clock_zone: str | None = None


# ----------------------------------------------------------------------------- conditions


class Condition(_Model):
    """A component applies only to connections that match (all stated fields must match)."""

    amperes: list[int] | None = None
    sanctioned_kw_above: NonNegative | None = None
    sanctioned_kw_up_to: NonNegative | None = None


# ----------------------------------------------------------------------------- energy


class Slab(_Model):
    up_to: Positive | None = None  # kWh per ``slab_basis``; None: the open last slab
    rate: Money  # per kWh


class SlabCharge(_Model):
    """Energy priced by consumption blocks.

    telescopic: each block at its own rate. non_telescopic: all the energy at the rate of the
    block the consumption falls in. flat: one rate. ``slab_basis`` says what the block limits
    are per: a month (scaled by the fraction of the billing cycle billed) or a day of the period
    (baseline allowances).
    """

    name: Name
    description: str | None = None
    kind: Literal["flat", "telescopic", "non_telescopic"]
    rate: Money | None = None  # flat only
    slabs: list[Slab] = []
    slab_basis: Literal["month", "day"] = "month"
    season: Name | None = None  # only the energy (and days) of this season
    when: Condition | None = None


class TouRate(_Model):
    window: Name
    season: Name | None = None  # None: every season
    rate: Money


class TouCharge(_Model):
    """Energy priced by time-of-use window and season; tiers are a slab charge added to it."""

    name: Name
    description: str | None = None
    kind: Literal["tou"]
    rates: list[TouRate]
    when: Condition | None = None


EnergyCharge = Annotated[SlabCharge | TouCharge, Field(discriminator="kind")]


# ----------------------------------------------------------------------------- fixed


class LoadBand(_Model):
    up_to_kw: Positive | None = None
    rate: Money  # per kW per month


class EnergyBand(_Model):
    up_to_kwh: Positive | None = None  # kWh per month
    amount: Money  # per month


class AmpereRating(_Model):
    amperes: int
    amount: Money | None = None  # per month
    energy_bands: list[EnergyBand] = []  # amount by the block the month's consumption is in


class FixedCharge(_Model):
    """A charge that does not scale with energy.

    per_month / per_day: ``amount``, or ``energy_bands`` (per month, chosen by consumption).
    per_kw: per kW of sanctioned load per month, ``rate`` or ``load_bands`` (``band_method``
    whole: the whole load at the rate of its band; telescopic: each band's kW at its rate).
    per_ampere_rating: ``ratings`` by the connection's ampere rating, per month.
    """

    name: Name
    description: str | None = None
    basis: Literal["per_month", "per_day", "per_kw", "per_ampere_rating"]
    amount: Money | None = None
    energy_bands: list[EnergyBand] = []
    rate: Money | None = None
    load_bands: list[LoadBand] = []
    band_method: Literal["whole", "telescopic"] = "whole"
    ratings: list[AmpereRating] = []
    when: Condition | None = None


class DemandCharge(_Model):
    name: Name
    description: str | None = None
    window_minutes: Literal[15, 30, 60] = 30
    rate: Money  # per kW of the period's highest demand, per month
    when: Condition | None = None


class MinimumCharge(_Model):
    """If the named components come to less than ``amount`` per month (or per day), the
    difference is billed."""

    amount: NonNegative
    basis: Literal["per_month", "per_day"] = "per_month"
    applies_to: list[Name]


# ----------------------------------------------------------------------------- taxes, terms


class Tax(_Model):
    """A percentage of named components (or groups: energy, fixed, demand, or earlier taxes)."""

    name: Name
    description: str | None = None
    percent: Money
    applies_to: list[Name]


class NetMetering(_Model):
    """credit: export priced at ``export_rate``; net: export offsets import within the period,
    and any excess export is credited at ``export_rate`` (0 if the utility pays nothing)."""

    method: Literal["credit", "net"]
    export_rate: NonNegative = Decimal(0)


class LateFee(_Model):
    after_days: int  # days after the due date
    percent: NonNegative | None = None  # of the overdue amount
    amount: NonNegative | None = None


class PaymentTerms(_Model):
    """Rules the bill-run and payment code applies; the quote only carries them."""

    due_days: int | None = None
    prompt_payment_rebate_percent: NonNegative | None = None
    prompt_payment_within_days: int | None = None
    rebate_applies_to: list[Name] = []
    late_fees: list[LateFee] = []


class Rounding(_Model):
    line: Positive = Decimal("0.01")
    total: Positive = Decimal("0.01")
    mode: Literal["half_up", "half_even"] = "half_up"

    @property
    def decimal_mode(self) -> str:
        return ROUND_HALF_UP if self.mode == "half_up" else ROUND_HALF_EVEN


class TariffVersion(_Model):
    effective_from: date
    source: Source | None = None  # when this version has its own order
    notes: str | None = None
    energy: list[EnergyCharge] = []
    fixed: list[FixedCharge] = []
    demand: list[DemandCharge] = []
    minimum_charge: MinimumCharge | None = None
    net_metering: NetMetering | None = None
    taxes: list[Tax] = []  # applied in this order
    payment_terms: PaymentTerms | None = None
    rounding: Rounding | None = None  # default: the tariff's


class Tariff(_Model):
    schema_: Literal["meterhub.tariff/v1"] = Field(alias="schema")
    id: Name
    name: str
    category: str | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    timezone: str
    source: Source
    seasons: list[Season] = []
    time_of_use: TimeOfUse | None = None
    holidays: HolidayCalendar | None = None
    weekend_days: list[Annotated[int, Field(ge=0, le=6)]] = [5, 6]  # Monday=0
    rounding: Rounding = Rounding()
    versions: Annotated[list[TariffVersion], Field(min_length=1)]
    # Exclusive: the first day the schedule no longer applies. Without it the last version runs on,
    # which is wrong for a withdrawn schedule: a bill must be refused rather than priced on it.
    effective_until: date | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _zone(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def season_names(self) -> list[str]:
        return [season.name for season in self.seasons] or [ANY]

    @property
    def window_names(self) -> list[str]:
        if self.time_of_use is None:
            return [ANY]
        names = [window.name for window in self.time_of_use.windows]
        names.append(self.time_of_use.default_window)
        return list(dict.fromkeys(names))

    def season_of(self, day: date) -> str:
        for season in self.seasons:
            if season.contains(day):
                return season.name
        if self.seasons:
            raise TariffGap(f"{self.id}: no season covers {day}")
        return ANY

    def version_on(self, day: date) -> TariffVersion:
        """The version in force on ``day``; ``TariffGap`` before the first one or from
        ``effective_until`` on."""
        if self.effective_until is not None and day >= self.effective_until:
            raise TariffGap(f"{self.id}: the schedule ends before {day} ({self.effective_until})")
        found = None
        for version in self.versions:
            if version.effective_from <= day:
                found = version
        if found is None:
            raise TariffGap(f"{self.id}: no version in force on {day}")
        return found

    def split(self, start: date, end: date) -> list[TariffPart]:
        """The versions in force over ``[start, end)`` and the days each covers, in order."""
        if end <= start:
            raise ValueError(f"empty period {start} .. {end}")
        parts: list[TariffPart] = []
        part_start = start
        while part_start < end:
            version = self.version_on(part_start)
            later = [v.effective_from for v in self.versions if v.effective_from > part_start]
            if self.effective_until is not None:
                later.append(self.effective_until)
            part_end = min([end, *later])
            parts.append(TariffPart(version, part_start, part_end))
            part_start = part_end
        return parts

    def rounding_for(self, version: TariffVersion) -> Rounding:
        return version.rounding or self.rounding


@dataclass(frozen=True, slots=True)
class TariffPart:
    version: TariffVersion
    start: date
    end: date  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days


# ----------------------------------------------------------------------------- errors


class TariffGap(LookupError):
    """No price for a date or determinant: the bill cannot be made (never priced at zero)."""


@dataclass(frozen=True, slots=True)
class TariffProblem:
    code: str
    field: str  # dotted path into the document, e.g. versions.0.energy.1.slabs.2.rate
    message: str

    def __str__(self) -> str:
        return f"{self.field or '(document)'}: {self.message} [{self.code}]"


class TariffInvalid(ValueError):
    def __init__(self, problems: Sequence[TariffProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


# ----------------------------------------------------------------------------- loading


def load_tariff(path: Path) -> Tariff:
    """Read a tariff document (.yaml, .yml or .json) and validate it; ``TariffInvalid`` if not."""
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TariffInvalid([TariffProblem("syntax", "", str(exc))]) from None
    return parse_tariff(document)


def parse_tariff(document: Any) -> Tariff:
    """Validate a decoded document: structure (Pydantic), then the cross-field rules."""
    if not isinstance(document, dict):
        raise TariffInvalid([TariffProblem("type", "", "a tariff document is a mapping")])
    try:
        tariff = Tariff.model_validate(_decimals(document))
    except ValidationError as exc:
        raise TariffInvalid(
            [
                TariffProblem(error["type"], _field_path(error["loc"]), error["msg"])
                for error in exc.errors()
            ]
        ) from None
    problems = list(check_tariff(tariff))
    if problems:
        raise TariffInvalid(problems)
    return tariff


_ENERGY_KINDS = frozenset({"flat", "telescopic", "non_telescopic", "tou"})


def _field_path(loc: Sequence[int | str]) -> str:
    """The document path of a Pydantic error: without the union tag Pydantic inserts after a
    discriminated list item (``energy.0.tou.rates`` is ``energy.0.rates`` in the document)."""
    parts = [
        str(part)
        for index, part in enumerate(loc)
        if not (part in _ENERGY_KINDS and index > 0 and isinstance(loc[index - 1], int))
    ]
    return ".".join(parts)


def _decimals(value: Any) -> Any:
    """YAML reads 0.1 as a float: go through its shortest repr so 0.1 stays exactly 0.1."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decimals(item) for item in value]
    return value


def check_tariff(tariff: Tariff) -> Iterator[TariffProblem]:
    """Rules that span fields; every problem is reported, not only the first."""
    seasons = set(tariff.season_names)
    windows = set(tariff.window_names)
    yield from _check_calendar(tariff, seasons)
    seen_dates: set[date] = set()
    previous: date | None = None
    for index, version in enumerate(tariff.versions):
        path = f"versions.{index}"
        if version.effective_from in seen_dates:
            yield TariffProblem("duplicate", f"{path}.effective_from", "two versions start then")
        if previous is not None and version.effective_from < previous:
            yield TariffProblem("order", f"{path}.effective_from", "versions must be in date order")
        seen_dates.add(version.effective_from)
        previous = version.effective_from
        yield from _check_version(version, path, seasons, windows)
    until = tariff.effective_until
    if until is not None and previous is not None and until <= previous:
        yield TariffProblem(
            "order", "effective_until", "must be after the last version's effective_from"
        )


def _check_calendar(tariff: Tariff, seasons: set[str]) -> Iterator[TariffProblem]:
    for index, season in enumerate(tariff.seasons):
        for end in ("start", "end"):
            try:
                date(2024, *_month_day(getattr(season, end)))
            except ValueError:
                yield TariffProblem("date", f"seasons.{index}.{end}", "not a month-day (MM-DD)")
    if tariff.seasons:
        day, uncovered = date(2024, 1, 1), []
        while day.year == 2024:
            claimed = sum(
                1 for season in tariff.seasons if _valid_season(season) and season.contains(day)
            )
            if claimed != 1:
                uncovered.append(day)
            day += timedelta(days=1)
        if uncovered:
            yield TariffProblem(
                "seasons",
                "seasons",
                f"every day must be in exactly one season; not so for {len(uncovered)} days, "
                f"first {uncovered[0]:%m-%d}",
            )
    tou = tariff.time_of_use
    if tou is not None:
        if tou.clock_zone is not None:
            try:
                _zone(tou.clock_zone)
            except ValueError as exc:
                yield TariffProblem("zone", "time_of_use.clock_zone", str(exc))
        for index, window in enumerate(tou.windows):
            if window.start == window.end:
                yield TariffProblem("window", f"time_of_use.windows.{index}", "empty window")
            for name in window.seasons or []:
                if name not in seasons:
                    yield TariffProblem(
                        "unknown_season",
                        f"time_of_use.windows.{index}.seasons",
                        f"no season named {name!r}",
                    )
    if tariff.holidays is not None:
        import holidays

        try:
            holidays.country_holidays(
                tariff.holidays.country, subdiv=tariff.holidays.subdivision, years=2024
            )
        except NotImplementedError as exc:
            yield TariffProblem("holidays", "holidays", str(exc))


def _check_version(
    version: TariffVersion, path: str, seasons: set[str], windows: set[str]
) -> Iterator[TariffProblem]:
    names: list[str] = []
    for index, charge in enumerate(version.energy):
        where = f"{path}.energy.{index}"
        names.append(charge.name)
        if isinstance(charge, TouCharge):
            yield from _check_tou(charge, where, seasons, windows)
            continue
        if charge.season is not None and charge.season not in seasons:
            yield TariffProblem("unknown_season", f"{where}.season", f"no season {charge.season!r}")
        if charge.kind == "flat":
            if charge.rate is None or charge.slabs:
                yield TariffProblem("flat", where, "a flat charge has a rate and no slabs")
        else:
            if charge.rate is not None:
                yield TariffProblem("slabs", f"{where}.rate", "slab charges price by slabs")
            yield from _check_limits(
                [slab.up_to for slab in charge.slabs], f"{where}.slabs", "up_to"
            )
    for index, fixed in enumerate(version.fixed):
        names.append(fixed.name)
        yield from _check_fixed(fixed, f"{path}.fixed.{index}")
    names += [demand.name for demand in version.demand]
    groups = {"energy", "fixed", "demand", "minimum", "export"}
    for index, tax in enumerate(version.taxes):
        for target in tax.applies_to:
            if target not in groups and target not in names:
                yield TariffProblem(
                    "unknown_component",
                    f"{path}.taxes.{index}.applies_to",
                    f"{target!r} is not a component, a group or an earlier tax",
                )
        names.append(tax.name)
    if version.minimum_charge is not None:
        for target in version.minimum_charge.applies_to:
            if target not in groups and target not in names:
                yield TariffProblem(
                    "unknown_component",
                    f"{path}.minimum_charge.applies_to",
                    f"{target!r} is not a component or a group",
                )
    duplicates = {name for name in names if names.count(name) > 1}
    for name in sorted(duplicates):
        yield TariffProblem("duplicate", path, f"component name {name!r} is used twice")


def _check_tou(
    charge: TouCharge, where: str, seasons: set[str], windows: set[str]
) -> Iterator[TariffProblem]:
    priced: set[tuple[str, str]] = set()
    for index, rate in enumerate(charge.rates):
        if rate.window not in windows:
            yield TariffProblem(
                "unknown_window", f"{where}.rates.{index}.window", f"no window {rate.window!r}"
            )
        if rate.season is not None and rate.season not in seasons:
            yield TariffProblem(
                "unknown_season", f"{where}.rates.{index}.season", f"no season {rate.season!r}"
            )
        for season in [rate.season] if rate.season else sorted(seasons):
            if (season, rate.window) in priced:
                yield TariffProblem(
                    "duplicate", f"{where}.rates.{index}", f"{season}/{rate.window} priced twice"
                )
            priced.add((season, rate.window))
    for season in sorted(seasons):
        for window in sorted(windows):
            if (season, window) not in priced:
                # A missing price is an error, never a zero.
                yield TariffProblem(
                    "missing_price", f"{where}.rates", f"no rate for season {season}, {window}"
                )


def _check_fixed(fixed: FixedCharge, where: str) -> Iterator[TariffProblem]:
    if fixed.basis in ("per_month", "per_day"):
        if (fixed.amount is None) == (not fixed.energy_bands):
            yield TariffProblem("fixed", where, f"{fixed.basis} needs amount or energy_bands")
        if fixed.basis == "per_day" and fixed.energy_bands:
            yield TariffProblem("fixed", f"{where}.energy_bands", "energy bands are per month")
        yield from _check_limits(
            [band.up_to_kwh for band in fixed.energy_bands], f"{where}.energy_bands", "up_to_kwh"
        )
    elif fixed.basis == "per_kw":
        if (fixed.rate is None) == (not fixed.load_bands):
            yield TariffProblem("fixed", where, "per_kw needs rate or load_bands")
        yield from _check_limits(
            [band.up_to_kw for band in fixed.load_bands], f"{where}.load_bands", "up_to_kw"
        )
    else:
        if not fixed.ratings:
            yield TariffProblem("fixed", f"{where}.ratings", "per_ampere_rating needs ratings")
        for index, rating in enumerate(fixed.ratings):
            if (rating.amount is None) == (not rating.energy_bands):
                yield TariffProblem(
                    "fixed", f"{where}.ratings.{index}", "a rating needs amount or energy_bands"
                )
            yield from _check_limits(
                [band.up_to_kwh for band in rating.energy_bands],
                f"{where}.ratings.{index}.energy_bands",
                "up_to_kwh",
            )


def _check_limits(
    limits: Sequence[Decimal | None], where: str, field: str
) -> Iterator[TariffProblem]:
    if not limits:
        return
    if limits[-1] is not None:
        yield TariffProblem(
            "open_last", f"{where}.{len(limits) - 1}.{field}", "the last block must be open"
        )
    previous = Decimal(0)
    for index, limit in enumerate(limits[:-1]):
        if limit is None:
            yield TariffProblem("open_early", f"{where}.{index}.{field}", "only the last is open")
        elif limit <= previous:
            yield TariffProblem("order", f"{where}.{index}.{field}", "limits must increase")
        else:
            previous = limit


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def _valid_season(season: Season) -> bool:
    try:
        date(2024, *_month_day(season.start))
        date(2024, *_month_day(season.end))
    except ValueError:
        return False
    return True


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
