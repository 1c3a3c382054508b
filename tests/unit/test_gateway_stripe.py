"""Stripe adapter: webhook signatures (t=..,v1=.. over f"{t}.{body}"), events, checkout."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meterhub.billing.gateways import PaymentGateway
from meterhub.billing.gateways.base import (
    CheckoutRequest,
    GatewayError,
    HttpRequest,
    HttpResponse,
    NoticeInvalid,
    SignatureInvalid,
)
from meterhub.billing.gateways.stripe import StripeGateway, sign, signature_header

SECRET = "whsec_test_secret"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T = int(NOW.timestamp())


def event(kind: str = "payment_intent.succeeded", **payment: object) -> bytes:
    obj: dict[str, object] = {
        "id": "pi_3Abc",
        "object": "payment_intent",
        "amount_received": 123450,
        "currency": "usd",
        "metadata": {"consumer_id": "C-1"},
        "status": "succeeded",
    }
    obj.update(payment)
    return json.dumps(
        {"id": "evt_1", "object": "event", "type": kind, "created": T, "data": {"object": obj}}
    ).encode()


def gateway() -> StripeGateway:
    return StripeGateway(webhook_secret=SECRET)


def test_is_a_payment_gateway() -> None:
    adapter: PaymentGateway = gateway()
    assert adapter.name == "stripe"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Stripe's docs: signed_payload = timestamp + "." + raw body; HMAC-SHA256 keyed with the
    # endpoint secret; hex. Built here by hand from those words.
    expected = hmac.new(SECRET.encode(), b"1717243200.{}", hashlib.sha256).hexdigest()
    assert sign(b"{}", SECRET, 1717243200) == expected


def test_a_correct_signature_is_accepted() -> None:
    body = event()
    gateway().verify(body, {"Stripe-Signature": signature_header(body, SECRET, T)}, NOW)


def test_any_of_several_v1_signatures_may_match_while_a_secret_rolls() -> None:
    body = event()
    value = f"t={T},v1={'0' * 64},v1={sign(body, SECRET, T)},v0=ignored"
    gateway().verify(body, {"stripe-signature": value}, NOW)


def test_a_tampered_body_is_refused() -> None:
    body = event()
    header = signature_header(body, SECRET, T)
    with pytest.raises(SignatureInvalid):
        gateway().verify(body.replace(b"123450", b"999999"), {"Stripe-Signature": header}, NOW)


def test_a_signature_with_another_secret_is_refused() -> None:
    body = event()
    with pytest.raises(SignatureInvalid):
        gateway().verify(body, {"Stripe-Signature": signature_header(body, "whsec_x", T)}, NOW)


def test_a_stale_timestamp_is_refused() -> None:
    body = event()
    old = T - 301  # default tolerance: 300 s
    with pytest.raises(SignatureInvalid, match="tolerance"):
        gateway().verify(body, {"Stripe-Signature": signature_header(body, SECRET, old)}, NOW)


def test_a_missing_or_malformed_header_is_refused() -> None:
    for headers in ({}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=x,v1=ab"}):
        with pytest.raises(SignatureInvalid):
            gateway().verify(event(), headers, NOW)


def test_payment_intent_succeeded_is_a_notice_in_major_units() -> None:
    notice = gateway().parse(event())
    assert notice is not None
    assert (notice.reference, notice.consumer_id, notice.currency) == ("pi_3Abc", "C-1", "USD")
    assert notice.amount == Decimal("1234.50")  # 123450 cents
    assert notice.paid_at == NOW


def test_checkout_session_completed_reports_its_payment_intent() -> None:
    body = event(
        "checkout.session.completed",
        id="cs_1",
        object="checkout.session",
        payment_intent="pi_3Abc",
        amount_total=5000,
        currency="jpy",
        payment_status="paid",
    )
    notice = gateway().parse(body)
    assert notice is not None
    assert notice.reference == "pi_3Abc"  # the same payment as payment_intent.succeeded
    assert notice.amount == Decimal(5000)  # JPY has no minor unit


def test_other_events_are_not_payments() -> None:
    assert gateway().parse(event("charge.refunded")) is None
    assert gateway().parse(event("checkout.session.completed", payment_status="unpaid")) is None


def test_a_payment_without_a_consumer_is_invalid() -> None:
    with pytest.raises(NoticeInvalid):
        gateway().parse(event(metadata={}))


def test_create_checkout_posts_a_form_to_the_checkout_sessions_endpoint() -> None:
    sent: list[HttpRequest] = []

    def stripe_api(request: HttpRequest) -> HttpResponse:
        sent.append(request)
        return HttpResponse(200, b'{"id": "cs_test_1", "url": "https://checkout.stripe.com/c/1"}')

    adapter = StripeGateway(webhook_secret=SECRET, api_key="sk_test_1", transport=stripe_api)
    checkout = adapter.create_checkout(
        CheckoutRequest("C-1", Decimal("12.34"), "USD", "Bill 2024-000123", "bill-123-try-1",
                        success_url="https://u.example/ok", cancel_url="https://u.example/no")
    )  # fmt: skip
    assert (checkout.order_id, checkout.redirect_url) == (
        "cs_test_1",
        "https://checkout.stripe.com/c/1",
    )
    request = sent[0]
    assert request.url == "https://api.stripe.com/v1/checkout/sessions"
    assert request.headers["Authorization"] == "Bearer sk_test_1"
    assert request.headers["Idempotency-Key"] == "bill-123-try-1"
    form = dict(urllib.parse.parse_qsl(request.body.decode()))
    assert form["line_items[0][price_data][unit_amount]"] == "1234"
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["payment_intent_data[metadata][consumer_id]"] == "C-1"


def test_create_checkout_reports_the_gateways_error() -> None:
    def refuse(request: HttpRequest) -> HttpResponse:
        return HttpResponse(400, b'{"error": {"message": "Invalid currency"}}')

    adapter = StripeGateway(webhook_secret=SECRET, api_key="sk_test_1", transport=refuse)
    with pytest.raises(GatewayError, match="Invalid currency"):
        adapter.create_checkout(CheckoutRequest("C-1", Decimal("1.00"), "XXX", "x", "k"))
