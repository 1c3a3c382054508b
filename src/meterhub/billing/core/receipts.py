"""Receipt documents: the payment, what it paid and the balance after it. Pure.

The text form is what is stored with the receipt (``receipts.document``) and sent by SMS or
e-mail; the HTML form is the same facts for a browser or an e-mail body, escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    number: int
    issued_at: datetime
    consumer_id: str
    consumer_name: str
    payment_id: int
    amount: Decimal
    currency: str
    method: str  # cash | cheque | gateway
    reference: str | None  # the gateway's payment id, the cheque number, ...
    received_at: datetime
    entered_by: str | None
    allocations: Sequence[tuple[str, Decimal]]  # (bill number or id, amount paid on it)
    advance: Decimal  # the part of the payment held as credit for later bills
    balance_after: Decimal  # > 0 still owed, < 0 in credit

    @property
    def receipt_number(self) -> str:
        return f"R{self.number:08d}"


def balance_words(balance: Decimal, currency: str) -> str:
    """A ledger balance as a consumer reads it: a credit is never a negative number."""
    if balance > 0:
        return f"{balance:.2f} {currency} still due"
    if balance < 0:
        return f"{-balance:.2f} {currency} in credit"
    return f"0.00 {currency}: fully paid"


def _balance_words(facts: ReceiptFacts) -> str:
    return balance_words(facts.balance_after, facts.currency)


def receipt_text(facts: ReceiptFacts) -> str:
    lines = [
        f"RECEIPT {facts.receipt_number}",
        f"Issued:      {facts.issued_at.isoformat()}",
        f"Consumer:    {facts.consumer_id} {facts.consumer_name}".rstrip(),
        f"Amount:      {facts.amount} {facts.currency}",
        f"Method:      {facts.method}" + (f" ({facts.reference})" if facts.reference else ""),
        f"Received:    {facts.received_at.isoformat()}",
    ]
    if facts.entered_by:
        lines.append(f"Entered by:  {facts.entered_by}")
    lines.append("Applied to:")
    for bill, amount in facts.allocations:
        lines.append(f"  bill {bill}: {amount} {facts.currency}")
    if facts.advance > 0:
        lines.append(f"  advance (credit for later bills): {facts.advance} {facts.currency}")
    if not facts.allocations and facts.advance <= 0:
        lines.append("  (nothing open)")
    lines.append(f"Balance:     {_balance_words(facts)}")
    return "\n".join(lines) + "\n"


def receipt_html(facts: ReceiptFacts) -> str:
    rows = "".join(
        f"<tr><td>bill {escape(bill)}</td><td>{amount} {escape(facts.currency)}</td></tr>"
        for bill, amount in facts.allocations
    )
    if facts.advance > 0:
        rows += f"<tr><td>advance</td><td>{facts.advance} {escape(facts.currency)}</td></tr>"
    by = f"<p>Entered by {escape(facts.entered_by)}</p>" if facts.entered_by else ""
    reference = f" ({escape(facts.reference)})" if facts.reference else ""
    return (
        f"<article class='receipt'><h1>Receipt {facts.receipt_number}</h1>"
        f"<p>{escape(facts.consumer_id)} {escape(facts.consumer_name)}</p>"
        f"<p>{facts.amount} {escape(facts.currency)} by {escape(facts.method)}{reference}, "
        f"received {facts.received_at.isoformat()}</p>{by}"
        f"<table><tbody>{rows}</tbody></table>"
        f"<p>Balance: {escape(_balance_words(facts))}</p></article>"
    )
