"""The daily payment-terms job against the real databases: late fees and rebates per each bill's
tariff version, posted once per bill and step; reminders queued once per bill and step by the
consumer's channels; a receipt message for every way a payment arrives, once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from billing_support import EXAMPLES, add_tariff
from sqlalchemy import Engine, insert, select

from conftest import count_rows
from meterhub.billing import service as payments
from meterhub.billing.core.tariff import load_tariff
from meterhub.billing.gateways.base import PaymentNotice
from meterhub.billing.jobs import delivery
from meterhub.billing.jobs.dunning import apply_payment_terms
from meterhub.store.schema import consumers
from meterhub.store.schema_billing import bill_lines, bills
from meterhub.store.schema_delivery import deliveries
from meterhub.store.schema_payments import ledger_entries, receipts

pytestmark = pytest.mark.integration

ISSUED = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
DUE = date(2024, 6, 15)
NOW = datetime(2024, 6, 20, 4, 0, tzinfo=UTC)
# NEA: 5% from the day after the due date, 10% after 15 days, 25% after 25; 2% rebate on
# energy + fixed when paid in full within 7 days of issue (examples/tariffs/nea-domestic.yaml).
NEA_VERSION = load_tariff(EXAMPLES / "nea-domestic.yaml").versions[-1]


def add_consumer(engine: Engine, consumer_id: str, *, email: str | None, phone: str | None):
    with engine.begin() as conn:
        conn.execute(
            insert(consumers).values(
                id=consumer_id, name="Asha", email=email, phone=phone, created_at=ISSUED
            )
        )


def add_bill(engine: Engine, consumer_id: str, number: str, tariff_id: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(bills).values(
                number=number, consumer_id=consumer_id, meter_id=f"M-{consumer_id}",
                period_start=date(2024, 5, 1), period_end=date(2024, 6, 1), issued_at=ISSUED,
                due_date=DUE, currency="NPR", total=Decimal("1000.00"), tariff_id=tariff_id,
                tariff_version=NEA_VERSION.effective_from, import_kwh=Decimal(100),
                export_kwh=Decimal(0), intervals=2976, estimated_intervals=0,
                estimated_dates=[], document={},
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        bill_id = int(key[0])
        conn.execute(
            insert(bill_lines),
            [
                {"bill_id": bill_id, "line_no": 1, "code": "energy", "kind": "energy",
                 "description": "energy", "amount": Decimal("800.00")},
                {"bill_id": bill_id, "line_no": 2, "code": "fixed", "kind": "fixed",
                 "description": "fixed", "amount": Decimal("100.00")},
                {"bill_id": bill_id, "line_no": 3, "code": "vat", "kind": "tax",
                 "description": "tax", "amount": Decimal("100.00")},
            ],
        )  # fmt: skip
    return bill_id


def pay(engine: Engine, consumer_id: str, amount: str, at: datetime, slip: str) -> None:
    with engine.begin() as conn:
        payments.record_counter_payment(
            conn, consumer_id=consumer_id, amount=Decimal(amount), currency="NPR",
            method="cash", entered_by="cashier.ram", received_at=at, reference=slip, now=at,
        )  # fmt: skip


def run(engine: Engine, day: date) -> tuple[int, Decimal, int, Decimal, int]:
    outcome = apply_payment_terms(engine, day, NOW)
    assert outcome.errors == []
    return (
        outcome.late_fees,
        outcome.late_fee_total,
        outcome.rebates,
        outcome.rebate_total,
        outcome.reminders,
    )


def ledger_of(engine: Engine, kind: str) -> list[tuple[Decimal, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(ledger_entries.c.amount, ledger_entries.c.description)
            .where(ledger_entries.c.kind == kind)
            .order_by(ledger_entries.c.id)
        )
        return [(Decimal(row.amount), row.description) for row in rows]


def reminder_subjects(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.subject_id, deliveries.c.channel)
            .where(deliveries.c.kind == "reminder")
            .order_by(deliveries.c.id)
        )
        return [(row.subject_id, row.channel) for row in rows]


def test_late_fee_steps_are_posted_once_each_however_often_the_job_runs(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "C-1", email=None, phone=None)
    add_bill(any_engine, "C-1", "MH-2024-000001", tariff_id)

    assert run(any_engine, DUE)[:2] == (0, Decimal("0.00"))  # due today: no fee yet
    assert run(any_engine, DUE + timedelta(days=1))[:2] == (1, Decimal("50.00"))  # 5%
    assert run(any_engine, DUE + timedelta(days=1))[:2] == (0, Decimal("0.00"))
    assert run(any_engine, DUE + timedelta(days=10))[:2] == (0, Decimal("0.00"))
    assert run(any_engine, DUE + timedelta(days=16))[:2] == (1, Decimal("50.00"))  # 10%
    assert run(any_engine, DUE + timedelta(days=16))[:2] == (0, Decimal("0.00"))

    fees = ledger_of(any_engine, "late_fee")
    assert [amount for amount, _ in fees] == [Decimal("50.00"), Decimal("50.00")]
    assert "MH-2024-000001" in fees[1][1] and "10% after 15 days" in fees[1][1]


def test_a_bill_paid_on_time_bears_no_fee(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "C-2", email=None, phone=None)
    add_bill(any_engine, "C-2", "MH-2024-000002", tariff_id)
    pay(any_engine, "C-2", "1000.00", datetime(2024, 6, 14, 8, tzinfo=UTC), "S-2")

    assert run(any_engine, DUE + timedelta(days=30))[:2] == (0, Decimal("0.00"))
    assert ledger_of(any_engine, "late_fee") == []


def test_the_prompt_payment_rebate_is_credited_once(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "C-3", email=None, phone=None)
    add_bill(any_engine, "C-3", "MH-2024-000003", tariff_id)
    # 2% of energy + fixed (900.00) = 18.00: paying 982.00 within 7 days settles the bill.
    pay(any_engine, "C-3", "982.00", ISSUED + timedelta(days=5), "S-3")

    assert run(any_engine, date(2024, 6, 7))[2:4] == (1, Decimal("18.00"))
    assert run(any_engine, date(2024, 6, 8))[2:4] == (0, Decimal("0.00"))
    assert [amount for amount, _ in ledger_of(any_engine, "rebate")] == [Decimal("-18.00")]
    with any_engine.connect() as conn:
        assert payments.statement(conn, "C-3", DUE).balance == Decimal("0.00")


def test_reminders_are_queued_once_per_bill_and_step_on_the_consumers_channels(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "C-4", email="c4@example.com", phone="+9779800000004")
    add_consumer(any_engine, "C-5", email="c5@example.com", phone=None)
    add_consumer(any_engine, "C-6", email="c6@example.com", phone=None)
    open_bill = add_bill(any_engine, "C-4", "MH-2024-000004", tariff_id)
    sms_bill = add_bill(any_engine, "C-5", "MH-2024-000005", tariff_id)
    add_bill(any_engine, "C-6", "MH-2024-000006", tariff_id)
    pay(any_engine, "C-6", "1000.00", datetime(2024, 6, 2, tzinfo=UTC), "S-6")  # paid: none
    with any_engine.begin() as conn:
        delivery.set_preference(conn, "C-4", "both", NOW)
        delivery.set_preference(conn, "C-5", "sms", NOW, phone="+9779800000005")

    assert run(any_engine, DUE - timedelta(days=3))[4] == 3  # C-4 e-mail and SMS, C-5 SMS
    assert run(any_engine, DUE - timedelta(days=3))[4] == 0
    assert run(any_engine, DUE - timedelta(days=2))[4] == 0  # no step today
    assert run(any_engine, DUE)[4] == 3
    assert run(any_engine, DUE + timedelta(days=1))[4] == 3  # the 5% step starts

    assert reminder_subjects(any_engine) == [
        (f"{open_bill}:before_due:-3", "email"),
        (f"{open_bill}:before_due:-3", "sms"),
        (f"{sms_bill}:before_due:-3", "sms"),
        (f"{open_bill}:due:0", "email"),
        (f"{open_bill}:due:0", "sms"),
        (f"{sms_bill}:due:0", "sms"),
        (f"{open_bill}:late_fee:1", "email"),
        (f"{open_bill}:late_fee:1", "sms"),
        (f"{sms_bill}:late_fee:1", "sms"),
    ]
    with any_engine.connect() as conn:
        late = conn.execute(
            select(deliveries.c.subject, deliveries.c.body).where(
                deliveries.c.subject_id == f"{open_bill}:late_fee:1",
                deliveries.c.channel == "email",
            )
        ).one()
    assert late.subject == "Overdue: bill MH-2024-000004, 1000.00 NPR"
    assert "A late payment fee of 5% of the overdue amount now applies." in late.body


def test_a_missed_day_still_gets_its_reminder_late(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "C-7", email="c7@example.com", phone=None)
    bill_id = add_bill(any_engine, "C-7", "MH-2024-000007", tariff_id)

    assert run(any_engine, DUE - timedelta(days=2))[4] == 1  # the job did not run the day before
    assert reminder_subjects(any_engine) == [(f"{bill_id}:before_due:-3", "email")]


# ----------------------------------------------------------------------------- receipts


def receipt_messages(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.subject_id, deliveries.c.address)
            .where(deliveries.c.kind == "receipt")
            .order_by(deliveries.c.id)
        )
        return [(row.subject_id, row.address) for row in rows]


def receipt_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [
            str(i) for i in conn.execute(select(receipts.c.id).order_by(receipts.c.id)).scalars()
        ]


def test_a_counter_payment_queues_one_receipt_message_even_when_repeated(
    any_engine: Engine,
) -> None:
    add_consumer(any_engine, "C-8", email="c8@example.com", phone=None)
    at = datetime(2024, 6, 3, 5, tzinfo=UTC)
    pay(any_engine, "C-8", "250.00", at, "SLIP-1")
    pay(any_engine, "C-8", "250.00", at, "SLIP-1")  # the same slip entered twice

    (receipt_id,) = receipt_ids(any_engine)
    assert receipt_messages(any_engine) == [(receipt_id, "c8@example.com")]
    with any_engine.connect() as conn:
        subject = conn.execute(select(deliveries.c.subject)).scalar_one()
    assert subject == "Payment received: 250.00 NPR (counter:SLIP-1)"


def test_a_receipt_message_says_in_credit_rather_than_a_negative_balance(
    any_engine: Engine,
) -> None:
    add_consumer(any_engine, "C-11", email="c11@example.com", phone=None)
    pay(any_engine, "C-11", "250.00", datetime(2024, 6, 3, 5, tzinfo=UTC), "SLIP-11")  # no bill

    with any_engine.connect() as conn:
        body = conn.execute(select(deliveries.c.body)).scalar_one()
    assert "Your balance: 250.00 NPR in credit." in body
    assert "-250" not in body


def test_a_gateway_payment_delivered_twice_queues_one_receipt_message(
    any_engine: Engine,
) -> None:
    add_consumer(any_engine, "C-9", email="c9@example.com", phone="+9779800000009")
    notice = PaymentNotice("stripe", "pi_9", "C-9", Decimal("400.00"), "NPR", NOW, {"id": "pi_9"})
    payments.record_notice_once(any_engine, notice)
    payments.record_notice_once(any_engine, notice)

    (receipt_id,) = receipt_ids(any_engine)
    assert receipt_messages(any_engine) == [
        (receipt_id, "c9@example.com"),
        (receipt_id, "+9779800000009"),
    ]


def test_a_rolled_back_payment_queues_no_receipt_message(any_engine: Engine) -> None:
    add_consumer(any_engine, "C-10", email="c10@example.com", phone=None)
    with pytest.raises(RuntimeError), any_engine.begin() as conn:
        payments.record_counter_payment(
            conn, consumer_id="C-10", amount=Decimal("10.00"), currency="NPR", method="cash",
            entered_by="cashier.ram", received_at=NOW, now=NOW,
        )  # fmt: skip
        raise RuntimeError("the till crashed before the commit")
    assert count_rows(any_engine, "deliveries") == 0
    assert count_rows(any_engine, "payments") == 0
