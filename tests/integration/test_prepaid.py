"""Prepaid accounts on the real databases: drawdown from stored intervals, warnings, the
disconnection request within allowed hours, reconnection on top-up."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select

from meterhub.billing import service as payments
from meterhub.billing.core.prepaid import DisconnectPolicy
from meterhub.billing.core.tariff import Tariff, parse_tariff
from meterhub.billing.gateways.base import PaymentNotice
from meterhub.billing.jobs import delivery, prepaid
from meterhub.store.schema import consumers, events, intervals, meters
from meterhub.store.schema_delivery import deliveries, prepaid_charges, prepaid_topups
from meterhub.store.schema_payments import ledger_entries
from meterhub.store.schema_payments import payments as payments_table
from meterhub.store.tables import metadata

pytestmark = pytest.mark.integration

KATHMANDU = ZoneInfo("Asia/Kathmandu")
OPENED = datetime(2026, 3, 1, tzinfo=KATHMANDU)
DOCUMENT: dict[str, Any] = {
    "schema": "meterhub.tariff/v1",
    "id": "flat10",
    "name": "Flat 10 NPR/kWh",
    "currency": "NPR",
    "timezone": "Asia/Kathmandu",
    "source": {"utility": "Test utility", "document": "test schedule", "date": "2026-01-01"},
    "versions": [
        {"effective_from": "2026-01-01", "energy": [{"name": "e", "kind": "flat", "rate": "10"}]}
    ],
}
TARIFF: Tariff = parse_tariff(DOCUMENT)
LEVELS = [Decimal(200), Decimal(50)]
POLICY = DisconnectPolicy(KATHMANDU, time(9), time(16), frozenset({0, 1, 2, 3, 4}))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KATHMANDU)


def add_account(engine: Engine, consumer_id: str) -> str:
    meter_id = f"M-{consumer_id}"
    with engine.begin() as conn:
        tariffs = metadata.tables["tariffs"]
        if conn.execute(select(tariffs.c.id).where(tariffs.c.id == "flat10")).first() is None:
            conn.execute(
                insert(tariffs).values(
                    id="flat10", name="Flat", currency="NPR", document=DOCUMENT, loaded_at=OPENED
                )
            )
        conn.execute(
            insert(consumers).values(
                id=consumer_id, name="Ram", email=f"{consumer_id}@example.com", created_at=OPENED
            )
        )
        conn.execute(insert(meters).values(id=meter_id, consumer_id=consumer_id, created_at=OPENED))
        prepaid.open_account(conn, consumer_id, meter_id, "flat10", OPENED)
    return meter_id


def add_intervals(engine: Engine, meter_id: str, first: datetime, count: int, kwh: float) -> None:
    rows = [
        {
            "meter_id": meter_id,
            "start": first + timedelta(minutes=15 * i),
            "seconds": 900,
            "import_kwh": kwh,
            "export_kwh": 0.0,
            "quality": "actual",
            "computed_at": first,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(intervals), rows)


def run(engine: Engine, consumer_id: str, now: datetime) -> prepaid.AccrualOutcome:
    with engine.begin() as conn:
        outcome = prepaid.accrue(conn, consumer_id, TARIFF, now, levels=LEVELS, policy=POLICY)
        for warning in outcome.warnings:
            delivery.enqueue_warning(
                conn, warning.event_id, consumer_id, level=warning.level,
                balance=warning.balance, currency="NPR", now=now,
            )  # fmt: skip
        return outcome


def top_up(
    engine: Engine, consumer_id: str, amount: str, reference: str, now: datetime
) -> tuple[Decimal, str | None]:
    """A counter top-up (a payment): the balance after it and the supply action it asked for."""
    with engine.begin() as conn:
        recorded = payments.record_topup(
            conn, consumer_id=consumer_id, amount=Decimal(amount), method="cash",
            entered_by="cashier.sita", received_at=now, reference=reference, now=now,
        )  # fmt: skip
        return prepaid.balance(conn, consumer_id), recorded.supply_action


def event_types(engine: Engine, meter_id: str) -> list[str]:
    with engine.connect() as conn:
        query = select(events.c.type).where(events.c.meter_id == meter_id).order_by(events.c.ts)
        return list(conn.execute(query).scalars())


def test_a_day_of_intervals_draws_the_balance_down_once(any_engine: Engine) -> None:
    meter_id = add_account(any_engine, "P-1")
    top_up(any_engine, "P-1", "500", "ref-1", OPENED)
    add_intervals(any_engine, meter_id, local(date(2026, 3, 2), 0), 96, 0.25)

    outcome = run(any_engine, "P-1", local(date(2026, 3, 3), 1))
    # 96 * 0.25 kWh = 24 kWh at 10 NPR = 240; 500 - 240 = 260
    assert (outcome.charged, outcome.amount, outcome.balance) == (96, Decimal(240), Decimal(260))

    again = run(any_engine, "P-1", local(date(2026, 3, 3), 2))
    assert (again.charged, again.balance) == (0, Decimal(260))
    with any_engine.connect() as conn:
        assert prepaid.balance(conn, "P-1") == Decimal(260)
        account = prepaid.get_account(conn, "P-1")
    assert account.accrued_until == local(date(2026, 3, 3), 0)


def test_each_warning_level_is_warned_once_per_crossing(any_engine: Engine) -> None:
    meter_id = add_account(any_engine, "P-2")
    top_up(any_engine, "P-2", "300", "ref-2a", OPENED)
    day = date(2026, 3, 2)
    add_intervals(any_engine, meter_id, local(day, 0), 48, 0.25)  # 12 kWh = 120 -> 180
    assert [w.level for w in run(any_engine, "P-2", local(day, 12)).warnings] == [Decimal(200)]
    add_intervals(any_engine, meter_id, local(day, 12), 8, 0.25)  # 2 kWh = 20 -> 160
    assert run(any_engine, "P-2", local(day, 14)).warnings == ()
    add_intervals(any_engine, meter_id, local(day, 14), 48, 0.25)  # 12 kWh = 120 -> 40
    assert [w.level for w in run(any_engine, "P-2", local(day, 23)).warnings] == [Decimal(50)]

    top_up(any_engine, "P-2", "300", "ref-2b", local(day, 23))  # 340: both levels re-armed
    add_intervals(any_engine, meter_id, local(date(2026, 3, 3), 2), 60, 0.25)  # 150 -> 190
    outcome = run(any_engine, "P-2", local(date(2026, 3, 3), 18))
    assert [w.level for w in outcome.warnings] == [Decimal(200)]

    assert event_types(any_engine, meter_id).count("low_balance") == 3
    with any_engine.connect() as conn:
        warned = conn.execute(
            select(func.count()).where(
                deliveries.c.kind == "warning", deliveries.c.consumer_id == "P-2"
            )
        ).scalar_one()
    assert warned == 3  # one e-mail per warning (the consumer has an e-mail address)


def test_disconnection_at_zero_waits_for_the_allowed_hours(any_engine: Engine) -> None:
    meter_id = add_account(any_engine, "P-3")
    top_up(any_engine, "P-3", "100", "ref-3", OPENED)
    monday = date(2026, 3, 2)
    add_intervals(any_engine, meter_id, local(monday, 0) - timedelta(hours=2), 8, 1.25)
    # 8 * 1.25 kWh = 10 kWh at 10 = 100: the balance reaches zero at 00:00

    at_two = run(any_engine, "P-3", local(monday, 2))
    assert (at_two.balance, at_two.action) == (Decimal(0), None)  # 02:00: not at night
    assert "disconnect_requested" not in event_types(any_engine, meter_id)

    at_nine = run(any_engine, "P-3", local(monday, 9, 30))
    assert at_nine.action == "disconnect"
    assert run(any_engine, "P-3", local(monday, 10)).action is None  # asked once
    assert event_types(any_engine, meter_id).count("disconnect_requested") == 1
    with any_engine.connect() as conn:
        relay = conn.execute(select(meters.c.relay_state).where(meters.c.id == meter_id))
        assert relay.scalar_one() == "connected"  # the control capability will act, not us


def test_a_top_up_above_zero_requests_reconnection_once(any_engine: Engine) -> None:
    meter_id = add_account(any_engine, "P-4")
    monday = date(2026, 3, 2)
    add_intervals(any_engine, meter_id, local(monday, 8), 4, 0.5)  # 2 kWh = 20 -> -20
    assert run(any_engine, "P-4", local(monday, 10)).action == "disconnect"

    balance, action = top_up(any_engine, "P-4", "10", "ref-4a", local(monday, 22))
    assert (balance, action) == (Decimal(-10), None)  # still not above zero
    balance, action = top_up(any_engine, "P-4", "50", "ref-4b", local(monday, 23))
    assert (balance, action) == (Decimal(40), "reconnect")  # at any hour
    balance, action = top_up(any_engine, "P-4", "50", "ref-4b", local(monday, 23))
    assert (balance, action) == (Decimal(40), None)  # the same reference is credited once
    assert event_types(any_engine, meter_id)[-2:] == ["disconnect_requested", "reconnect_requested"]


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(1, 500), st.integers(0, 5)),
        st.tuples(st.just("intervals"), st.integers(0, 47), st.integers(1, 12)),
        st.tuples(st.just("run"), st.just(0), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_balance_is_top_ups_less_charges_and_no_interval_is_charged_twice(
    sqlite_engine: Engine, operations: list[tuple[str, int, int]]
) -> None:
    consumer_id = f"H-{uuid.uuid4().hex[:8]}"
    meter_id = add_account(sqlite_engine, consumer_id)
    day = local(date(2026, 3, 2), 0)
    topups: dict[str, int] = {}
    present: set[int] = set()
    for kind, first, count in operations:
        if kind == "topup":
            reference = f"{consumer_id}-{count}"  # repeated references must credit once
            topups.setdefault(reference, first)
            top_up(sqlite_engine, consumer_id, str(first), reference, day)
        elif kind == "intervals":
            # Overlapping batches: only the new quarter hours are stored (as the deriver does).
            new = [i for i in range(first, first + count) if i not in present]
            for i in new:
                add_intervals(sqlite_engine, meter_id, day + timedelta(minutes=15 * i), 1, 0.5)
            present |= set(new)
        else:
            run(sqlite_engine, consumer_id, day + timedelta(days=1))
    run(sqlite_engine, consumer_id, day + timedelta(days=1))
    run(sqlite_engine, consumer_id, day + timedelta(days=1))
    with sqlite_engine.connect() as conn:
        charged = conn.execute(
            select(func.count()).where(prepaid_charges.c.consumer_id == consumer_id)
        ).scalar_one()
        balance = prepaid.balance(conn, consumer_id)
    assert charged == len(present)
    # Each quarter hour: 0.5 kWh at 10 = 5 NPR.
    assert balance == sum(topups.values()) - 5 * len(present)


# ----------------------------------------------------------------------------- the ledger


def ledger_balance(engine: Engine, consumer_id: str, day: date) -> Decimal:
    with engine.begin() as conn:
        return payments.statement(conn, consumer_id, day).balance


def test_a_top_up_is_one_payment_on_the_ledger_with_its_reference_and_receipt(
    any_engine: Engine,
) -> None:
    add_account(any_engine, "P-5")
    top_up(any_engine, "P-5", "500", "SLIP-5", OPENED)
    top_up(any_engine, "P-5", "500", "SLIP-5", OPENED)  # the same slip again: credited once

    with any_engine.connect() as conn:
        (payment,) = conn.execute(select(payments_table)).all()
        (topup,) = conn.execute(select(prepaid_topups)).all()
        (entry,) = conn.execute(select(ledger_entries)).all()
        kinds = list(conn.execute(select(deliveries.c.kind)).scalars())
    assert (payment.gateway_reference, Decimal(payment.amount)) == ("counter:SLIP-5", Decimal(500))
    assert (topup.reference, topup.payment_id) == ("counter:SLIP-5", payment.id)
    assert (entry.kind, Decimal(entry.amount), entry.ref) == (
        "payment",
        Decimal(-500),
        str(payment.id),
    )
    assert kinds == ["receipt"]


def test_the_ledger_mirrors_prepaid_usage_so_its_balance_is_minus_the_prepaid_balance(
    any_engine: Engine,
) -> None:
    meter_id = add_account(any_engine, "P-6")
    top_up(any_engine, "P-6", "100", "ref-6", OPENED)
    day = date(2026, 3, 2)
    add_intervals(any_engine, meter_id, local(day, 0), 7, 0.0123)  # 7 * 0.123 = 0.861
    run(any_engine, "P-6", local(day, 3))
    add_intervals(any_engine, meter_id, local(day, 2), 3, 0.0123)  # + 0.369 = 1.230
    run(any_engine, "P-6", local(day, 4))
    run(any_engine, "P-6", local(day, 5))  # nothing new: nothing posted

    with any_engine.connect() as conn:
        prepaid_debits = [
            Decimal(a)
            for a in conn.execute(
                select(ledger_entries.c.amount)
                .where(ledger_entries.c.kind == "prepaid")
                .order_by(ledger_entries.c.id)
            ).scalars()
        ]
        exact = prepaid.balance(conn, "P-6")
    assert prepaid_debits == [Decimal("0.86"), Decimal("0.37")]  # 0.86, then 1.23 - 0.86
    assert exact == Decimal("98.77")
    assert ledger_balance(any_engine, "P-6", day) == -exact


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    operations=st.lists(
        st.one_of(
            st.tuples(st.just("topup"), st.integers(1, 30000)),  # cents
            st.tuples(st.just("use"), st.integers(1, 9999)),  # tenths of a watt-hour
        ),
        max_size=10,
    )
)
def test_ledger_and_prepaid_balance_agree_to_the_cent_after_any_history(
    sqlite_engine: Engine, operations: list[tuple[str, int]]
) -> None:
    consumer_id = f"L-{uuid.uuid4().hex[:8]}"
    meter_id = add_account(sqlite_engine, consumer_id)
    day = local(date(2026, 3, 2), 0)
    slot = 0
    for index, (kind, value) in enumerate(operations):
        if kind == "topup":
            top_up(
                sqlite_engine, consumer_id, str(Decimal(value) / 100), f"{consumer_id}-{index}", day
            )
        else:
            add_intervals(
                sqlite_engine, meter_id, day + timedelta(minutes=15 * slot), 1, value / 10000
            )
            slot += 1
            run(sqlite_engine, consumer_id, day + timedelta(days=1))
    with sqlite_engine.connect() as conn:
        exact = prepaid.balance(conn, consumer_id)
        charged = conn.execute(
            select(func.coalesce(func.sum(prepaid_charges.c.amount), 0)).where(
                prepaid_charges.c.consumer_id == consumer_id
            )
        ).scalar_one()
    paid = sum((Decimal(v) / 100 for k, v in operations if k == "topup"), Decimal(0))
    ledger = ledger_balance(sqlite_engine, consumer_id, date(2026, 3, 5))
    # The ledger holds the usage rounded once, on the running total: within half a cent.
    assert ledger == Decimal(str(charged)).quantize(Decimal("0.01"), ROUND_HALF_UP) - paid
    assert abs(ledger + exact) <= Decimal("0.005")


def test_a_gateway_payment_of_a_prepaid_consumer_tops_up_and_reconnects(
    any_engine: Engine,
) -> None:
    meter_id = add_account(any_engine, "P-7")
    monday = date(2026, 3, 2)
    add_intervals(any_engine, meter_id, local(monday, 8), 4, 0.5)  # 2 kWh = 20 -> -20
    assert run(any_engine, "P-7", local(monday, 10)).action == "disconnect"
    notice = PaymentNotice(
        "razorpay", "pay_7", "P-7", Decimal("50.00"), "NPR", local(monday, 21), {}
    )

    recorded = payments.record_notice_once(any_engine, notice)
    again = payments.record_notice_once(any_engine, notice)

    assert (recorded.prepaid_balance, recorded.supply_action) == (Decimal(30), "reconnect")
    assert again.duplicate and again.supply_action is None
    assert event_types(any_engine, meter_id)[-1] == "reconnect_requested"
    with any_engine.connect() as conn:
        assert prepaid.balance(conn, "P-7") == Decimal(30)
