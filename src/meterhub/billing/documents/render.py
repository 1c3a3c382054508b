"""The bill document, HTML and PDF, from a stored bill: nothing is recomputed at render time.

Everything shown (consumer and meter, line items, daily usage, comparisons, due date) was frozen
into the bill's ``document`` when it was issued, so rendering the same bill next year gives the
same page. No external assets: the HTML carries its CSS and an inline SVG chart; the PDF draws
its chart with fpdf2 and embeds subsets of the Noto fonts (``pdf_fonts``), so names and
addresses in any script the fonts cover (Devanagari included, shaped by HarfBuzz) print as
written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, select_autoescape

from meterhub.billing.core.stored_bill import StoredBill
from meterhub.billing.documents.pdf_fonts import FAMILY, make_pdf

TEMPLATES = Path(__file__).parent / "templates"
DASH = "\N{EN DASH}"
COMPARISONS = (("last_month", "Previous period"), ("last_year", "Same period last year"))


@dataclass(frozen=True, slots=True)
class DailyBar:
    day: str  # ISO date
    kwh: float


def daily_bars(document: Mapping[str, Any]) -> list[DailyBar]:
    return [DailyBar(day, float(kwh)) for day, kwh in document.get("daily_kwh", [])]


def payment_instructions(document: Mapping[str, Any], extra: str | None = None) -> list[str]:
    """What to pay by when, from the tariff's payment terms, and the utility's own text."""
    lines = [f"Pay by {document['due_date']}."]
    terms = document.get("payment_terms") or {}
    rebate = terms.get("prompt_payment_rebate_percent")
    if rebate:
        within = terms.get("prompt_payment_within_days")
        lines.append(
            f"Prompt payment rebate of {rebate}%"
            + (f" if paid within {within} days of the bill." if within else ".")
        )
    for fee in terms.get("late_fees", []):
        amount = f"{fee['percent']}%" if fee.get("percent") else fee.get("amount")
        lines.append(f"Late payment: {amount} after {fee['after_days']} days past the due date.")
    if extra:
        lines.append(extra)
    lines.append(f"Quote bill number {document.get('number', '')} with your payment.")
    return lines


def usage_chart_svg(bars: Sequence[DailyBar], *, width: int = 640, height: int = 180) -> str:
    """Daily kWh as bars, inline SVG (no script, no external reference)."""
    if not bars:
        return '<p class="muted">No daily usage recorded.</p>'
    top = max(bar.kwh for bar in bars) or 1.0
    left, bottom, plot_h = 40, 20, height - 30
    step = (width - left) / len(bars)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Daily usage in kWh">',
        f'<text x="0" y="12" font-size="10">{top:.1f} kWh</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#999"/>',
    ]
    for index, bar in enumerate(bars):
        bar_h = plot_h * bar.kwh / top
        x = left + index * step
        parts.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{height - bottom - bar_h:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{bar_h:.1f}" fill="#3b7dd8">'
            f"<title>{escape(bar.day)}: {bar.kwh:.3f} kWh</title></rect>"
        )
        if index % 5 == 0:
            parts.append(
                f'<text x="{x + 1:.1f}" y="{height - 6}" font-size="9">{escape(bar.day[5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def service_note(service: Mapping[str, Any] | None) -> str:
    """Why a bill covers fewer days than its cycle (a move-in, a conversion to prepaid)."""
    if not service or service["days"] == service["cycle_days"]:
        return ""
    why = "; ".join(service["notes"])
    return f"Billed for {service['days']} of the {service['cycle_days']} days of the cycle ({why})."


def meter_span(meter: Mapping[str, Any]) -> str:
    """One meter of a bill whose meter was replaced: what it served and measured."""
    text = f"Meter {meter['id']} from {meter['from']} to {meter['to']}: {meter['import_kwh']} kWh"
    if meter.get("estimated_intervals"):
        text += f", {meter['estimated_intervals']} of {meter['intervals']} values estimated"
    if meter.get("initial_reading_kwh") is not None:
        text += f", register {meter['initial_reading_kwh']} kWh at installation"
    if meter.get("final_reading_kwh") is not None:
        text += f", final reading {meter['final_reading_kwh']} kWh"
    return text


def _lines(stored: StoredBill) -> list[dict[str, str]]:
    return [
        {
            "description": line["description"],
            "quantity": "" if line["quantity"] is None else _number(line["quantity"]),
            "unit": line["unit"] or "",
            "rate": "" if line["rate"] is None else _number(line["rate"]),
            "amount": f"{line['amount']:.2f}",
        }
        for line in stored.lines
    ]


def _number(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


def render_html(stored: StoredBill, *, instructions: str | None = None) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["j2"]))
    env.filters["meter_span"] = meter_span
    env.filters["service_note"] = service_note
    document = stored.bill["document"]
    return env.get_template("bill.html.j2").render(
        bill=stored.bill,
        d=document,
        lines=_lines(stored),
        total=f"{stored.bill['total']:.2f}",
        adjustments=[{**row, "amount": f"{row['amount']:.2f}"} for row in stored.adjustments],
        balance=f"{stored.balance:.2f}",
        chart=usage_chart_svg(daily_bars(document)),
        comparisons=[(label, document["comparison"].get(key)) for key, label in COMPARISONS],
        instructions=payment_instructions(document, instructions),
    )


def render_pdf(stored: StoredBill, *, instructions: str | None = None) -> bytes:
    bill = stored.bill
    printed = [*_strings(bill), *_strings(stored.lines), *_strings(stored.adjustments)]
    pdf = make_pdf([*printed, instructions or ""], format="A4")
    pdf.set_title(f"Bill {stored.number}")
    pdf.set_subject(stored.number)
    pdf.set_creator("meterhub")
    pdf.add_page()
    page = _Page(pdf)
    _pdf_heading(page, stored)
    _pdf_items(page, stored)
    _pdf_usage(page, stored)
    _pdf_payment(page, stored, instructions)
    return bytes(pdf.output())


class _Page:
    """The PDF being written, and its one way of writing a paragraph."""

    def __init__(self, pdf: Any) -> None:
        from fpdf.enums import XPos, YPos

        self.pdf = pdf
        self.width: float = pdf.epw
        self.new_x, self.new_y = XPos.LMARGIN, YPos.NEXT

    def text(self, value: str, size: float = 10, style: str = "", height: float = 5.5) -> None:
        self.pdf.set_font(FAMILY, style, size)
        self.pdf.multi_cell(self.width, height, value, new_x=self.new_x, new_y=self.new_y)


def _pdf_heading(page: _Page, stored: StoredBill) -> None:
    """The bill's number and period; who and which meter; why fewer days; estimated reads."""
    bill, document = stored.bill, stored.bill["document"]
    text = page.text
    text(f"Electricity bill {stored.number}", 16, "B", 8)
    period = document["period"]
    text(
        f"Issued {document['issued_on']} {DASH} period {period['from']} to {period['to']} "
        f"({document['days']} days) {DASH} {document.get('tariff_name', bill['tariff_id'])}"
    )
    consumer, meter = document["consumer"], document["meter"]
    text(f"Consumer: {consumer['name']} (account {consumer['id']}), {consumer['address'] or ''}")
    details = [f"Meter {meter['id']}"]
    if meter.get("sanctioned_load_kw"):
        details.append(f"sanctioned load {meter['sanctioned_load_kw']} kW")
    if meter.get("amperes"):
        details.append(f"supply {meter['amperes']} A")
    details.append(f"imported {document['import_kwh']} kWh")
    text(", ".join(details))
    if note := service_note(document.get("service")):
        text(note)
    if len(document.get("meters") or []) > 1:
        for replaced in document["meters"]:
            text(meter_span(replaced))
    if bill["estimated_intervals"]:
        page.pdf.set_text_color(138, 75, 0)  # the HTML's warning colour
        text(
            f"Estimated reads: {bill['estimated_intervals']} of {bill['intervals']} values, on "
            + ", ".join(bill["estimated_dates"])
        )
        page.pdf.set_text_color(0, 0, 0)


def _pdf_items(page: _Page, stored: StoredBill) -> None:
    """The line items, the total, the corrections and what is due after them."""
    bill, pdf = stored.bill, page.pdf
    pdf.ln(2)
    pdf.set_font(FAMILY, "", 9)
    with pdf.table(
        col_widths=(90, 35, 25, 30), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT")
    ) as table:
        table.row(["Item", "Quantity", "Rate", f"Amount ({bill['currency']})"])
        for line in _lines(stored):
            table.row(
                [
                    line["description"],
                    f"{line['quantity']} {line['unit']}".strip(),
                    line["rate"],
                    line["amount"],
                ]
            )
        table.row(["Total", "", "", f"{bill['total']:.2f}"])
        for adjustment in stored.adjustments:
            label = f"{adjustment['kind'].replace('_', ' ')}: {adjustment['reason']}"
            table.row([label, "", "", f"{adjustment['amount']:.2f}"])
        if stored.adjustments:
            table.row(["Amount due", "", "", f"{stored.balance:.2f}"])


def _pdf_usage(page: _Page, stored: StoredBill) -> None:
    """The daily usage chart and the comparison with earlier periods."""
    document = stored.bill["document"]
    page.pdf.ln(3)
    page.text("Daily usage (kWh)", 11, "B")
    _pdf_chart(page.pdf, daily_bars(document), page.width)
    page.text("Comparison", 11, "B")
    page.text(f"This bill: {document['import_kwh']} kWh")
    for key, label in COMPARISONS:
        row = document["comparison"].get(key)
        page.text(
            f"{label}: "
            + (f"{row['kwh']} kWh ({row['from']} to {row['to']})" if row else "not available")
        )


def _pdf_payment(page: _Page, stored: StoredBill, instructions: str | None) -> None:
    """What to pay by when, and how."""
    bill, document = stored.bill, stored.bill["document"]
    page.pdf.ln(2)
    page.text(
        f"Due date: {document['due_date']} {DASH} {bill['currency']} {stored.balance:.2f}", 12, "B"
    )
    for instruction in payment_instructions(document, instructions):
        page.text(f"• {instruction}")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a bill's rows and document: what the PDF may print."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _pdf_chart(pdf: Any, bars: Sequence[DailyBar], width: float, height: float = 40) -> None:
    if not bars:
        pdf.cell(width, 6, "No daily usage recorded.", new_x="LMARGIN", new_y="NEXT")
        return
    top = max(bar.kwh for bar in bars) or 1.0
    x0, y0 = pdf.l_margin, pdf.get_y() + 2
    step = width / len(bars)
    pdf.set_fill_color(59, 125, 216)
    for index, bar in enumerate(bars):
        bar_h = height * bar.kwh / top
        if bar_h > 0:
            pdf.rect(x0 + index * step + 0.3, y0 + height - bar_h, max(step - 0.6, 0.2), bar_h, "F")
    pdf.set_draw_color(150, 150, 150)
    pdf.line(x0, y0 + height, x0 + width, y0 + height)
    pdf.set_font(FAMILY, "", 7)
    for index, bar in enumerate(bars):
        if index % 5 == 0:
            pdf.text(x0 + index * step, y0 + height + 4, bar.day[5:])
    pdf.text(x0, y0 - 0.5, f"max {top:.1f} kWh/day")
    pdf.set_y(y0 + height + 7)
