"""The payment-gateway adapter: every gateway exposes the same small surface.

``create_checkout`` opens an order or checkout session with the gateway (one outbound HTTP
call, through an injectable ``Transport``); ``verify`` checks a webhook's signature over the
raw body, in constant time, and raises ``SignatureInvalid``; ``parse`` turns a verified body
into a ``PaymentNotice`` (or None for events that are not a completed payment). Adding a
gateway is one module here and an entry in ``GATEWAYS``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


class SignatureInvalid(Exception):
    """The webhook is not from the gateway (or not this body, or too old): refuse it."""


class NoticeInvalid(ValueError):
    """A genuine notice that cannot be recorded (no consumer, unknown currency, ...)."""


class GatewayError(RuntimeError):
    """The gateway refused or failed an outbound call."""


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """A completed payment as the gateway reported it."""

    gateway: str
    reference: str  # the gateway's id of the payment: processed once, however often sent
    consumer_id: str
    amount: Decimal  # major units (rupees, dollars), exact
    currency: str  # ISO 4217, upper case
    paid_at: datetime
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    consumer_id: str
    amount: Decimal
    currency: str
    description: str
    idempotency_key: str  # ours: the same key never opens two orders
    success_url: str | None = None
    cancel_url: str | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    gateway: str
    order_id: str
    redirect_url: str | None  # where to send the consumer (None: the gateway's own widget)
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes


Transport = Callable[[HttpRequest], HttpResponse]


def urllib_transport(request: HttpRequest, timeout: float = 30.0) -> HttpResponse:
    """The default transport: one HTTPS request with the standard library."""
    outbound = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with urllib.request.urlopen(outbound, timeout=timeout) as response:
            return HttpResponse(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return HttpResponse(exc.code, exc.read())


class PaymentGateway(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def verify(self, body: bytes, headers: Mapping[str, str], now: datetime) -> None: ...

    def parse(self, body: bytes) -> PaymentNotice | None: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name, whatever its case (Starlette's headers are case-insensitive already;
    a plain dict in a test or a queue message may not be)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None


# Currencies whose gateway amounts are not in hundredths. Stripe's published lists:
# zero-decimal (amount is the major unit) and three-decimal (thousandths).
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def minor_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_minor(amount: Decimal, currency: str) -> int:
    """An exact amount in the currency's smallest unit; an amount finer than that is an error
    rather than a rounding the consumer did not agree to."""
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of minor units")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_exponent(currency))
