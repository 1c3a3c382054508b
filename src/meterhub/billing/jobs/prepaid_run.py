"""Prepaid accrual for every account: the tariff of each account, the disconnection window
from the settings, low-balance warnings queued for delivery. Shared by `meterhub bill prepaid
run` and the daily job (`meterhub bill daily`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from meterhub.billing.core.prepaid import policy_for
from meterhub.billing.core.tariff import Tariff, TariffGap, TariffInvalid, load_tariff
from meterhub.billing.jobs import delivery, prepaid
from meterhub.billing.repository import stored_tariff
from meterhub.config import Settings

log = logging.getLogger(__name__)


def accrue_all(engine: Engine, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Accrue every prepaid account, one transaction each; one summary per account, with an
    ``error`` key for an account that could not be priced (the others are still done)."""
    with engine.connect() as conn:
        ids = prepaid.account_ids(conn)
    results: list[dict[str, Any]] = []
    for consumer_id in ids:
        try:
            with engine.begin() as conn:
                account = prepaid.get_account(conn, consumer_id)
                tariff = tariff_loader(conn, settings)(account.tariff_id)
                outcome = run_account(conn, settings, consumer_id, tariff, now)
        except (TariffGap, TariffInvalid, OSError) as exc:
            log.warning("prepaid account %s not accrued: %s", consumer_id, exc)
            results.append({"consumer_id": consumer_id, "error": str(exc)})
            continue
        results.append(
            {
                "consumer_id": consumer_id,
                "charged_intervals": outcome.charged,
                "amount": f"{outcome.amount:.2f}",
                "balance": f"{outcome.balance:.2f}",
                "warnings": [f"{w.level:f}" for w in outcome.warnings],
                "action": outcome.action,
            }
        )
    return results


def tariff_loader(conn: Connection, settings: Settings) -> Callable[[str], Tariff]:
    """A tariff by id: from the tariffs table when the bill-run capability has loaded it there,
    else ``prepaid_tariff_dir/<id>.yaml`` (or .yml, .json)."""
    cache: dict[str, Tariff] = {}

    def load(tariff_id: str) -> Tariff:
        if tariff_id in cache:
            return cache[tariff_id]
        tariff = stored_tariff(conn, tariff_id)
        if tariff is None:
            for suffix in (".yaml", ".yml", ".json"):
                path = Path(settings.prepaid_tariff_dir) / f"{tariff_id}{suffix}"
                if path.exists():
                    tariff = load_tariff(path)
                    break
            else:
                raise TariffGap(f"no tariff document {tariff_id!r}")
        cache[tariff_id] = tariff
        return tariff

    return load


def run_account(
    conn: Connection, settings: Settings, consumer_id: str, tariff: Tariff, now: datetime
) -> prepaid.AccrualOutcome:
    """Accrue one account and queue its warnings, in the caller's transaction."""
    policy = policy_for(
        tariff,
        now,
        start=settings.prepaid_disconnect_from,
        until=settings.prepaid_disconnect_until,
        weekdays=settings.prepaid_disconnect_weekdays,
        holiday_country=settings.prepaid_holiday_country,
    )
    outcome = prepaid.accrue(
        conn, consumer_id, tariff, now, levels=settings.prepaid_warning_levels, policy=policy
    )
    for warning in outcome.warnings:
        delivery.enqueue_warning(
            conn,
            warning.event_id,
            consumer_id,
            level=warning.level,
            balance=warning.balance,
            currency=tariff.currency,
            now=now,
        )
    return outcome
