"""The bill document of a stored bill: HTML with lines and chart, PDF, the CLI that writes them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from billing_support import add_consumer, add_intervals, add_tariff
from sqlalchemy import Engine
from typer.testing import CliRunner

from meterhub.billing.document import render_html, render_pdf, usage_chart_svg
from meterhub.billing.runs import run_bills
from meterhub.config import Settings
from meterhub.store import billing_store
from meterhub.store.billing_store import StoredBill

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)


def issued_bill(engine: Engine) -> StoredBill:
    tariff_id = add_tariff(engine, "nea-domestic")
    meter_id = add_consumer(engine, "c1", tariff_id=tariff_id, amperes=15)
    # January 2025 (a year earlier), then January and February 2026; an estimated hour.
    last_year = datetime(2025, 2, 1, tzinfo=KTM).astimezone(UTC)
    add_intervals(engine, meter_id, last_year, last_year + timedelta(days=28), 0.1)
    start = datetime(2026, 1, 1, tzinfo=KTM).astimezone(UTC)
    estimated = [datetime(2026, 2, 3, 10, tzinfo=KTM) + timedelta(minutes=15 * k) for k in range(4)]
    add_intervals(engine, meter_id, start, start + timedelta(days=59), 0.2, estimated=estimated)
    (number,) = run_bills(engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1)).issued
    with engine.connect() as conn:
        stored = billing_store.load_bill(conn, number)
    assert stored is not None
    return stored


def test_html_has_details_lines_chart_comparisons_and_due_date(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine)
    page = render_html(stored, instructions="Pay at any NEA counter or by eSewa.")
    assert stored.number in page and "Consumer c1" in page and "m-c1" in page
    for line in stored.lines:
        assert line["description"] in page and f"{line['amount']:.2f}" in page
    assert f"{stored.bill['total']:.2f}" in page
    assert page.count('<rect class="bar"') == 28  # one bar per day of February
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "not available" not in page  # both comparisons are stored
    assert "2025-02-01 to 2025-02-28" in page and "268.800" in page  # 28*96*0.1
    assert "Estimated reads: 4 of 2688" in page and "2026-02-03" in page
    assert f"Due date: {stored.bill['due_date']}" in page
    assert "Pay at any NEA counter or by eSewa." in page and "Prompt payment rebate of 2%" in page


def test_html_says_not_available_without_history_and_shows_corrections(
    sqlite_engine: Engine,
) -> None:
    tariff_id = add_tariff(sqlite_engine, "nea-domestic")
    meter_id = add_consumer(sqlite_engine, "c2", tariff_id=tariff_id)
    start = datetime(2026, 2, 1, tzinfo=KTM).astimezone(UTC)
    add_intervals(sqlite_engine, meter_id, start, start + timedelta(days=28))
    (number,) = run_bills(
        sqlite_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1)
    ).issued
    with sqlite_engine.begin() as conn:
        billing_store.add_adjustment(conn, number, "credit_note", Decimal("-10.00"), "goodwill")
    with sqlite_engine.connect() as conn:
        stored = billing_store.load_bill(conn, number)
    assert stored is not None
    page = render_html(stored)
    assert page.count("not available") == 2
    assert "Credit note: goodwill" in page and f"{stored.balance:.2f}" in page


def test_pdf_starts_with_the_magic_and_names_the_bill(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine)
    pdf = render_pdf(stored)
    assert pdf.startswith(b"%PDF")
    assert stored.number.encode() in pdf  # in the document information (title, subject)


def test_bill_show_writes_html_and_pdf(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meterhub.cli import app
    from meterhub.config import get_settings

    stored = issued_bill(sqlite_engine)
    monkeypatch.setenv("METERHUB_DATABASE_URL", str(sqlite_engine.url))
    get_settings.cache_clear()
    runner = CliRunner()
    for file_format in ("html", "pdf"):
        out = tmp_path / f"bill.{file_format}"
        result = runner.invoke(
            app, ["bill", "show", stored.number, "--format", file_format, "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 500
    assert (tmp_path / "bill.pdf").read_bytes().startswith(b"%PDF")
    missing = runner.invoke(app, ["bill", "show", "MH-1999-000001", "--format", "html"])
    assert missing.exit_code == 1 and "no bill" in missing.output
    get_settings.cache_clear()


def test_chart_without_days() -> None:
    assert "No daily usage" in usage_chart_svg([])
