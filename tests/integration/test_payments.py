"""Payments against the database: idempotent recording, counter payments, allocation, receipts,
late fees, and the webhook endpoint through FastAPI with a computed signature."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from conftest import count_rows
from meterhub.billing.core.tariff import LateFee, PaymentTerms
from meterhub.billing.gateways.base import PaymentNotice
from meterhub.billing.gateways.stripe import StripeGateway, signature_header
from meterhub.billing.payments.terms import assess_late_fee, grant_prompt_payment_rebate
from meterhub.billing.service import (
    PaymentRefused,
    record_counter_payment,
    record_notice,
    record_notice_once,
    statement,
)
from meterhub.store.schema import consumers
from meterhub.store.schema_billing import bill_lines, bills
from meterhub.store.schema_payments import ledger_entries, payment_allocations, payments, receipts
from meterhub.web.payments import payments_router

pytestmark = pytest.mark.integration

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
SECRET = "whsec_integration"


def add_consumer(engine: Engine, consumer_id: str = "C-1") -> None:
    with engine.begin() as conn:
        conn.execute(insert(consumers).values(id=consumer_id, name="Asha Shrestha", created_at=T0))


def add_bill(
    engine: Engine, number: str, total: str, issued: datetime, due: date, consumer_id: str = "C-1"
) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(bills).values(
                number=number, consumer_id=consumer_id, meter_id="M-1",
                period_start=issued.date() - timedelta(days=30), period_end=issued.date(),
                issued_at=issued, due_date=due, currency="NPR", total=Decimal(total),
                tariff_id="nea", tariff_version=date(2021, 7, 17), import_kwh=Decimal(100),
                export_kwh=Decimal(0), intervals=2880, estimated_intervals=0,
                estimated_dates=[], document={},
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def notice(reference: str = "pi_1", amount: str = "500.00") -> PaymentNotice:
    return PaymentNotice("stripe", reference, "C-1", Decimal(amount), "NPR", T0, {"id": reference})


def test_a_notice_delivered_twice_records_one_payment(any_engine: Engine) -> None:
    add_consumer(any_engine)
    first = record_notice_once(any_engine, notice())
    again = record_notice_once(any_engine, notice())
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.payment_id == first.payment_id
    assert again.receipt_number == first.receipt_number
    assert count_rows(any_engine, "payments") == 1
    assert count_rows(any_engine, "ledger_entries", "WHERE kind = 'payment'") == 1
    assert count_rows(any_engine, "receipts") == 1


def test_partial_payment_leaves_the_rest_of_the_bill_open(any_engine: Engine) -> None:
    add_consumer(any_engine)
    bill_id = add_bill(any_engine, "B-1", "1000.00", T0, date(2024, 6, 15))
    with any_engine.begin() as conn:
        recorded = record_notice(conn, notice(amount="400.00"), now=T0 + timedelta(days=2))
        account = statement(conn, "C-1", date(2024, 6, 5))
    assert recorded.allocations == ((str(bill_id), Decimal("400.00")),)
    assert [(item.ref, item.open) for item in account.open_items] == [
        (str(bill_id), Decimal("600.00"))
    ]
    assert account.balance == Decimal("600.00")  # 1000 - 400


def test_advance_payment_is_credit_used_by_the_next_bill(any_engine: Engine) -> None:
    add_consumer(any_engine)
    with any_engine.begin() as conn:
        recorded = record_notice(conn, notice(amount="500.00"), now=T0)
    assert recorded.allocations == ()
    assert "advance (credit for later bills): 500.00 NPR" in recorded.receipt
    bill_id = add_bill(any_engine, "B-1", "350.00", T0 + timedelta(days=30), date(2024, 7, 15))
    with any_engine.begin() as conn:
        account = statement(conn, "C-1", date(2024, 7, 2))
    assert account.open_items == ()
    assert account.balance == Decimal("-150.00")  # 350 - 500: in credit
    assert [(a.debit_ref, a.amount) for a in account.allocations] == [
        (str(bill_id), Decimal("350.00"))
    ]


def test_a_payment_is_allocated_to_the_oldest_bill_first(any_engine: Engine) -> None:
    add_consumer(any_engine)
    newer = add_bill(any_engine, "B-2", "200.00", T0, date(2024, 6, 15))
    older = add_bill(any_engine, "B-1", "300.00", T0 - timedelta(days=31), date(2024, 5, 15))
    with any_engine.begin() as conn:
        recorded = record_notice(conn, notice(amount="400.00"), now=T0 + timedelta(days=1))
    assert sorted(recorded.allocations) == sorted(
        [(str(older), Decimal("300.00")), (str(newer), Decimal("100.00"))]
    )
    with any_engine.connect() as conn:
        stored = conn.execute(select(payment_allocations.c.bill_id, payment_allocations.c.amount))
        assert {(row.bill_id, Decimal(row.amount)) for row in stored} == {
            (older, Decimal("300.00")),
            (newer, Decimal("100.00")),
        }


def test_a_counter_payment_records_who_took_it_and_when(any_engine: Engine) -> None:
    add_consumer(any_engine)
    add_bill(any_engine, "B-1", "250.00", T0, date(2024, 6, 15))
    taken = T0 + timedelta(days=3, hours=2)
    with any_engine.begin() as conn:
        recorded = record_counter_payment(
            conn, consumer_id="C-1", amount=Decimal("250.00"), currency="NPR", method="cash",
            entered_by="cashier.ram", received_at=taken, reference="SLIP-0042",
        )  # fmt: skip
    with any_engine.connect() as conn:
        row = conn.execute(select(payments)).one()
    assert (row.method, row.entered_by, row.received_at) == ("cash", "cashier.ram", taken)
    assert row.gateway_reference == "counter:SLIP-0042"
    assert "Entered by:  cashier.ram" in recorded.receipt
    assert "fully paid" in recorded.receipt


def test_a_counter_payment_needs_the_staff_member(any_engine: Engine) -> None:
    add_consumer(any_engine)
    with any_engine.begin() as conn, pytest.raises(PaymentRefused):
        record_counter_payment(
            conn, consumer_id="C-1", amount=Decimal("10.00"), currency="NPR", method="cash",
            entered_by=" ", received_at=T0,
        )  # fmt: skip


def test_receipt_numbers_are_sequential(any_engine: Engine) -> None:
    add_consumer(any_engine)
    numbers = [
        record_notice_once(
            any_engine, notice(reference=f"pi_{index}", amount="10.00")
        ).receipt_number
        for index in range(3)
    ]
    record_notice_once(any_engine, notice(reference="pi_1", amount="10.00"))  # a repeat: no number
    assert numbers == [1, 2, 3]
    assert count_rows(any_engine, "receipts") == 3


def test_late_fee_is_posted_after_the_due_date_per_the_tariff(any_engine: Engine) -> None:
    add_consumer(any_engine)
    bill_id = add_bill(any_engine, "B-1", "1000.00", T0, date(2024, 6, 15))
    terms = PaymentTerms(
        late_fees=[
            LateFee(after_days=0, percent=Decimal(5)),
            LateFee(after_days=15, percent=Decimal(10)),
        ]
    )
    with any_engine.begin() as conn:
        on_due = assess_late_fee(conn, "C-1", bill_id, terms, date(2024, 6, 15))
        first = assess_late_fee(conn, "C-1", bill_id, terms, date(2024, 6, 16))
        again = assess_late_fee(conn, "C-1", bill_id, terms, date(2024, 6, 17))
        step = assess_late_fee(conn, "C-1", bill_id, terms, date(2024, 7, 1))
        account = statement(conn, "C-1", date(2024, 7, 1))
    assert (on_due, first, again) == (Decimal("0.00"), Decimal("50.00"), Decimal("0.00"))
    assert step == Decimal("50.00")  # 10% = 100.00 on day 16, less the 50.00 already posted
    assert account.balance == Decimal("1100.00")
    with any_engine.connect() as conn:
        kinds = [row.kind for row in conn.execute(select(ledger_entries.c.kind))]
    assert kinds.count("late_fee") == 2


def test_prompt_payment_rebate_is_credited_once_within_the_window(any_engine: Engine) -> None:
    add_consumer(any_engine)
    bill_id = add_bill(any_engine, "B-1", "1000.00", T0, date(2024, 6, 15))
    with any_engine.begin() as conn:
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
    terms = PaymentTerms(
        prompt_payment_rebate_percent=Decimal(2),
        prompt_payment_within_days=7,
        rebate_applies_to=["energy", "fixed"],
    )
    with any_engine.begin() as conn:
        # 2% of energy + fixed = 2% of 900.00 = 18.00; paid 1000 - 18 = 982.00 on day 5.
        record_notice(conn, notice(amount="982.00"), now=T0 + timedelta(days=5))
        rebate = grant_prompt_payment_rebate(conn, "C-1", bill_id, terms, date(2024, 6, 6))
        again = grant_prompt_payment_rebate(conn, "C-1", bill_id, terms, date(2024, 6, 7))
        account = statement(conn, "C-1", date(2024, 6, 7))
    assert (rebate, again) == (Decimal("18.00"), Decimal("0.00"))
    assert account.balance == Decimal("0.00")  # 1000 - 982 - 18


# ----------------------------------------------------------------------------- the webhook


def stripe_event(reference: str = "pi_web_1", minor: int = 70000) -> bytes:
    return json.dumps(
        {
            "id": "evt_web_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(T0.timestamp()),
            "data": {
                "object": {
                    "id": reference,
                    "object": "payment_intent",
                    "amount_received": minor,
                    "currency": "npr",
                    "metadata": {"consumer_id": "C-1"},
                }
            },
        }
    ).encode()


def client(engine: Engine) -> TestClient:
    app = FastAPI()
    app.include_router(payments_router(engine, {"stripe": StripeGateway(webhook_secret=SECRET)}))
    return TestClient(app)


def now_ts() -> int:
    return int(datetime.now(UTC).timestamp())


def test_webhook_records_a_signed_payment_once(any_engine: Engine) -> None:
    add_consumer(any_engine)
    add_bill(any_engine, "B-1", "700.00", T0, date(2024, 6, 15))
    web = client(any_engine)
    body = stripe_event()
    headers = {"Stripe-Signature": signature_header(body, SECRET, now_ts())}
    first = web.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
    repeat = web.post("/api/v1/payments/webhooks/stripe", content=body, headers=headers)
    assert (first.status_code, first.json()["status"]) == (200, "recorded")
    assert (repeat.status_code, repeat.json()["status"]) == (200, "duplicate")
    assert count_rows(any_engine, "payments") == 1
    with any_engine.connect() as conn:
        assert Decimal(conn.execute(select(payments.c.amount)).scalar_one()) == Decimal("700.00")


def test_webhook_refuses_a_tampered_body_and_stores_nothing(any_engine: Engine) -> None:
    add_consumer(any_engine)
    body = stripe_event()
    headers = {"Stripe-Signature": signature_header(body, SECRET, now_ts())}
    response = client(any_engine).post(
        "/api/v1/payments/webhooks/stripe", content=stripe_event(minor=1), headers=headers
    )
    assert response.status_code == 400
    assert count_rows(any_engine, "payments") == 0
    assert count_rows(any_engine, "ledger_entries") == 0


def test_webhook_refuses_a_stale_signature(any_engine: Engine) -> None:
    add_consumer(any_engine)
    body = stripe_event()
    headers = {"Stripe-Signature": signature_header(body, SECRET, now_ts() - 3600)}
    response = client(any_engine).post(
        "/api/v1/payments/webhooks/stripe", content=body, headers=headers
    )
    assert response.status_code == 400
    assert count_rows(any_engine, "payments") == 0


def test_webhook_for_an_unknown_gateway_is_404(any_engine: Engine) -> None:
    response = client(any_engine).post("/api/v1/payments/webhooks/paypal", content=b"{}")
    assert response.status_code == 404
    assert count_rows(any_engine, "receipts") == 0


def test_receipt_is_stored_with_its_payment(any_engine: Engine) -> None:
    add_consumer(any_engine)
    recorded = record_notice_once(any_engine, notice())
    with any_engine.connect() as conn:
        row = conn.execute(select(receipts)).one()
    assert (row.payment_id, row.number, row.document) == (
        recorded.payment_id,
        1,
        recorded.receipt,
    )
    assert recorded.receipt.startswith("RECEIPT R00000001")
