"""Bill calculation: (determinants, tariff, supply) -> bill lines. Pure and exact.

Every amount is a Decimal rounded to the tariff's line quantum when the line is made; taxes are
percentages of the rounded lines they name, applied in the order the tariff lists them; the
total is the sum of the lines, and if the tariff rounds the total more coarsely (to a whole
rupee, say) a rounding line makes up the difference. So the lines always add up to the total.

Pro-rating: the billing cycle is ``cycle_days`` long (default: the period's own length, i.e. a
full month whatever its days). "Per month" quantities (fixed charges, monthly slab limits,
minimum charges, demand charges) are multiplied by ``days / cycle_days``; a move-in or move-out
period is just a shorter period in a full-length cycle. When a new tariff version takes effect
inside the period, the period is split at that date and the energy is shared between the parts
by days (meters are read at the cycle ends, not at the tariff change), slab limits scaled to
each part: regulators' orders prescribe exactly this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import lru_cache

from meterhub.billing.core.determinants import Determinants
from meterhub.billing.core.tariff import (
    ANY,
    ComponentKind,
    Condition,
    EnergyBand,
    FixedCharge,
    PaymentTerms,
    Rounding,
    Slab,
    SlabCharge,
    Tariff,
    TariffGap,
    TariffPart,
    TariffVersion,
    Tax,
    TouCharge,
)

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Supply:
    """What the consumer's connection to the network contributes: the sanctioned (contract)
    load and the ampere rating of the supply (Nepal prices single-phase homes by it). Called
    ``Supply`` so as not to be read as a database connection."""

    sanctioned_load_kw: Decimal | None = None
    amperes: int | None = None


@dataclass(frozen=True, slots=True)
class BillLine:
    code: str  # the tariff component's name
    kind: ComponentKind
    description: str
    amount: Decimal
    quantity: Decimal | None = None
    unit: str | None = None  # kWh, kW, kW-month, day, month, %, ...
    rate: Decimal | None = None
    start: date | None = None  # the part of the period the line belongs to
    end: date | None = None
    effective_from: date | None = None  # the tariff version


@dataclass(frozen=True, slots=True)
class Bill:
    tariff_id: str
    currency: str
    start: date
    end: date  # exclusive
    lines: tuple[BillLine, ...]
    total: Decimal
    payment_terms: PaymentTerms | None
    import_kwh: Decimal
    export_kwh: Decimal
    estimated_intervals: int = 0
    # Net metering: export beyond import that the period did not use (for carry-forward rules).
    excess_export_kwh: Decimal = ZERO

    def amount_of(self, *codes_or_kinds: str) -> Decimal:
        return sum((line.amount for line in self.lines if _named(line, codes_or_kinds)), ZERO)


def calculate_bill(
    determinants: Determinants,
    tariff: Tariff,
    supply: Supply | None = None,
    *,
    cycle_days: int | None = None,
) -> Bill:
    """Price one period. A tariff change inside it splits it by days (``Tariff.split``)."""
    supply = supply or Supply()
    period_days = Decimal((determinants.end - determinants.start).days)
    cycle = Decimal(cycle_days) if cycle_days is not None else period_days
    if cycle <= 0 or cycle < period_days:
        raise ValueError(f"cycle of {cycle} days is shorter than the {period_days}-day period")
    parts = tariff.split(determinants.start, determinants.end)
    lines: list[BillLine] = []
    excess = ZERO
    for part in parts:
        share = (
            determinants
            if len(parts) == 1
            else determinants.scaled(Decimal(part.days) / period_days, part.start, part.end)
        )
        part_lines, part_excess = price_part(share, tariff, part, supply, cycle)
        lines += part_lines
        excess += part_excess
    return assemble(tariff, determinants, lines, parts[-1].version, excess)


def assemble(
    tariff: Tariff,
    determinants: Determinants,
    lines: Sequence[BillLine],
    last_version: TariffVersion,
    excess_export_kwh: Decimal = ZERO,
) -> Bill:
    """A bill from priced lines: the total rounded per the tariff, with a rounding line."""
    lines = list(lines)
    subtotal = sum((line.amount for line in lines), ZERO)
    rounding = tariff.rounding
    total = subtotal.quantize(rounding.total, rounding=rounding.decimal_mode)
    if total != subtotal:
        lines.append(
            BillLine(
                "rounding",
                "rounding",
                f"rounded to {rounding.total} {tariff.currency}",
                total - subtotal,
            )
        )
    return Bill(
        tariff_id=tariff.id,
        currency=tariff.currency,
        start=determinants.start,
        end=determinants.end,
        lines=tuple(lines),
        total=total,
        payment_terms=last_version.payment_terms,
        import_kwh=determinants.import_kwh,
        export_kwh=determinants.export_kwh,
        estimated_intervals=determinants.estimated_intervals,
        excess_export_kwh=excess_export_kwh,
    )


def price_part(
    determinants: Determinants,
    tariff: Tariff,
    part: TariffPart,
    supply: Supply,
    cycle_days: Decimal,
) -> tuple[list[BillLine], Decimal]:
    """Lines for one tariff version over (a share of) a period, and its unused export kWh."""
    pricer = _Pricer(determinants, tariff, part, supply, cycle_days)
    return pricer.lines(), pricer.excess_export


class _Pricer:
    def __init__(
        self,
        determinants: Determinants,
        tariff: Tariff,
        part: TariffPart,
        supply: Supply,
        cycle_days: Decimal,
    ) -> None:
        self.tariff, self.part, self.supply = tariff, part, supply
        self.version = part.version
        self.rounding: Rounding = tariff.rounding_for(part.version)
        self.cycle_days = cycle_days
        self.excess_export = ZERO
        self.det = self._net(determinants)
        self.months = self.det.days / cycle_days
        self.out: list[BillLine] = []

    # -------------------------------------------------------------- the order of a bill

    def lines(self) -> list[BillLine]:
        self._energy()
        self._export()
        for fixed in self.version.fixed:
            if self._applies(fixed.when, fixed.name):
                self._fixed(fixed)
        for demand in self.version.demand:
            if self._applies(demand.when, demand.name):
                kw = self.det.max_demand_kw.get(demand.window_minutes)
                if kw is None:
                    raise TariffGap(f"{demand.name}: no {demand.window_minutes}-minute demand")
                self._line(
                    demand.name,
                    "demand",
                    demand.description or f"demand {kw} kW ({demand.window_minutes} min)",
                    kw * self.months * demand.rate,
                    kw * self.months,
                    "kW-month",
                    demand.rate,
                )
        self._minimum()
        for tax in self.version.taxes:
            base, amount = tax_on(tax, self.out)
            self._line(
                tax.name,
                "tax",
                tax.description or f"{tax.percent}% of {', '.join(tax.applies_to)}",
                amount,
                base,
                self.tariff.currency,
                tax.percent,
                unit_is_percent=True,
            )
        return self.out

    # -------------------------------------------------------------- energy

    def _net(self, det: Determinants) -> Determinants:
        """Net metering by netting: import less export within the period, bins in proportion."""
        net = self.version.net_metering
        if net is None or net.method != "net" or det.export_kwh == 0:
            return det
        if det.export_kwh >= det.import_kwh:
            self.excess_export = det.export_kwh - det.import_kwh
            share = ZERO
        else:
            share = (det.import_kwh - det.export_kwh) / det.import_kwh
        return replace(
            det,
            import_kwh=det.import_kwh * share,
            export_kwh=ZERO,
            energy_by_bin={key: kwh * share for key, kwh in det.energy_by_bin.items()},
            energy_by_day_type={key: kwh * share for key, kwh in det.energy_by_day_type.items()},
        )

    def _energy(self) -> None:
        priced = False
        for charge in self.version.energy:
            if not self._applies(charge.when, charge.name):
                continue
            priced = True
            if isinstance(charge, TouCharge):
                self._tou(charge)
            else:
                self._slabs(charge)
        if not priced and self.version.energy:
            raise TariffGap(
                f"{self.tariff.id} {self.version.effective_from}: no energy charge applies to "
                f"this connection ({self.supply})"
            )
        if not self.version.energy and self.det.import_kwh > 0:
            raise TariffGap(f"{self.tariff.id} {self.version.effective_from}: no energy price")

    def _slabs(self, charge: SlabCharge) -> None:
        energy = self.det.energy_in_season(charge.season)
        days = self.det.days_in_season(charge.season)
        scale = days if charge.slab_basis == "day" else days / self.cycle_days
        label = charge.description or charge.name
        for low, high, kwh, rate in slab_blocks(charge, energy, scale):
            if charge.kind == "flat":
                description = label
            elif charge.kind == "non_telescopic":
                description = f"{label}: all {_kwh(kwh)} kWh at the {_range(low, high)} kWh rate"
            else:
                description = f"{label}: {_range(low, high)} kWh"
            self._energy_line(charge.name, description, kwh, rate)

    def _tou(self, charge: TouCharge) -> None:
        label = charge.description or charge.name
        for (season, window), energy in sorted(self.det.energy_by_bin.items()):
            rate = tou_rate(charge, season, window)
            where = window if season == ANY else f"{season} {window}"
            self._energy_line(charge.name, f"{label}: {where}", energy, rate)

    def _energy_line(self, code: str, description: str, kwh: Decimal, rate: Decimal) -> None:
        self._line(code, "energy", description, kwh * rate, kwh, "kWh", rate)

    def _export(self) -> None:
        net = self.version.net_metering
        if net is None:
            return
        exported = self.det.export_kwh if net.method == "credit" else self.excess_export
        if exported > 0 and net.export_rate > 0:
            self._line(
                "export-credit",
                "export",
                f"export credited ({net.method})",
                -exported * net.export_rate,
                exported,
                "kWh",
                net.export_rate,
            )

    # -------------------------------------------------------------- fixed and minimum

    def _fixed(self, fixed: FixedCharge) -> None:
        label = fixed.description or fixed.name
        months, days = self.months, self.det.days
        if fixed.basis == "per_day":
            assert fixed.amount is not None
            self._line(fixed.name, "fixed", label, days * fixed.amount, days, "day", fixed.amount)
        elif fixed.basis == "per_month":
            amount = fixed.amount
            if amount is None:
                amount = self._energy_band(fixed.energy_bands)
            self._line(fixed.name, "fixed", label, months * amount, months, "month", amount)
        elif fixed.basis == "per_kw":
            self._per_kw(fixed, label)
        else:
            amperes = self.supply.amperes
            if amperes is None:
                raise TariffGap(f"{fixed.name}: the connection's ampere rating is needed")
            rating = next((r for r in fixed.ratings if r.amperes == amperes), None)
            if rating is None:
                raise TariffGap(f"{fixed.name}: no price for a {amperes} A connection")
            amount = rating.amount
            if amount is None:
                amount = self._energy_band(rating.energy_bands)
            self._line(
                fixed.name, "fixed", f"{label} ({amperes} A)", months * amount, months, "month",
                amount,
            )  # fmt: skip

    def _per_kw(self, fixed: FixedCharge, label: str) -> None:
        load = self.supply.sanctioned_load_kw
        if load is None:
            raise TariffGap(f"{fixed.name}: the sanctioned load (kW) is needed")
        months = self.months
        if fixed.rate is not None:
            self._line(
                fixed.name, "fixed", f"{label} ({load} kW)", load * months * fixed.rate,
                load * months, "kW-month", fixed.rate,
            )  # fmt: skip
            return
        low = ZERO
        for band in fixed.load_bands:
            high = band.up_to_kw
            if fixed.band_method == "whole":
                if high is None or load <= high:
                    self._line(
                        fixed.name, "fixed", f"{label} ({load} kW, band {_range(low, high)} kW)",
                        load * months * band.rate, load * months, "kW-month", band.rate,
                    )  # fmt: skip
                    return
            else:
                kw = (load if high is None else min(load, high)) - low
                if kw <= 0:
                    return
                self._line(
                    fixed.name, "fixed", f"{label} ({_range(low, high)} kW)",
                    kw * months * band.rate, kw * months, "kW-month", band.rate,
                )  # fmt: skip
            low = high if high is not None else low

    def _energy_band(self, bands: Sequence[EnergyBand]) -> Decimal:
        """The per-month amount of the band this period's consumption falls in (limits scaled
        to the part of the cycle billed)."""
        energy = self.det.import_kwh
        for band in bands:
            if band.up_to_kwh is None or energy <= band.up_to_kwh * self.months:
                return band.amount
        raise TariffGap("energy bands do not cover the consumption")  # pragma: no cover

    def _minimum(self) -> None:
        minimum = self.version.minimum_charge
        if minimum is None:
            return
        per_day = minimum.basis == "per_day"
        count = self.det.days if per_day else self.months
        unit = "day" if per_day else "month"
        floor = minimum.amount * count
        billed = sum((line.amount for line in self.out if _named(line, minimum.applies_to)), ZERO)
        if billed < floor:
            self._line(
                "minimum-charge",
                "minimum",
                f"minimum charge {minimum.amount}/{unit} less {billed} billed",
                floor - billed,
                count,
                unit,
                minimum.amount,
            )

    # -------------------------------------------------------------- helpers

    def _applies(self, when: Condition | None, name: str) -> bool:
        supply = self.supply
        return condition_applies(
            when,
            amperes=supply.amperes,
            sanctioned_load_kw=supply.sanctioned_load_kw,
            name=name,
        )

    def _line(
        self,
        code: str,
        kind: ComponentKind,
        description: str,
        amount: Decimal,
        quantity: Decimal | None,
        unit: str | None,
        rate: Decimal | None,
        *,
        unit_is_percent: bool = False,
    ) -> None:
        rounded = amount.quantize(self.rounding.line, rounding=self.rounding.decimal_mode)
        self.out.append(
            BillLine(
                code=code,
                kind=kind,
                description=description,
                amount=rounded + 0,  # normalises -0.00 to 0.00
                quantity=quantity,
                unit="%" if unit_is_percent else unit,
                rate=rate,
                start=self.part.start,
                end=self.part.end,
                effective_from=self.version.effective_from,
            )
        )


def _blocks(slabs: Sequence[Slab], scale: Decimal) -> list[tuple[Decimal, Decimal | None, Slab]]:
    blocks, low = [], ZERO
    for slab in slabs:
        high = None if slab.up_to is None else slab.up_to * scale
        blocks.append((low, high, slab))
        if high is not None:
            low = high
    return blocks


def condition_applies(
    when: Condition | None,
    *,
    amperes: int | None,
    sanctioned_load_kw: Decimal | None,
    name: str,
) -> bool:
    """Whether a charge's condition (ampere rating, load band) holds for a connection; a
    condition on something the connection does not state is a gap, never a silent match."""
    if when is None:
        return True
    if when.amperes is not None:
        if amperes is None:
            raise TariffGap(f"{name}: the connection's ampere rating is needed")
        if amperes not in when.amperes:
            return False
    if when.sanctioned_kw_above is not None or when.sanctioned_kw_up_to is not None:
        if sanctioned_load_kw is None:
            raise TariffGap(f"{name}: the sanctioned load (kW) is needed")
        if when.sanctioned_kw_above is not None and sanctioned_load_kw <= when.sanctioned_kw_above:
            return False
        if when.sanctioned_kw_up_to is not None and sanctioned_load_kw > when.sanctioned_kw_up_to:
            return False
    return True


def tou_rate(charge: TouCharge, season: str, window: str) -> Decimal:
    """The rate of a window in a season; a rate without a season applies to every season. No
    rate is a ``TariffGap``: a missing price is an error, never a zero."""
    general = None
    for rate in charge.rates:
        if rate.window != window:
            continue
        if rate.season == season:
            return rate.rate
        if rate.season is None:
            general = rate.rate
    if general is None:
        raise TariffGap(f"{charge.name}: no rate for season {season}, window {window}")
    return general


# (low, high, kWh, rate): a block of a slab charge, its limits as scaled, the energy billed in
# it and its rate.
SlabBlock = tuple[Decimal, Decimal | None, Decimal, Decimal]


def slab_blocks(charge: SlabCharge, energy: Decimal, scale: Decimal) -> list[SlabBlock]:
    """How a flat or slab charge prices ``energy`` kWh, its block limits scaled by ``scale``
    (the part of the month billed, or the days, for per-day limits): flat, one block at the
    rate; non-telescopic, all the energy at the rate of the block it falls in; telescopic, each
    block's share at its own rate. Bills and prepaid charges are both priced by this."""
    if charge.kind == "flat":
        assert charge.rate is not None  # checked when the tariff was loaded
        return [(ZERO, None, energy, charge.rate)]
    blocks = _blocks(charge.slabs, scale)
    if charge.kind == "non_telescopic":
        for low, high, slab in blocks:
            if high is None or energy <= high:
                return [(low, high, energy, slab.rate)]
    priced: list[SlabBlock] = []
    for low, high, slab in blocks:
        quantity = (energy if high is None else min(energy, high)) - low
        if quantity <= 0:
            break
        priced.append((low, high, quantity, slab.rate))
    return priced


def tax_on(tax: Tax, lines: Iterable[BillLine]) -> tuple[Decimal, Decimal]:
    """A tax's base and amount (unrounded): its percentage of the lines whose code or kind it
    names. Taxes are applied in the tariff's order, each one's line added before the next is
    computed, so a tax may name an earlier one. Bills and prepaid charges both tax by this."""
    targets = frozenset(tax.applies_to)
    base = sum(
        (line.amount for line in lines if line.code in targets or line.kind in targets), ZERO
    )
    return base, base * tax.percent / 100


def _named(line: BillLine, names: Iterable[str]) -> bool:
    names = set(names)
    return line.code in names or line.kind in names


def _kwh(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


@lru_cache(maxsize=4096)  # slab limits repeat from bill to bill: format each pair once
def _range(low: Decimal, high: Decimal | None) -> str:
    return f"{_kwh(low)}-{_kwh(high)}" if high is not None else f"above {_kwh(low)}"
