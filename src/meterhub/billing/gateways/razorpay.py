"""Razorpay: Orders out, signed webhooks and checkout callbacks in.

From Razorpay's public documentation (razorpay.com/docs, "Validate and Test Webhooks",
"Orders API", "Payment Gateway integration: verify payment signature"):

- A webhook carries ``X-Razorpay-Signature``: hex HMAC-SHA256 of the raw request body keyed
  with the webhook secret set on the dashboard. There is no timestamp in the scheme, so a
  replay can only be stopped by recording each payment id once (which is what we do anyway).
- ``payment.captured`` and ``order.paid`` report a captured payment in
  ``payload.payment.entity``: ``id`` (``pay_...``, the reference recorded once), ``amount``
  in the smallest unit (paise), ``currency``, ``order_id``, ``notes``. ``order.paid`` also
  carries ``payload.order.entity`` with the order's ``notes``.
- ``POST https://api.razorpay.com/v1/orders`` with HTTP Basic auth ``key_id:key_secret`` and a
  JSON body ``{amount, currency, receipt, notes}`` opens an order (``order_...``); Checkout
  then takes the consumer's payment against it. ``receipt`` is at most 40 characters.
- After Checkout, the browser returns ``razorpay_payment_id``, ``razorpay_order_id`` and
  ``razorpay_signature`` = hex HMAC-SHA256 of ``f"{order_id}|{payment_id}"`` keyed with the
  API key secret (``verify_payment``), proof that this payment belongs to our order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from meterhub.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    GatewayError,
    HttpRequest,
    NoticeInvalid,
    PaymentNotice,
    SignatureInvalid,
    Transport,
    from_minor,
    header,
    to_minor,
    urllib_transport,
)

API = "https://api.razorpay.com/v1"
SIGNATURE_HEADER = "X-Razorpay-Signature"
PAID_EVENTS = frozenset({"payment.captured", "order.paid"})


def hmac_hex(message: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class RazorpayGateway:
    name = "razorpay"

    def __init__(
        self,
        *,
        webhook_secret: str,
        key_id: str | None = None,
        key_secret: str | None = None,
        transport: Transport = urllib_transport,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.key_id = key_id
        self.key_secret = key_secret
        self.transport = transport

    # ---------------------------------------------------------------- webhooks in

    def verify(self, body: bytes, headers: Mapping[str, str], now: datetime) -> None:
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid("no X-Razorpay-Signature header")
        if not hmac.compare_digest(hmac_hex(body, self.webhook_secret), signature):
            raise SignatureInvalid("Razorpay signature does not match the body")

    def verify_payment(self, order_id: str, payment_id: str, signature: str) -> None:
        """The checkout callback: the payment was made against our order."""
        if not self.key_secret:
            raise SignatureInvalid("Razorpay: no key secret configured")
        expected = hmac_hex(f"{order_id}|{payment_id}".encode(), self.key_secret)
        if not hmac.compare_digest(expected, signature):
            raise SignatureInvalid("Razorpay payment signature does not match")

    def parse(self, body: bytes) -> PaymentNotice | None:
        try:
            event = json.loads(body)
            kind = event["event"]
            payload = event["payload"]
        except (ValueError, KeyError, TypeError):
            raise NoticeInvalid("not a Razorpay event") from None
        if kind not in PAID_EVENTS:
            return None
        payment = (payload.get("payment") or {}).get("entity") or {}
        order = (payload.get("order") or {}).get("entity") or {}
        reference, minor = payment.get("id"), payment.get("amount")
        currency = str(payment.get("currency") or "").upper()
        if not isinstance(reference, str) or not isinstance(minor, int) or not currency:
            raise NoticeInvalid(f"{kind}: no payment id, amount or currency")
        consumer_id = _notes(payment).get("consumer_id") or _notes(order).get("consumer_id")
        if not consumer_id:
            raise NoticeInvalid(f"{kind} {reference}: no consumer_id in notes")
        paid_at = payment.get("created_at") or event.get("created_at") or 0
        return PaymentNotice(
            gateway=self.name,
            reference=reference,
            consumer_id=str(consumer_id),
            amount=from_minor(minor, currency),
            currency=currency,
            paid_at=datetime.fromtimestamp(int(paid_at), UTC),
            raw=event,
        )

    # ---------------------------------------------------------------- orders out

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if not self.key_id or not self.key_secret:
            raise GatewayError("Razorpay: no API key id and secret configured")
        credentials = base64.b64encode(f"{self.key_id}:{self.key_secret}".encode()).decode()
        body = {
            "amount": to_minor(request.amount, request.currency),
            "currency": request.currency.upper(),
            "receipt": request.idempotency_key[:40],
            "notes": {"consumer_id": request.consumer_id, "description": request.description},
        }
        response = self.transport(
            HttpRequest(
                "POST",
                f"{API}/orders",
                {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
                json.dumps(body).encode(),
            )
        )
        document = _json(response.body)
        if response.status != 200 or "id" not in document:
            message = (document.get("error") or {}).get("description", response.status)
            raise GatewayError(f"Razorpay order: {message}")
        # Razorpay's Checkout is a script on our page, opened with this order id: no redirect.
        return Checkout(self.name, str(document["id"]), None, document)


def _notes(entity: Mapping[str, Any]) -> Mapping[str, Any]:
    notes = entity.get("notes")
    return notes if isinstance(notes, dict) else {}  # Razorpay sends [] when there are none


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
