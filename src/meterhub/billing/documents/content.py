"""What a bill says, as JSON-ready values: the period, the determinants, every line and the
payment terms, Decimals as strings so no amount passes through a float. A bill run freezes this
(with the consumer, the meter and the usage) into the stored bill at issue; ``meterhub bill
quote`` prints it. Pure."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from meterhub.billing.core.calculate import Bill
from meterhub.billing.core.determinants import Determinants


def bill_document(bill: Bill, determinants: Determinants) -> dict[str, Any]:
    """The bill as JSON-ready values: Decimals as strings, so no amount passes through a float."""
    return {
        "tariff": bill.tariff_id,
        "currency": bill.currency,
        "period": {
            "from": bill.start.isoformat(),
            "to": (bill.end - timedelta(days=1)).isoformat(),
        },
        "days": _text(determinants.days),
        "import_kwh": _text(bill.import_kwh.quantize(Decimal("0.001"))),
        "export_kwh": _text(bill.export_kwh.quantize(Decimal("0.001"))),
        "max_demand_kw": {str(m): _text(kw) for m, kw in determinants.max_demand_kw.items()},
        "energy_by_window": {
            f"{season}/{window}": _text(kwh.quantize(Decimal("0.001")))
            for (season, window), kwh in sorted(determinants.energy_by_bin.items())
        },
        "estimated_intervals": bill.estimated_intervals,
        "lines": [
            {
                "code": line.code,
                "kind": line.kind,
                "description": line.description,
                "quantity": None
                if line.quantity is None
                else _text(line.quantity.quantize(Decimal("0.000001")).normalize()),
                "unit": line.unit,
                "rate": None if line.rate is None else _text(line.rate),
                "amount": _text(line.amount),
                "from": None if line.start is None else line.start.isoformat(),
                "to": None if line.end is None else (line.end - timedelta(days=1)).isoformat(),
                "tariff_version": None
                if line.effective_from is None
                else line.effective_from.isoformat(),
            }
            for line in bill.lines
        ],
        "total": _text(bill.total),
        "payment_terms": None
        if bill.payment_terms is None
        else bill.payment_terms.model_dump(mode="json", exclude_defaults=True),
    }


def _text(value: Decimal) -> str:
    return f"{value:f}"
