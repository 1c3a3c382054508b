"""The web app offers the payment webhooks of the gateways whose secrets are configured."""

from __future__ import annotations

import hashlib
import hmac
import time

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.web.app import create_app

pytestmark = pytest.mark.integration
SECRET = "whsec_test_only"


@pytest.fixture
def client(sqlite_engine: Engine) -> TestClient:
    settings = Settings(stripe_webhook_secret=SECRET)  # type: ignore[arg-type]
    return TestClient(create_app(settings, sqlite_engine))


def stripe_signature(body: bytes, secret: str = SECRET) -> str:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def test_a_correctly_signed_event_of_no_interest_is_acknowledged(client: TestClient) -> None:
    body = orjson.dumps({"id": "evt_1", "type": "customer.created", "data": {"object": {}}})
    response = client.post(
        "/api/v1/payments/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": stripe_signature(body)},
    )
    assert response.status_code == 200


def test_a_wrongly_signed_event_is_refused(client: TestClient) -> None:
    body = orjson.dumps({"id": "evt_2", "type": "payment_intent.succeeded"})
    response = client.post(
        "/api/v1/payments/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": stripe_signature(body, "whsec_other")},
    )
    assert response.status_code == 400


def test_a_gateway_without_a_configured_secret_is_not_offered(client: TestClient) -> None:
    response = client.post("/api/v1/payments/webhooks/razorpay", content=b"{}")
    assert response.status_code == 404
