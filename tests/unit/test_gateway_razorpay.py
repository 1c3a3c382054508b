"""Razorpay adapter: X-Razorpay-Signature over the raw body, payment signature, orders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from meterhub.billing.gateways import PaymentGateway
from meterhub.billing.gateways.base import (
    CheckoutRequest,
    HttpRequest,
    HttpResponse,
    SignatureInvalid,
)
from meterhub.billing.gateways.razorpay import RazorpayGateway

SECRET = "rzp_webhook_secret"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def captured(notes: object = None, kind: str = "payment.captured") -> bytes:
    return json.dumps(
        {
            "entity": "event",
            "account_id": "acc_1",
            "event": kind,
            "contains": ["payment"],
            "payload": {
                "payment": {
                    "entity": {
                        "id": "pay_29QQoUBi66xm2f",
                        "entity": "payment",
                        "amount": 50000,
                        "currency": "INR",
                        "status": "captured",
                        "order_id": "order_9A33XWu170gUtm",
                        "notes": {"consumer_id": "C-9"} if notes is None else notes,
                        "created_at": int(NOW.timestamp()),
                    }
                }
            },
            "created_at": int(NOW.timestamp()),
        }
    ).encode()


def signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def gateway() -> RazorpayGateway:
    return RazorpayGateway(webhook_secret=SECRET, key_id="rzp_test_key", key_secret="key_secret")


def test_is_a_payment_gateway() -> None:
    adapter: PaymentGateway = gateway()
    assert adapter.name == "razorpay"


def test_webhook_signed_over_the_raw_body_is_accepted() -> None:
    body = captured()
    gateway().verify(body, {"X-Razorpay-Signature": signature(body)}, NOW)


def test_tampered_body_or_wrong_secret_is_refused() -> None:
    body = captured()
    with pytest.raises(SignatureInvalid):
        gateway().verify(
            body.replace(b"50000", b"90000"), {"X-Razorpay-Signature": signature(body)}, NOW
        )
    with pytest.raises(SignatureInvalid):
        gateway().verify(body, {"X-Razorpay-Signature": signature(body, "other")}, NOW)
    with pytest.raises(SignatureInvalid):
        gateway().verify(body, {}, NOW)


def test_payment_captured_is_a_notice_in_rupees() -> None:
    notice = gateway().parse(captured())
    assert notice is not None
    assert (notice.reference, notice.consumer_id) == ("pay_29QQoUBi66xm2f", "C-9")
    assert notice.amount == Decimal("500.00")  # 50000 paise
    assert notice.currency == "INR"


def test_empty_notes_arrive_as_a_list_and_mean_no_consumer() -> None:
    from meterhub.billing.gateways.base import NoticeInvalid

    with pytest.raises(NoticeInvalid):
        gateway().parse(captured(notes=[]))


def test_other_events_are_not_payments() -> None:
    assert gateway().parse(captured(kind="payment.failed")) is None


def test_payment_signature_is_over_order_id_pipe_payment_id_with_the_key_secret() -> None:
    good = hmac.new(b"key_secret", b"order_9A33XWu170gUtm|pay_29QQoUBi66xm2f", hashlib.sha256)
    gateway().verify_payment("order_9A33XWu170gUtm", "pay_29QQoUBi66xm2f", good.hexdigest())
    with pytest.raises(SignatureInvalid):
        gateway().verify_payment("order_other", "pay_29QQoUBi66xm2f", good.hexdigest())


def test_create_order_posts_json_with_basic_auth() -> None:
    sent: list[HttpRequest] = []

    def razorpay_api(request: HttpRequest) -> HttpResponse:
        sent.append(request)
        return HttpResponse(200, b'{"id": "order_EKwxwAgItmmXdp", "status": "created"}')

    adapter = RazorpayGateway(
        webhook_secret=SECRET,
        key_id="rzp_test_key",
        key_secret="key_secret",
        transport=razorpay_api,
    )
    checkout = adapter.create_checkout(
        CheckoutRequest("C-9", Decimal("500.00"), "INR", "Bill 42", "bill-42")
    )
    assert checkout.order_id == "order_EKwxwAgItmmXdp"
    request = sent[0]
    assert request.url == "https://api.razorpay.com/v1/orders"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(b"rzp_test_key:key_secret").decode()
    )
    assert json.loads(request.body) == {
        "amount": 50000,
        "currency": "INR",
        "receipt": "bill-42",
        "notes": {"consumer_id": "C-9", "description": "Bill 42"},
    }
