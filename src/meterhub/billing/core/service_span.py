"""The part of a billing period a consumer is billed for: move-in and conversion to prepaid.

A postpaid bill covers the period from the cycle day to the next, unless the consumer's supply
began inside it (the first meter was installed after the period began: a move-in) or the
consumer went prepaid inside it (from then on the prepaid account pays for the energy). Then the
bill covers the days served, with monthly charges and slabs scaled by those days over the
cycle's, as for a tariff change (``calculate_bill(..., cycle_days=...)``).

Instants decide which intervals count (an interval counts when it starts before the end
instant and overlaps a meter's span); days decide the scaling, so a service that begins or ends
part-way through a local day counts that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from meterhub.billing.core.determinants import period_bounds_utc


@dataclass(frozen=True, slots=True)
class ServiceSpan:
    start: date  # first local day billed
    end: date  # exclusive
    first: datetime  # UTC instant the billed service began
    last: datetime  # UTC instant it ended (exclusive)
    whole: bool  # the whole period: the ordinary bill


def service_span(
    period_start: date,
    period_end: date,
    zone: ZoneInfo,
    *,
    supplied_from: datetime | None = None,
    prepaid_from: datetime | None = None,
) -> ServiceSpan | None:
    """The billed part of ``[period_start, period_end)``; None when none of it is postpaid
    service (prepaid all period, or the supply begins after it)."""
    first, last = period_bounds_utc(period_start, period_end, zone)
    begin = first if supplied_from is None else max(first, supplied_from)
    finish = last if prepaid_from is None else min(last, prepaid_from)
    if finish <= begin:
        return None
    return ServiceSpan(
        start=begin.astimezone(zone).date(),
        end=_day_after_last_moment(finish, zone),
        first=begin,
        last=finish,
        whole=begin == first and finish == last,
    )


def _day_after_last_moment(finish: datetime, zone: ZoneInfo) -> date:
    local = finish.astimezone(zone)
    if local.time() == time(0):
        return local.date()
    return local.date() + timedelta(days=1)
