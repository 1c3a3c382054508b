"""`meterhub bill daily`: one idempotent pass from the bill run on the cycle day to reminders,
late fees and messages at a local SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from billing_support import add_consumer, add_intervals, add_tariff
from sqlalchemy import Engine, select
from test_delivery_smtp import SmtpServer, email_channel, free_port
from typer.testing import CliRunner

from meterhub.billing.jobs import delivery
from meterhub.billing.jobs.daily import daily_pass
from meterhub.cli import app
from meterhub.config import Settings, get_settings
from meterhub.store.schema_payments import ledger_entries

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)


def at(day: int, month: int = 3, hour: int = 6) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=KTM)


def subjects(server: SmtpServer) -> list[str]:
    return [str(message["Subject"]) for _, message in server.inbox.messages]


def test_a_month_of_daily_passes_bills_reminds_charges_late_fees_once(
    sqlite_engine: Engine,
) -> None:
    tariff_id = add_tariff(sqlite_engine, "nea-domestic")
    meter_id = add_consumer(sqlite_engine, "d1", tariff_id=tariff_id, amperes=15)
    start = datetime(2026, 2, 1, tzinfo=KTM).astimezone(UTC)
    add_intervals(sqlite_engine, meter_id, start, start + timedelta(days=28))
    with sqlite_engine.begin() as conn:
        delivery.set_preference(conn, "d1", "email", at(1), email="d1@example.com")
    server = SmtpServer(free_port())
    server.start()
    channels = {"email": email_channel(server.port)}
    try:
        first = daily_pass(sqlite_engine, SETTINGS, at(1), channels)  # the cycle day
        again = daily_pass(sqlite_engine, SETTINGS, at(1, hour=7), channels)
        before_due = daily_pass(sqlite_engine, SETTINGS, at(13), channels)  # due 2026-03-16
        late = daily_pass(sqlite_engine, SETTINGS, at(17), channels)
        late_again = daily_pass(sqlite_engine, SETTINGS, at(17, hour=9), channels)
    finally:
        server.stop()

    assert first.errors == [] and first.bill_runs[0]["issued"] == 1
    assert first.deliveries == {"queued": 1, "sent": 1, "failed": 0, "skipped": 0}
    assert again.bill_runs == [] and again.deliveries == {
        "queued": 0, "sent": 0, "failed": 0, "skipped": 0,
    }  # fmt: skip
    assert before_due.terms is not None and before_due.terms.reminders == 1
    assert late.terms is not None and (late.terms.late_fees, late.terms.reminders) == (1, 1)
    assert late_again.terms is not None
    assert (late_again.terms.late_fees, late_again.terms.reminders) == (0, 0)
    sent = subjects(server)
    assert len(sent) == 3
    assert sent[0].startswith("Your electricity bill MH-2026-")
    assert sent[1].startswith("Reminder: bill MH-2026-") and sent[2].startswith("Overdue: bill")
    with sqlite_engine.connect() as conn:
        fees = list(
            conn.execute(
                select(ledger_entries.c.amount).where(ledger_entries.c.kind == "late_fee")
            ).scalars()
        )
    assert len(fees) == 1 and Decimal(fees[0]) > 0


def test_the_command_prints_what_it_did(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METERHUB_DATABASE_URL", sqlite_engine.url.render_as_string())
    monkeypatch.setenv("METERHUB_TIMEZONE", "Asia/Kathmandu")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["bill", "daily"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["errors"] == []
    assert report["deliveries"] is None  # no channel configured: nothing sent
    assert report["payment_terms"]["consumers"] == 0
    assert [run["issued"] for run in report["bill_runs"]] == [0]
