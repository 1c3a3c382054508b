"""The daily billing job (`meterhub bill daily`): one idempotent pass of everything billing does
by the calendar, in this order:

1. the bill run of the period that has ended, on the cycle day in the utility's zone (and on
   any later day until its run has finished: a missed day is caught up);
2. prepaid accrual of every account (charges, low-balance warnings, disconnection requests);
3. late fees, prompt-payment rebates and reminders per each bill's tariff (``dunning``);
4. issued bills queued for delivery, and every due delivery sent.

Each step is idempotent on its own (bills once per consumer and period, charges once per
interval, fees as earned-less-posted, rebates and reminders once per bill and step, deliveries
once per subject and channel, claimed with a lease), so the pass may run hourly from cron, run
again after a crash, or run twice at once. A step that fails is logged and reported, and the
steps after it still run: a broken SMTP relay must not hold back late fees.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from meterhub.billing.jobs.delivery import queue_and_send
from meterhub.billing.jobs.dunning import TermsOutcome, apply_payment_terms
from meterhub.billing.jobs.prepaid_run import accrue_all
from meterhub.billing.jobs.runs import DEFAULT_UTILITY, RunResult, due_periods, run_bills
from meterhub.config import Settings
from meterhub.notify.channels import Channel
from meterhub.store.bill_runs import run_status

log = logging.getLogger(__name__)


def run_due_periods(
    engine: Engine,
    settings: Settings,
    today: date,
    *,
    utility: str = DEFAULT_UTILITY,
    now: datetime | None = None,
) -> list[RunResult]:
    """Run the latest period that has ended by ``today`` (local), unless its run finished."""
    with engine.connect() as conn:
        finished = {
            period
            for period in due_periods(today, settings.bill_cycle_day, set())
            if (status := run_status(conn, period)) and status["status"] == "finished"
        }
    return [
        run_bills(engine, period, settings=settings, today=today, utility=utility, now=now)
        for period in due_periods(today, settings.bill_cycle_day, finished)
    ]


@dataclass(slots=True)
class DailyReport:
    day: date
    bill_runs: list[dict[str, Any]] = field(default_factory=list)
    prepaid: list[dict[str, Any]] = field(default_factory=list)
    terms: TermsOutcome | None = None
    deliveries: dict[str, int] | None = None  # None: no channel configured, nothing sent
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "bill_runs": self.bill_runs,
            "prepaid_accounts": len(self.prepaid),
            "prepaid_charged_intervals": sum(p.get("charged_intervals", 0) for p in self.prepaid),
            "prepaid_warnings": sum(len(p.get("warnings", ())) for p in self.prepaid),
            "prepaid_actions": [
                {"consumer_id": p["consumer_id"], "action": p["action"]}
                for p in self.prepaid
                if p.get("action")
            ],
            "payment_terms": None if self.terms is None else self.terms.as_dict(),
            "deliveries": self.deliveries,
            "errors": self.errors,
        }


def daily_pass(
    engine: Engine,
    settings: Settings,
    now: datetime,
    channels: Mapping[str, Channel],
    *,
    utility: str = DEFAULT_UTILITY,
) -> DailyReport:
    """One pass as of ``now``; the calendar day is ``now``'s date in the utility's zone."""
    today = now.astimezone(settings.zone).date()
    report = DailyReport(today)
    log.info("daily billing pass for %s (%s) started", today, settings.timezone)
    try:
        for result in run_due_periods(engine, settings, today, utility=utility, now=now):
            report.bill_runs.append(
                {
                    "period": result.period,
                    "issued": len(result.issued),
                    "skipped": result.skipped,
                    "not_served": result.not_served,
                    "errors": len(result.errors),
                }
            )
            log.info(
                "bill run %s: %d issued, %d already billed, %d not billable",
                result.period, len(result.issued), result.skipped, len(result.errors),
            )  # fmt: skip
    except Exception as exc:  # reported; the later steps do not depend on a new bill run
        log.exception("bill run failed")
        report.errors.append(f"bill run: {type(exc).__name__}: {exc}")
    try:
        report.prepaid = accrue_all(engine, settings, now)
        report.errors += [
            f"prepaid {p['consumer_id']}: {p['error']}" for p in report.prepaid if "error" in p
        ]
        log.info("prepaid: %d accounts accrued", len(report.prepaid))
    except Exception as exc:
        log.exception("prepaid accrual failed")
        report.errors.append(f"prepaid: {type(exc).__name__}: {exc}")
    try:
        report.terms = apply_payment_terms(engine, today, now, link_url=settings.bill_link_url)
        report.errors += report.terms.errors
    except Exception as exc:
        log.exception("late fees, rebates and reminders failed")
        report.errors.append(f"payment terms: {type(exc).__name__}: {exc}")
    if not channels:
        log.warning("no delivery channel configured: messages stay queued")
    else:
        try:
            report.deliveries = queue_and_send(engine, settings, channels, now)
            log.info("deliveries: %s", report.deliveries)
        except Exception as exc:
            log.exception("delivery failed")
            report.errors.append(f"delivery: {type(exc).__name__}: {exc}")
    log.info("daily billing pass for %s done with %d errors", today, len(report.errors))
    return report
