"""Billing's pure core: plain values in, plain values out; no database, settings, clock or I/O.

Tariffs as data (``tariff``), determinants from intervals (``determinants``), the exact bill
calculation (``calculate``), a period's usage from intervals or packed sums (``period_usage``),
prepaid pricing and supply rules (``prepaid``), late fees, rebates and reminders
(``late_fees``), the ledger's arithmetic (``ledger``), meter and service spans, receipts' text,
bill numbers' form and the stored bill's balance. import-linter holds this package to it.
"""

from meterhub.billing.core.calculate import Bill, BillLine, Supply, calculate_bill
from meterhub.billing.core.determinants import (
    Determinants,
    compute_determinants,
    determinants_from_totals,
)
from meterhub.billing.core.tariff import (
    Tariff,
    TariffGap,
    TariffInvalid,
    TariffProblem,
    TariffVersion,
    load_tariff,
    parse_tariff,
)

__all__ = [
    "Bill",
    "BillLine",
    "Determinants",
    "Supply",
    "Tariff",
    "TariffGap",
    "TariffInvalid",
    "TariffProblem",
    "TariffVersion",
    "calculate_bill",
    "compute_determinants",
    "determinants_from_totals",
    "load_tariff",
    "parse_tariff",
]
