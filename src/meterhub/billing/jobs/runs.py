"""Bill runs: every active consumer's bill for one period, idempotent and resumable.

A period is named by the month it starts in (``2026-03``) and runs from the cycle day of that
month to the cycle day of the next, local dates in the utility's zone. Consumers are taken in
chunks, in id order; each chunk is one transaction that allocates its bill numbers and inserts
its bills, so a crash loses at most the chunk in flight and the next run picks up there. A
consumer who already has a bill for the period is skipped (and ``UNIQUE(consumer_id,
period_start)`` backs that up), so re-running a period never issues a second bill.

A consumer who cannot be priced (no tariff, no price for the connection, no reads) is reported
in the run's result and in ``bill_runs.errors``: never billed at zero.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from meterhub.billing.core.calculate import Bill, Supply, calculate_bill
from meterhub.billing.core.determinants import period_bounds_utc
from meterhub.billing.core.numbering import numbers as bill_numbers
from meterhub.billing.core.period_usage import PeriodUsage
from meterhub.billing.core.service_span import ServiceSpan
from meterhub.billing.core.tariff import Tariff, TariffGap
from meterhub.billing.documents.content import bill_document
from meterhub.billing.jobs.run_usage import usage_by_meter
from meterhub.billing.jobs.swap_usage import usage_across_swaps
from meterhub.billing.repository import load_tariffs
from meterhub.config import Settings
from meterhub.store import bill_numbers as counter
from meterhub.store import bill_runs, bill_usage, billable
from meterhub.store import bills as bill_store
from meterhub.store import prepaid as prepaid_store
from meterhub.store import tariffs as tariff_store
from meterhub.store.dialects import is_postgres

log = logging.getLogger(__name__)

DEFAULT_DUE_DAYS = 15
DEFAULT_UTILITY = "MH"


class PeriodNotOver(ValueError):
    """A period is billed only once its last day has passed."""


@dataclass(frozen=True, slots=True)
class RunError:
    consumer_id: str
    code: str  # no_tariff | unknown_tariff | no_reads | cannot_price | several_meters
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"consumer_id": self.consumer_id, "code": self.code, "message": self.message}


@dataclass(slots=True)
class RunResult:
    period: str
    start: date
    end: date  # exclusive
    consumers: int = 0
    issued: list[str] = field(default_factory=list)  # bill numbers issued by this run
    skipped: int = 0  # already billed before this run
    errors: list[RunError] = field(default_factory=list)
    not_served: int = 0  # no postpaid supply in the period: prepaid, or supplied only after it


# ----------------------------------------------------------------------------- periods


def period_dates(period: str, cycle_day: int = 1) -> tuple[date, date]:
    """``YYYY-MM`` -> [cycle day of that month, cycle day of the next month)."""
    if not 1 <= cycle_day <= 28:
        raise ValueError(f"cycle day {cycle_day} is not in 1..28")
    try:
        year, month = (int(part) for part in period.split("-"))
        start = date(year, month, cycle_day)
    except ValueError:
        raise ValueError(f"period {period!r} is not YYYY-MM") from None
    following = date(year + month // 12, month % 12 + 1, cycle_day)
    return start, following


def period_name(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def latest_period(today: date, cycle_day: int = 1) -> str:
    """The latest period that has ended by ``today`` (a local date in the utility's zone): on
    the cycle day itself, the period that ended that morning."""
    end_month = date(today.year, today.month, 1)
    if today.day < cycle_day:
        end_month = (end_month - timedelta(days=1)).replace(day=1)
    start_month = (end_month - timedelta(days=1)).replace(day=1)
    return period_name(start_month)


def due_periods(today: date, cycle_day: int, finished: set[str]) -> list[str]:
    """The periods to run today: the latest one that has ended, unless it has finished."""
    period = latest_period(today, cycle_day)
    return [] if period in finished else [period]


# ----------------------------------------------------------------------------- the run


def run_bills(
    engine: Engine,
    period: str,
    *,
    settings: Settings,
    today: date,
    utility: str = DEFAULT_UTILITY,
    chunk_size: int = 500,
    due_days: int = DEFAULT_DUE_DAYS,
    now: datetime | None = None,
    readers: int = 2,
) -> RunResult:
    """Issue the bills of ``period`` for every active consumer with a meter and a tariff.

    On PostgreSQL, ``readers`` threads read and price the next chunks, each on a connection
    of its own, while this one stores the current chunk: the database sums intervals on as many
    cores. Chunks are still stored one by one, in consumer order."""
    start, end = period_dates(period, settings.bill_cycle_day)
    if end > today:
        raise PeriodNotOver(f"period {period} ends on {end - timedelta(days=1)}; today is {today}")
    now = now or datetime.now(UTC)
    result = RunResult(period, start, end)
    with engine.begin() as conn:
        tariffs = load_tariffs(conn)
        categories = tariff_store.tariff_categories(conn)
        bill_runs.start_run(conn, period, start, end, now)
    context = _Context(settings, today, utility, due_days, now, tariffs, categories, start, end)
    readers = readers if is_postgres(engine) else 0
    try:
        with closing(_prepared_chunks(engine, context, period, chunk_size, readers)) as chunks:
            for after, prepared, part in chunks:
                with engine.begin() as conn:
                    issued = _store_chunk(conn, context, prepared, part)
                    bill_runs.record_progress(conn, period, issued=len(issued))
                result.consumers += part.consumers
                result.skipped += part.skipped
                result.not_served += part.not_served
                result.errors += part.errors
                result.issued += issued
                log.info(
                    "bill run %s: %d bills issued up to consumer %s", period, len(issued), after
                )
    except BaseException:
        _finish(engine, result, "failed")
        raise
    _finish(engine, result, "finished")
    return result


def _finish(engine: Engine, result: RunResult, status: str) -> None:
    """Record the run's outcome, in a transaction of its own (a failed run's too)."""
    with engine.begin() as conn:
        bill_runs.finish_run(
            conn,
            result.period,
            status=status,
            consumers=result.consumers,
            skipped=result.skipped,
            errors=[error.as_dict() for error in result.errors],
            now=datetime.now(UTC),
        )


# ----------------------------------------------------------------------------- move-out


class FinalBillRefused(ValueError):
    """A final bill that cannot be issued: unknown or closed consumer, unbillable usage."""


def period_of(day: date, cycle_day: int) -> str:
    """The period a local date falls in."""
    month = date(day.year, day.month, 1)
    if day.day < cycle_day:
        month = (month - timedelta(days=1)).replace(day=1)
    return period_name(month)


def issue_final_bill(
    engine: Engine,
    consumer_id: str,
    at: datetime,
    *,
    settings: Settings,
    utility: str = DEFAULT_UTILITY,
    due_days: int = DEFAULT_DUE_DAYS,
    now: datetime | None = None,
) -> str | None:
    """A consumer moves out at ``at``: bill the current period up to then, close the account
    and the meter's installation, all in one transaction; returns the bill number, or None for
    a consumer who was prepaid all period (nothing postpaid to bill).

    The final bill takes the period's place (one bill per consumer and period), so the
    period's run later finds the consumer billed, and closed."""
    now = now or datetime.now(UTC)
    if at.tzinfo is None:
        raise FinalBillRefused("the move-out time needs a time zone")
    if at > now:
        raise FinalBillRefused(f"the move-out at {at.isoformat()} is in the future")
    local_day = at.astimezone(settings.zone).date()
    period = period_of(local_day, settings.bill_cycle_day)
    start, end = period_dates(period, settings.bill_cycle_day)
    today = now.astimezone(settings.zone).date()
    with engine.begin() as conn:
        meters = billable.billable_meters_of(conn, [consumer_id])
        if not meters:
            raise FinalBillRefused(f"consumer {consumer_id!r} has no active meter to bill")
        if bill_store.billed_consumers(conn, [consumer_id], start):
            raise FinalBillRefused(f"consumer {consumer_id!r} is already billed for {period}")
        ctx = _Context(
            settings,
            today,
            utility,
            due_days,
            now,
            load_tariffs(conn),
            tariff_store.tariff_categories(conn),
            start,
            end,
            moved_out={consumer_id: at},
        )
        part = RunResult(period, start, end)
        prepared = _prepare_chunk(conn, ctx, meters, part)
        if part.errors:
            error = part.errors[0]
            raise FinalBillRefused(f"{error.code}: {error.message}")
        number = None  # prepaid all period: its account has paid as it went, no postpaid bill
        if prepared:
            prepared[0].bill.values["document"]["final"] = True
            (number,) = _store_chunk(conn, ctx, prepared, part)
        billable.close_consumer(conn, consumer_id, [m.meter_id for m in meters], at, now)
    log.info("final bill %s for consumer %s, moved out %s", number, consumer_id, at)
    return number


def _prepared_chunks(
    engine: Engine, ctx: _Context, period: str, chunk_size: int, readers: int
) -> Generator[tuple[str, list[_Priced], RunResult], None, None]:
    """Each chunk of consumers, priced: (last consumer id, priced bills, the chunk's counts and
    errors), in consumer order. With ``readers``, up to ``readers + 1`` chunks are read ahead
    on that many threads, so the threads stay busy while the caller stores a chunk."""

    def prepare(meters: list[billable.BillableMeter]) -> tuple[list[_Priced], RunResult]:
        part = RunResult(period, ctx.start, ctx.end)
        with engine.connect() as conn:
            return _prepare_chunk(conn, ctx, meters, part), part

    def pages() -> Iterator[list[billable.BillableMeter]]:
        after: str | None = None
        while True:
            with engine.connect() as conn:
                meters = billable.billable_meters(conn, after=after, consumers=chunk_size)
            if not meters:
                return
            after = meters[-1].consumer_id
            yield meters

    if readers < 1:
        for meters in pages():
            yield (meters[-1].consumer_id, *prepare(meters))
        return
    pool = ThreadPoolExecutor(readers, thread_name_prefix="bill-run")
    ahead: deque[tuple[str, Future[tuple[list[_Priced], RunResult]]]] = deque()
    try:
        source = pages()
        for meters in source:
            ahead.append((meters[-1].consumer_id, pool.submit(prepare, meters)))
            if len(ahead) > readers:
                after, future = ahead.popleft()
                yield (after, *future.result())
        while ahead:
            after, future = ahead.popleft()
            yield (after, *future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class _Context:
    settings: Settings
    today: date
    utility: str
    due_days: int
    now: datetime
    tariffs: dict[str, Tariff]
    categories: dict[str, str]
    start: date
    end: date
    # Consumers whose supply ends inside the period (a move-out): billed up to that instant.
    moved_out: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Priced:
    consumer_id: str
    bill: bill_store.NewBill


_Member = tuple[billable.BillableMeter, int | None]  # a consumer's meter, its ampere rating


def _prepare_chunk(
    conn: Any, ctx: _Context, meters: Sequence[billable.BillableMeter], result: RunResult
) -> list[_Priced]:
    """Price a chunk's consumers not yet billed for the period; the others are counted in
    ``result`` (skipped, not served, errors)."""
    prices: list[_Priced] = []
    for tariff_id, members in _by_tariff(conn, ctx, meters, result).items():
        prices += _price_tariff_group(conn, ctx, ctx.tariffs[tariff_id], members, result)
    return prices


def _by_tariff(
    conn: Any, ctx: _Context, meters: Sequence[billable.BillableMeter], result: RunResult
) -> dict[str, list[_Member]]:
    """The consumers to price, grouped by tariff so usage is read once per tariff and chunk;
    those already billed are skipped, those with no single meter or no known tariff refused."""
    by_consumer: dict[str, list[billable.BillableMeter]] = defaultdict(list)
    for meter in meters:
        by_consumer[meter.consumer_id].append(meter)
    result.consumers += len(by_consumer)
    billed = bill_store.billed_consumers(conn, by_consumer, ctx.start)
    result.skipped += len(billed)
    assignments = tariff_store.assignments_on(conn, list(by_consumer), ctx.start)
    by_tariff: dict[str, list[_Member]] = defaultdict(list)
    for consumer_id, consumer_meters in by_consumer.items():
        if consumer_id in billed:
            continue
        if len(consumer_meters) > 1:
            ids = ", ".join(m.meter_id for m in consumer_meters)
            result.errors.append(
                RunError(consumer_id, "several_meters", f"more than one active meter: {ids}")
            )
            continue
        meter = consumer_meters[0]
        assignment = assignments.get(consumer_id)
        tariff_id = (
            assignment.tariff_id
            if assignment
            else ctx.categories.get(meter.tariff_category or "", None)
        )
        if tariff_id is None:
            result.errors.append(
                RunError(
                    consumer_id,
                    "no_tariff",
                    f"no tariff assigned and none for category {meter.tariff_category!r}",
                )
            )
            continue
        if tariff_id not in ctx.tariffs:
            result.errors.append(RunError(consumer_id, "unknown_tariff", f"no tariff {tariff_id}"))
            continue
        by_tariff[tariff_id].append((meter, assignment.amperes if assignment else None))
    return by_tariff


def _price_tariff_group(
    conn: Any, ctx: _Context, tariff: Tariff, members: Sequence[_Member], result: RunResult
) -> list[_Priced]:
    """The bills of one tariff's consumers: usage read for all of them at once."""
    # Consumers whose meter was replaced, who moved in or who went prepaid in the period:
    # billed once, for the days and on the meters that served them.
    current = [(m.consumer_id, m.meter_id) for m, _ in members]
    ends = prepaid_store.openings(conn, [consumer for consumer, _ in current])
    for consumer_id, at in ctx.moved_out.items():
        ends[consumer_id] = min(at, ends.get(consumer_id, at))
    swapped, overlapping, unserved = usage_across_swaps(
        conn, tariff, current, ctx.start, ctx.end, prepaid_from=ends
    )
    # The whole period on one meter, summed by the database: everyone else.
    aside = swapped.keys() | overlapping.keys() | unserved
    ordinary = [m.meter_id for m, _ in members if m.consumer_id not in aside]
    usage = usage_by_meter(conn, tariff, ordinary, ctx.start, ctx.end)
    billed_meters = [m.meter_id for m, _ in members if m.consumer_id not in unserved]
    comparisons = _comparisons(conn, tariff, billed_meters, ctx)
    prices: list[_Priced] = []
    for meter, amperes in members:
        if meter.consumer_id in overlapping:
            message = overlapping[meter.consumer_id]
            result.errors.append(RunError(meter.consumer_id, "several_meters", message))
            continue
        if meter.consumer_id in unserved:
            result.not_served += 1
            continue
        swap = swapped.get(meter.consumer_id)
        meter_usage = swap.usage if swap else usage.get(meter.meter_id)
        priced = _price(ctx, tariff, meter, amperes, meter_usage, comparisons)
        if isinstance(priced, RunError):
            result.errors.append(priced)
        else:
            if swap:
                document = priced.bill.values["document"]
                document["meters"] = swap.meters
                document["service"] = _service_entry(ctx, tariff, swap.service)
            prices.append(priced)
    return prices


def _price(
    ctx: _Context,
    tariff: Tariff,
    meter: billable.BillableMeter,
    amperes: int | None,
    usage: PeriodUsage | None,
    comparisons: dict[str, dict[str, dict[str, str] | None]],
) -> _Priced | RunError:
    if usage is None:
        return RunError(meter.consumer_id, "no_reads", f"meter {meter.meter_id}: no intervals")
    load = None if meter.sanctioned_load_kw is None else Decimal(str(meter.sanctioned_load_kw))
    supply = Supply(sanctioned_load_kw=load, amperes=amperes)
    try:
        # A move-in or a conversion to prepaid bills fewer days: monthly charges and slabs
        # are scaled by those days over the cycle's.
        cycle_days = (ctx.end - ctx.start).days
        bill = calculate_bill(usage.determinants, tariff, supply, cycle_days=cycle_days)
    except (TariffGap, ValueError) as exc:
        # A missing price is an error the operator sees, never a zero on a bill.
        return RunError(meter.consumer_id, "cannot_price", str(exc))
    terms = bill.payment_terms
    due_days = terms.due_days if terms and terms.due_days is not None else ctx.due_days
    due_date = ctx.today + timedelta(days=due_days)
    document = _document(ctx, tariff, meter, supply, bill, usage, due_date)
    document["comparison"] = comparisons.get(
        meter.meter_id, {"last_month": None, "last_year": None}
    )
    det = usage.determinants
    values = {
        "consumer_id": meter.consumer_id,
        "meter_id": meter.meter_id,
        "period_start": ctx.start,
        "period_end": ctx.end,
        "issued_at": ctx.now,
        "due_date": due_date,
        "currency": bill.currency,
        "total": bill.total,
        "status": "issued",
        "tariff_id": tariff.id,
        # The version of the last day billed: a final bill may end before a later version.
        "tariff_version": tariff.version_on(det.end - timedelta(days=1)).effective_from,
        "import_kwh": det.import_kwh,
        "export_kwh": det.export_kwh,
        "intervals": det.intervals,
        "estimated_intervals": det.estimated_intervals,
        "estimated_dates": [day.isoformat() for day in usage.estimated_dates],
        "document": document,
    }
    lines = [
        {
            "code": line.code,
            "kind": line.kind,
            "description": line.description,
            "quantity": line.quantity,
            "unit": line.unit,
            "rate": line.rate,
            "amount": line.amount,
            "part_start": line.start,
            "part_end": line.end,
            "tariff_version": line.effective_from,
        }
        for line in bill.lines
    ]
    return _Priced(meter.consumer_id, bill_store.NewBill(values, lines))


def _service_entry(ctx: _Context, tariff: Tariff, service: ServiceSpan) -> dict[str, Any]:
    """The days this bill covers, and why they are fewer than the period's."""
    first, last = period_bounds_utc(ctx.start, ctx.end, tariff.zone)
    notes = []
    if service.first > first:
        notes.append(f"supply from {_local(service.first, tariff)}")
    if service.last < last:
        why = "moved out" if service.last in ctx.moved_out.values() else "prepaid from"
        notes.append(f"{why} {_local(service.last, tariff)}")
    return {
        "from": service.start.isoformat(),
        "to": (service.end - timedelta(days=1)).isoformat(),
        "days": (service.end - service.start).days,
        "cycle_days": (ctx.end - ctx.start).days,
        "notes": notes,
    }


def _local(at: datetime, tariff: Tariff) -> str:
    return at.astimezone(tariff.zone).strftime("%Y-%m-%d %H:%M")


def _document(
    ctx: _Context,
    tariff: Tariff,
    meter: billable.BillableMeter,
    supply: Supply,
    bill: Bill,
    usage: PeriodUsage,
    due_date: date,
) -> dict[str, Any]:
    """What the bill document shows, frozen at issue (a re-rendered bill never changes)."""
    document = bill_document(bill, usage.determinants)
    document.update(
        {
            "tariff_name": tariff.name,
            "consumer": {
                "id": meter.consumer_id,
                "name": meter.consumer_name,
                "address": meter.address,
                "email": meter.email,
                "phone": meter.phone,
            },
            "meter": {
                "id": meter.meter_id,
                "sanctioned_load_kw": None
                if supply.sanctioned_load_kw is None
                else f"{supply.sanctioned_load_kw:f}",
                "amperes": supply.amperes,
            },
            "timezone": ctx.settings.timezone,
            "daily_kwh": [
                [day.isoformat(), f"{kwh.quantize(Decimal('0.001')):f}"]
                for day, kwh in usage.daily_kwh.items()
            ],
            "intervals": usage.determinants.intervals,
            "estimated_dates": [day.isoformat() for day in usage.estimated_dates],
            "due_date": due_date.isoformat(),
            "issued_on": ctx.today.isoformat(),
        }
    )
    return document


def _comparisons(
    conn: Any, tariff: Tariff, meter_ids: list[str], ctx: _Context
) -> dict[str, dict[str, dict[str, str] | None]]:
    """kWh of the previous period and of the same period a year earlier, from stored
    intervals; None ("not available") when the meter has no intervals then."""
    cycle_day = ctx.start.day
    previous_start = (ctx.start.replace(day=1) - timedelta(days=1)).replace(day=cycle_day)
    spans = {
        "last_month": (previous_start, ctx.start),
        "last_year": (
            ctx.start.replace(year=ctx.start.year - 1),
            ctx.end.replace(year=ctx.end.year - 1),
        ),
    }
    found: dict[str, dict[str, dict[str, str] | None]] = {m: {} for m in meter_ids}
    for name, (first_day, end_day) in spans.items():
        first, last = period_bounds_utc(first_day, end_day, tariff.zone)
        energy = bill_usage.energy_between(conn, meter_ids, first, last)
        for meter_id in meter_ids:
            kwh, count = energy.get(meter_id, (0.0, 0))
            found[meter_id][name] = (
                None
                if count == 0
                else {
                    "from": first_day.isoformat(),
                    "to": (end_day - timedelta(days=1)).isoformat(),
                    "kwh": f"{kwh:.3f}",
                    "intervals": str(count),
                }
            )
    return found


def _store_chunk(conn: Any, ctx: _Context, prepared: list[_Priced], result: RunResult) -> list[str]:
    if not prepared:
        return []
    # The counter's row lock first: a concurrent run of the same period waits here, then sees
    # the bills the other one committed and skips them.
    year = ctx.today.year
    counter.lock(conn, ctx.utility, year)
    billed = bill_store.billed_consumers(conn, [p.consumer_id for p in prepared], ctx.start)
    fresh = [p for p in prepared if p.consumer_id not in billed]
    result.skipped += len(prepared) - len(fresh)
    if not fresh:
        return []
    first = counter.take(conn, ctx.utility, year, len(fresh))
    numbers = bill_numbers(ctx.utility, year, first, len(fresh))
    for number, priced in zip(numbers, fresh, strict=True):
        priced.bill.values["document"]["number"] = number
    bill_store.insert_bills(conn, list(zip(numbers, [p.bill for p in fresh], strict=True)))
    return numbers
