"""FastAPI application: a meter list page and the first /api/v1 endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, select

from meterhub import __version__
from meterhub.billing.gateways import PaymentGateway, RazorpayGateway, StripeGateway
from meterhub.config import Settings
from meterhub.readings.model import METER_ID_PATTERN
from meterhub.store import queries, schema
from meterhub.web.payments import payments_router

COUNTER_LABELS = {
    ("accepted", "reading"): "readings stored",
    ("accepted", "event"): "events",
    ("accepted", "status"): "status messages",
    ("duplicate", "reading"): "duplicates",
    ("conflict", "reading"): "conflicts",
}
# Paging deeper than this is a query nobody means; beyond it the databases' integers overflow.
MAX_OFFSET = 10_000_000
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app(settings: Settings, engine: Engine) -> FastAPI:
    app = FastAPI(
        title="meterhub",
        version=__version__,
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
    )

    app.include_router(payments_router(engine, configured_gateways(settings)))

    @app.get("/healthz")
    def health() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(select(1))
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def meter_page(request: Request, offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> Any:
        with engine.connect() as conn:
            meters = queries.meters_overview(conn, limit=500, offset=offset)
            counts = queries.count_meters(conn)
            counters = queries.ingest_counters(conn)
        return TEMPLATES.TemplateResponse(
            request,
            "meters.html",
            {
                "counter_labels": COUNTER_LABELS,
                "meters": meters,
                "counts": counts,
                "counters": counters,
                "zone": settings.zone,
                "now": datetime.now(UTC),
            },
        )

    @app.get("/api/v1/meters")
    def list_meters(
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return [_as_dict(m) for m in queries.meters_overview(conn, limit=limit, offset=offset)]

    @app.get("/api/v1/meters/{meter_id}/usage")
    def meter_usage(
        meter_id: str,
        period: Literal["hour", "day", "month"] = "day",
        start: datetime | None = Query(default=None, alias="from"),
        end: datetime | None = Query(default=None, alias="to"),
    ) -> dict[str, Any]:
        if not METER_ID_PATTERN.match(meter_id):
            raise HTTPException(422, "meter id must be 1-64 ASCII letters, digits, - or _")
        try:
            end = _aware(end) if end else datetime.now(UTC)
            start = _aware(start) if start else end - timedelta(days=31)
        except OverflowError:
            raise HTTPException(422, "timestamps must lie between the years 1 and 9999") from None
        if start >= end:
            raise HTTPException(422, "from must be before to")
        with engine.connect() as conn:
            if (
                conn.execute(
                    select(schema.meters.c.id).where(schema.meters.c.id == meter_id)
                ).first()
                is None
            ):
                raise HTTPException(404, f"meter {meter_id} is not registered")
            buckets = queries.usage(conn, meter_id, start, end, period=period, zone=settings.zone)
        return {
            "meter_id": meter_id,
            "period": period,
            "timezone": settings.timezone,
            "buckets": [
                {
                    "start": b.start_local.isoformat(),
                    "end": b.end_local.isoformat(),
                    "import_kwh": round(b.import_kwh, 6),
                    "export_kwh": round(b.export_kwh, 6),
                    "intervals": b.intervals,
                    "estimated_intervals": b.estimated_intervals,
                }
                for b in buckets
            ],
        }

    @app.get("/api/v1/ingest/counters")
    def counters() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            return queries.ingest_counters(conn)

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


def _aware(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise HTTPException(422, "timestamps need a UTC offset")
    return ts.astimezone(UTC)


def _as_dict(item: Any) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}
