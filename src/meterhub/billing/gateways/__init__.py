"""Payment gateways behind one adapter interface (``base.PaymentGateway``)."""

from meterhub.billing.gateways.base import (
    Checkout,
    CheckoutRequest,
    GatewayError,
    HttpRequest,
    HttpResponse,
    NoticeInvalid,
    PaymentGateway,
    PaymentNotice,
    SignatureInvalid,
    Transport,
)
from meterhub.billing.gateways.razorpay import RazorpayGateway
from meterhub.billing.gateways.stripe import StripeGateway

# Registry by the name used in the webhook URL (/api/v1/payments/webhooks/{name}).
GATEWAYS: dict[str, type[StripeGateway] | type[RazorpayGateway]] = {
    "stripe": StripeGateway,
    "razorpay": RazorpayGateway,
}

__all__ = [
    "GATEWAYS",
    "Checkout",
    "CheckoutRequest",
    "GatewayError",
    "HttpRequest",
    "HttpResponse",
    "NoticeInvalid",
    "PaymentGateway",
    "PaymentNotice",
    "RazorpayGateway",
    "SignatureInvalid",
    "StripeGateway",
    "Transport",
]
