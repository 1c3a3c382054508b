"""Stripe: Checkout Sessions out, signed webhooks in.

From Stripe's public documentation (docs.stripe.com, "Check the webhook signatures" and the
Checkout Sessions API):

- Every webhook carries ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]``.
  ``v1`` is HMAC-SHA256 of ``f"{t}.{raw body}"`` keyed with the endpoint's signing secret
  (``whsec_...``, used as given). There may be several ``v1`` values while a secret is being
  rolled: any match is enough; ``v0`` is a test-mode scheme and is ignored. Stripe's libraries
  refuse a ``t`` more than 300 seconds from now (replay protection): the default tolerance here.
- The body must be the raw bytes: re-serialised JSON does not verify.
- ``checkout.session.completed`` (``payment_status`` "paid") and ``payment_intent.succeeded``
  both report one payment; its id is the PaymentIntent (``pi_...``), the reference recorded
  once. Amounts are integers in the currency's smallest unit, currencies lower case.
- ``POST https://api.stripe.com/v1/checkout/sessions`` (form-encoded, ``Authorization: Bearer
  <secret key>``, an ``Idempotency-Key`` header) opens a hosted payment page; the response's
  ``url`` is where the consumer goes. Our consumer id travels in ``metadata`` on the session
  and (``payment_intent_data[metadata]``) on the PaymentIntent, so both events carry it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
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

API = "https://api.stripe.com/v1"
SIGNATURE_HEADER = "Stripe-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
PAID_EVENTS = frozenset({"checkout.session.completed", "payment_intent.succeeded"})


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``v1`` signature Stripe computes (tests use it to play Stripe)."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={sign(payload, secret, timestamp)}"


class StripeGateway:
    name = "stripe"

    def __init__(
        self,
        *,
        webhook_secret: str,
        api_key: str | None = None,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
        transport: Transport = urllib_transport,
    ) -> None:
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.tolerance_seconds = tolerance_seconds
        self.transport = transport

    # ---------------------------------------------------------------- webhooks in

    def verify(self, body: bytes, headers: Mapping[str, str], now: datetime) -> None:
        value = header(headers, SIGNATURE_HEADER)
        if not value:
            raise SignatureInvalid("no Stripe-Signature header")
        timestamp: int | None = None
        candidates: list[str] = []
        for part in value.split(","):
            key, _, item = part.strip().partition("=")
            if key == "t":
                try:
                    timestamp = int(item)
                except ValueError:
                    raise SignatureInvalid("Stripe-Signature: bad timestamp") from None
            elif key == "v1":
                candidates.append(item)
        if timestamp is None or not candidates:
            raise SignatureInvalid("Stripe-Signature without t= or v1=")
        expected = sign(body, self.webhook_secret, timestamp)
        # Check every candidate (no early exit) so timing says nothing about which matched.
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureInvalid("Stripe signature does not match the body")
        if abs(now.timestamp() - timestamp) > self.tolerance_seconds:
            raise SignatureInvalid("Stripe signature timestamp outside the tolerance window")

    def parse(self, body: bytes) -> PaymentNotice | None:
        try:
            event = json.loads(body)
            kind = event["type"]
            payment = event["data"]["object"]
        except (ValueError, KeyError, TypeError):
            raise NoticeInvalid("not a Stripe event") from None
        if kind not in PAID_EVENTS:
            return None
        if kind == "checkout.session.completed":
            if payment.get("payment_status") != "paid":
                return None  # delayed methods: payment_intent.succeeded follows
            reference, minor = payment.get("payment_intent"), payment.get("amount_total")
        else:
            reference, minor = payment.get("id"), payment.get("amount_received")
        currency = str(payment.get("currency") or "").upper()
        consumer_id = (payment.get("metadata") or {}).get("consumer_id") or payment.get(
            "client_reference_id"
        )
        if not isinstance(reference, str) or not isinstance(minor, int) or not currency:
            raise NoticeInvalid(f"{kind}: no payment intent, amount or currency")
        if not consumer_id:
            raise NoticeInvalid(f"{kind} {reference}: no consumer_id in metadata")
        return PaymentNotice(
            gateway=self.name,
            reference=reference,
            consumer_id=str(consumer_id),
            amount=from_minor(minor, currency),
            currency=currency,
            paid_at=datetime.fromtimestamp(int(event.get("created", 0)), UTC),
            raw=event,
        )

    # ---------------------------------------------------------------- checkout out

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if not self.api_key:
            raise GatewayError("Stripe: no secret API key configured")
        form: dict[str, str] = {
            "mode": "payment",
            "client_reference_id": request.consumer_id,
            "metadata[consumer_id]": request.consumer_id,
            "payment_intent_data[metadata][consumer_id]": request.consumer_id,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": request.currency.lower(),
            "line_items[0][price_data][unit_amount]": str(
                to_minor(request.amount, request.currency)
            ),
            "line_items[0][price_data][product_data][name]": request.description,
        }
        if request.success_url:
            form["success_url"] = request.success_url
        if request.cancel_url:
            form["cancel_url"] = request.cancel_url
        response = self.transport(
            HttpRequest(
                "POST",
                f"{API}/checkout/sessions",
                {
                    "Authorization": f"Bearer {self.api_key}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Idempotency-Key": request.idempotency_key,
                },
                urllib.parse.urlencode(form).encode(),
            )
        )
        document = _json(response.body)
        if response.status != 200 or "id" not in document:
            message = (document.get("error") or {}).get("message", response.status)
            raise GatewayError(f"Stripe checkout session: {message}")
        return Checkout(self.name, str(document["id"]), document.get("url"), document)


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
