"""The bill document of a stored bill: HTML with lines and chart, PDF, the CLI that writes them."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from billing_support import add_consumer, add_intervals, add_tariff
from pypdf import PdfReader
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from meterhub.billing import service as billing
from meterhub.billing.documents.render import render_html, render_pdf, usage_chart_svg
from meterhub.billing.jobs.runs import run_bills
from meterhub.config import Settings
from meterhub.store import schema

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)


def issued_bill(
    engine: Engine, *, name: str | None = None, address: str | None = None
) -> billing.StoredBill:
    tariff_id = add_tariff(engine, "nea-domestic")
    meter_id = add_consumer(engine, "c1", tariff_id=tariff_id, amperes=15)
    if name is not None or address is not None:
        with engine.begin() as conn:
            conn.execute(
                update(schema.consumers)
                .where(schema.consumers.c.id == "c1")
                .values(name=name or "Consumer c1", address=address)
            )
    # January 2025 (a year earlier), then January and February 2026; an estimated hour.
    last_year = datetime(2025, 2, 1, tzinfo=KTM).astimezone(UTC)
    add_intervals(engine, meter_id, last_year, last_year + timedelta(days=28), 0.1)
    start = datetime(2026, 1, 1, tzinfo=KTM).astimezone(UTC)
    estimated = [datetime(2026, 2, 3, 10, tzinfo=KTM) + timedelta(minutes=15 * k) for k in range(4)]
    add_intervals(engine, meter_id, start, start + timedelta(days=59), 0.2, estimated=estimated)
    (number,) = run_bills(engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1)).issued
    with engine.connect() as conn:
        stored = billing.load_bill(conn, number)
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
        billing.add_adjustment(conn, number, "credit_note", Decimal("-10.00"), "goodwill")
    with sqlite_engine.connect() as conn:
        stored = billing.load_bill(conn, number)
    assert stored is not None
    page = render_html(stored)
    assert page.count("not available") == 2
    assert "Credit note: goodwill" in page and f"{stored.balance:.2f}" in page


def test_pdf_starts_with_the_magic_and_names_the_bill(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine)
    pdf = render_pdf(stored)
    assert pdf.startswith(b"%PDF")
    assert stored.number.encode() in pdf  # in the document information (title, subject)


def pdf_text(pdf: bytes) -> str:
    """The PDF's text with each run of white space as one space (table cells wrap)."""
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]
    return " ".join(" ".join(pages).split())


def embedded_fonts(pdf: bytes) -> list[tuple[str, dict[str, str]]]:
    """(base font name, {character code: the text it stands for}) of each font, from its
    ToUnicode map."""
    fonts = []
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources: Any = page["/Resources"]
        for ref in resources["/Font"].values():
            font = ref.get_object()
            cmap = font["/ToUnicode"].get_object().get_data().decode("ascii")
            codes = {
                code: bytes.fromhex(text).decode("utf-16-be")
                for code, text in re.findall(r"<([0-9A-F]{4})> <([0-9A-F]+)>", cmap)
            }
            fonts.append((str(font["/BaseFont"]), codes))
    return fonts


def test_pdf_prints_a_devanagari_name_and_address(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine, name="राम बहादुर थापा", address="वडा ४, काठमाडौं")
    text = pdf_text(render_pdf(stored))
    assert "Consumer: राम बहादुर थापा (account c1), वडा ४, काठमाडौं" in text
    assert "?" not in text


def test_pdf_shapes_devanagari_conjuncts_into_one_glyph(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine, name="Ram Thapa", address="क्षेत्र ४, Lalitpur")
    fonts = embedded_fonts(render_pdf(stored))
    (devanagari,) = (codes for name, codes in fonts if "Devanagari" in name)
    # Unshaped, क्ष would be three glyphs (क, virama, ष); shaped it is the one conjunct glyph.
    assert "क्ष" in devanagari.values() and "त्र" in devanagari.values()
    assert "्" not in devanagari.values()


def test_pdf_has_no_missing_glyphs(sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    stored = issued_bill(sqlite_engine, name="राम बहादुर थापा", address="काठमाडौं")
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        render_pdf(stored, instructions="Pay ₹ 120 or £ 1 \N{EN DASH} at any counter.")
    assert not [r for r in caplog.records if "missing" in r.getMessage()]


def test_pdf_prints_rupee_pound_and_en_dash(sqlite_engine: Engine) -> None:
    stored = issued_bill(sqlite_engine)
    text = pdf_text(render_pdf(stored, instructions="Pay ₹ 120 or £ 1 \N{EN DASH} at any counter."))
    assert "Pay ₹ 120 or £ 1 \N{EN DASH} at any counter." in text


def test_latin_pdf_prints_the_bill_with_subset_fonts_and_no_fallback(
    sqlite_engine: Engine,
) -> None:
    stored = issued_bill(sqlite_engine)
    pdf = render_pdf(stored)
    text = pdf_text(pdf)
    assert f"Electricity bill {stored.number}" in text
    assert "Consumer: Consumer c1 (account c1), Ward 4, Lalitpur" in text
    assert "Estimated reads: 4 of 2688 values, on 2026-02-03" in text
    for line in stored.lines:
        assert line["description"] in text and f"{line['amount']:.2f}" in text
    assert f"Due date: {stored.bill['due_date']} \N{EN DASH} NPR {stored.balance:.2f}" in text
    # Subsets of Noto Sans regular and bold (the whole fonts are 170 kB each), no Devanagari.
    assert [name.split("+")[1] for name, _ in embedded_fonts(pdf)] == ["NotoSans", "NotoSans"]
    assert len(pdf) < 40_000


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
