"""Billing: tariffs as data (``tariff``), determinants from intervals (``determinants``) and a
pure, exact bill calculation (``calculate``). Bill runs, documents and payments build on these."""

from meterhub.billing.calculate import Bill, BillLine, Connection, calculate_bill
from meterhub.billing.determinants import (
    Determinants,
    compute_determinants,
    determinants_from_totals,
)
from meterhub.billing.tariff import (
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
    "Connection",
    "Determinants",
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
