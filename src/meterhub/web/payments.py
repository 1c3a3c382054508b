"""Payment gateway webhooks: POST /api/v1/payments/webhooks/{gateway}.

The body is read raw (a signature is over the exact bytes the gateway sent), verified by the
gateway's adapter, parsed to a notice and recorded once by ``billing.service``. 400: bad or
stale signature, nothing stored. 200: recorded, a repeat of a recorded payment, or an event
that is not a payment (so the gateway stops retrying it). 422: genuine but unrecordable
(no consumer id, unknown consumer): the gateway retries and an operator sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from meterhub.billing.gateways.base import NoticeInvalid, PaymentGateway, SignatureInvalid
from meterhub.billing.service import PaymentRefused, record_notice_once


def payments_router(engine: Engine, gateways: Mapping[str, PaymentGateway]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/payments", tags=["payments"])

    @router.post("/webhooks/{gateway}")
    async def webhook(gateway: str, request: Request) -> dict[str, Any]:
        adapter = gateways.get(gateway)
        if adapter is None:
            raise HTTPException(404, f"no payment gateway {gateway!r} configured")
        body = await request.body()
        try:
            adapter.verify(body, request.headers, datetime.now(UTC))
        except SignatureInvalid as exc:
            raise HTTPException(400, f"signature refused: {exc}") from None
        try:
            notice = adapter.parse(body)
        except NoticeInvalid as exc:
            raise HTTPException(422, str(exc)) from None
        if notice is None:
            return {"status": "ignored"}
        try:
            recorded = await run_in_threadpool(record_notice_once, engine, notice)
        except PaymentRefused as exc:
            raise HTTPException(422, str(exc)) from None
        return {
            "status": "duplicate" if recorded.duplicate else "recorded",
            "payment_id": recorded.payment_id,
            "receipt_number": recorded.receipt_number,
        }

    return router
