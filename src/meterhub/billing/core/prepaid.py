"""Prepaid pricing and supply rules: intervals priced as they happen, the warning levels a
balance crosses, when supply may be cut. Pure: no database, no clock of its own.

Pricing one interval (an approximation of the monthly bill, documented in
docs/delivery-and-prepaid.md) uses the bill's own code (``billing.core.calculate``): the tariff
version, season, time-of-use window and day type of the interval's start come from the tariff
engine (a one-interval ``compute_determinants``); each energy charge that applies to the supply
(``condition_applies``) is priced by ``tou_rate`` or by the bill's slab blocks
(``slab_blocks``): flat at its rate, telescopic slabs at the marginal rate given what the
account has already used this local month (or day, for per-day slabs), non-telescopic slabs at
the rate of the slab the month-to-date consumption has reached (the month is not re-priced when
a later interval moves it into a dearer slab); the taxes on energy follow in the tariff's order
(``tax_on``). So the charges of a month from its first day add up to the bill of the same
usage on the same tariff (tests/unit/test_prepaid_core.py checks it as a property), but for
the bill's rounding of each line, non-telescopic slabs and per-day limits (a bill applies those
to all the period's days together). Fixed, demand and minimum charges and export credit are not
drawn down here.

The consumer ledger mirrors the account in cents (``ledger_due``): the running total of the
charges rounded half-up, less what the ledger already carries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from meterhub.billing.core.calculate import (
    BillLine,
    Supply,
    condition_applies,
    slab_blocks,
    tax_on,
    tou_rate,
)
from meterhub.billing.core.determinants import compute_determinants, holiday_set
from meterhub.billing.core.tariff import (
    SlabCharge,
    Tariff,
    TariffGap,
    TariffVersion,
    TouCharge,
)
from meterhub.readings.intervals import Interval

ZERO = Decimal(0)
ONE = Decimal(1)
AMOUNT_QUANTUM = Decimal("0.000001")
CENT = Decimal("0.01")
SupplyState = Literal["connected", "disconnect_requested"]
SupplyAction = Literal["disconnect", "reconnect"]


@dataclass(frozen=True, slots=True)
class Charge:
    interval_start: datetime
    seconds: int
    kwh: Decimal
    amount: Decimal


class IntervalPricer:
    """Prices one account's new intervals in time order on its tariff.

    ``charged_kwh_by_day``: kWh already charged on each local date of the month the first new
    interval falls in (so slabs continue where the month stands)."""

    def __init__(
        self,
        tariff: Tariff,
        supply: Supply | None = None,
        charged_kwh_by_day: Mapping[date, Decimal] | None = None,
    ) -> None:
        self.tariff = tariff
        self.supply = supply or Supply()
        self.by_day: dict[date, Decimal] = defaultdict(Decimal, charged_kwh_by_day or {})

    def price(self, interval: Interval) -> Charge:
        local_day = interval.start.astimezone(self.tariff.zone).date()
        one = compute_determinants([interval], self.tariff, local_day, local_day + timedelta(1))
        ((season, window),) = one.energy_by_bin or {("", ""): ZERO}
        kwh = one.import_kwh
        version = self.tariff.version_on(local_day)
        month_before = sum(
            (k for d, k in self.by_day.items() if (d.year, d.month) == _month(local_day)), ZERO
        )
        day_before = self.by_day[local_day]
        amounts: dict[str, Decimal] = {}
        for charge in version.energy:
            if not condition_applies(
                charge.when,
                amperes=self.supply.amperes,
                sanctioned_load_kw=self.supply.sanctioned_load_kw,
                name=charge.name,
            ):
                continue
            if isinstance(charge, TouCharge):
                amounts[charge.name] = kwh * tou_rate(charge, season, window)
            elif charge.season is None or charge.season == season:
                before = day_before if charge.slab_basis == "day" else month_before
                amounts[charge.name] = _slab_amount(charge, before, kwh)
        if version.energy and not amounts and kwh > 0:
            raise TariffGap(f"{self.tariff.id}: no energy charge applies to {self.supply}")
        total = sum(amounts.values(), ZERO) + _energy_taxes(version, amounts)
        self.by_day[local_day] += kwh
        return Charge(interval.start, interval.seconds, kwh, total.quantize(AMOUNT_QUANTUM))


def _month(day: date) -> tuple[int, int]:
    return day.year, day.month


def _slab_amount(charge: SlabCharge, used_before: Decimal, kwh: Decimal) -> Decimal:
    """What ``kwh`` more costs after ``used_before`` kWh of the month (or of the day, for
    per-day limits), from the bill's own blocks (``slab_blocks``, limits unscaled: a whole
    month or day): telescopic, the blocks of the total after less those of the total before,
    so a month of charges adds up to the month's bill; non-telescopic, the kWh at the rate of
    the block the total has reached (what went before is not re-priced); flat, at its rate."""
    if charge.kind == "flat":
        return _cost(charge, kwh)
    used_after = used_before + kwh
    if charge.kind == "non_telescopic":
        ((_, _, _, rate),) = slab_blocks(charge, used_after, ONE)
        return kwh * rate
    if used_after <= used_before:
        return ZERO
    return _cost(charge, used_after) - _cost(charge, used_before)


def _cost(charge: SlabCharge, energy: Decimal) -> Decimal:
    return sum((kwh * rate for _, _, kwh, rate in slab_blocks(charge, energy, ONE)), ZERO)


def _energy_taxes(version: TariffVersion, amounts: Mapping[str, Decimal]) -> Decimal:
    """The tariff's taxes on these energy amounts (by charge name), exact, as a bill computes
    them (``tax_on``): a tax on the energy group or a charge, or on an earlier tax."""
    lines = [BillLine(name, "energy", name, amount) for name, amount in amounts.items()]
    taxed = ZERO
    for tax in version.taxes:
        _, amount = tax_on(tax, lines)
        lines.append(BillLine(tax.name, "tax", tax.name, amount))
        taxed += amount
    return taxed


def crossed_levels(before: Decimal, after: Decimal, levels: Iterable[Decimal]) -> list[Decimal]:
    """The warning levels the balance fell below in going from ``before`` to ``after``, highest
    first. A level is crossed when the balance was at or above it and is now below it: going
    back above it (a top-up) re-arms it, so each crossing is warned once."""
    return sorted((level for level in levels if after < level <= before), reverse=True)


@dataclass(frozen=True, slots=True)
class DisconnectPolicy:
    """When supply may be cut: regulators forbid disconnection at night, at weekends and on
    public holidays, when the consumer cannot top up at an office."""

    zone: ZoneInfo
    start: time = time(9)
    until: time = time(16)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holidays: frozenset[date] = frozenset()


def may_disconnect(now: datetime, policy: DisconnectPolicy) -> bool:
    local = now.astimezone(policy.zone)
    return (
        local.weekday() in policy.weekdays
        and local.date() not in policy.holidays
        and policy.start <= local.time() < policy.until
    )


def supply_action(
    balance: Decimal, state: str, now: datetime, policy: DisconnectPolicy
) -> SupplyAction | None:
    """Disconnect at zero, only inside the allowed hours (outside them it waits for the next
    run inside them); reconnect as soon as the balance is positive again, at any hour."""
    if balance <= 0 and state == "connected" and may_disconnect(now, policy):
        return "disconnect"
    if balance > 0 and state == "disconnect_requested":
        return "reconnect"
    return None


def policy_for(
    tariff: Tariff,
    now: datetime,
    *,
    start: time,
    until: time,
    weekdays: Iterable[int],
    holiday_country: str | None = None,
) -> DisconnectPolicy:
    """The disconnection window in the tariff's zone, with the tariff's holidays (and a
    country's, if the utility names one) around ``now``."""
    today = now.astimezone(tariff.zone).date()
    days = set(holiday_set(tariff, today - timedelta(1), today + timedelta(2)))
    if holiday_country:
        import holidays

        days |= set(holidays.country_holidays(holiday_country, years=today.year))
    return DisconnectPolicy(tariff.zone, start, until, frozenset(weekdays), frozenset(days))


# A top-up never disconnects: a policy without a disconnection window.
NEVER = DisconnectPolicy(ZoneInfo("UTC"), time(0), time(0), frozenset())


def ledger_due(charged: Decimal, posted: Decimal) -> Decimal:
    """What the ledger still lacks of the prepaid usage: all charges to date rounded half-up to
    the cent, less the ``prepaid`` entries already posted. Rounding the running total (never
    each run's part) keeps the ledger within half a cent of the account however many runs
    there are."""
    return charged.quantize(CENT, rounding=ROUND_HALF_UP) - posted.quantize(CENT)
