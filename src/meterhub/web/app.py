"""The FastAPI application, assembled: settings and engine on the app, the routers included.

The routes live in ``web/api/routes`` (one router per area) and take what they need from
``web/deps``; this module only puts the pieces together.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from meterhub import __version__
from meterhub.billing.gateways import PaymentGateway, RazorpayGateway, StripeGateway
from meterhub.config import Settings
from meterhub.web.api.main import API_PREFIX, api_router
from meterhub.web.api.routes import health, pages
from meterhub.web.payments import payments_router


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = FastAPI(
        title="meterhub",
        version=__version__,
        docs_url="/api/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(payments_router(engine, configured_gateways(settings)))
    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(api_router)
    return app


def configured_gateways(settings: Settings) -> dict[str, PaymentGateway]:
    """The payment gateways whose webhook secrets are set; secrets come from the environment."""
    gateways: dict[str, PaymentGateway] = {}
    if settings.stripe_webhook_secret is not None:
        api_key = settings.stripe_api_key
        gateways["stripe"] = StripeGateway(
            webhook_secret=settings.stripe_webhook_secret.get_secret_value(),
            api_key=api_key.get_secret_value() if api_key else None,
        )
    if settings.razorpay_webhook_secret is not None:
        key_secret = settings.razorpay_key_secret
        gateways["razorpay"] = RazorpayGateway(
            webhook_secret=settings.razorpay_webhook_secret.get_secret_value(),
            key_id=settings.razorpay_key_id,
            key_secret=key_secret.get_secret_value() if key_secret else None,
        )
    return gateways
