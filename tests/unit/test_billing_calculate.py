"""Bill calculation features on small synthetic tariffs (arithmetic beside each number)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from meterhub.billing.core.calculate import Bill, Supply, calculate_bill
from meterhub.billing.core.determinants import Determinants, determinants_from_totals
from meterhub.billing.core.tariff import Tariff, TariffGap, parse_tariff

JUNE = (date(2024, 6, 1), date(2024, 7, 1))  # 30 days


def make(version: dict[str, Any], **top: Any) -> Tariff:
    document: dict[str, Any] = {
        "schema": "meterhub.tariff/v1",
        "id": "test",
        "name": "test",
        "currency": "XXX",
        "timezone": "UTC",
        "source": {"utility": "test", "document": "test", "date": "2024-01-01"},
        "versions": [{"effective_from": "2020-01-01", **version}],
        **top,
    }
    return parse_tariff(document)


def bill(
    t: Tariff,
    kwh: str,
    supply: Supply | None = None,
    period: tuple[date, date] = JUNE,
    **totals: Any,
) -> Bill:
    determinants = determinants_from_totals(t, period[0], period[1], Decimal(kwh), **totals)
    return calculate_bill(determinants, t, supply)


SLABS = [{"up_to": 100, "rate": "2"}, {"up_to": 300, "rate": "3"}, {"rate": "5"}]


def test_non_telescopic_prices_everything_at_the_reached_slab() -> None:
    t = make({"energy": [{"name": "e", "kind": "non_telescopic", "slabs": SLABS}]})
    assert bill(t, "250").total == Decimal("750.00")  # 250 * 3
    assert bill(t, "301").total == Decimal("1505.00")  # 301 * 5
    assert bill(t, "100").total == Decimal("200.00")  # 100 * 2 (the limit is inclusive)


def test_daily_slabs_are_baseline_allowances() -> None:
    t = make(
        {
            "energy": [
                {
                    "name": "e",
                    "kind": "telescopic",
                    "slab_basis": "day",
                    "slabs": [{"up_to": 10, "rate": "1"}, {"rate": "2"}],
                }
            ]
        }
    )
    assert bill(t, "400").total == Decimal("500.00")  # 10/day * 30 = 300 * 1 + 100 * 2


def test_seasonal_slabs_share_energy_and_days_by_season() -> None:
    t = make(
        {
            "energy": [
                {"name": "summer", "kind": "flat", "rate": "2", "season": "summer"},
                {"name": "winter", "kind": "flat", "rate": "1", "season": "winter"},
            ]
        },
        seasons=[
            {"name": "summer", "start": "06-01", "end": "09-30"},
            {"name": "winter", "start": "10-01", "end": "05-31"},
        ],
    )
    # 16 May - 15 June: 16 winter days, 15 summer days; 310 kWh shared by days: 160 / 150
    b = bill(t, "310", period=(date(2024, 5, 16), date(2024, 6, 16)))
    assert b.total == Decimal("460.00")  # 160 * 1 + 150 * 2


def test_load_bands_whole_and_telescopic() -> None:
    bands = [{"up_to_kw": 2, "rate": "10"}, {"up_to_kw": 5, "rate": "20"}, {"rate": "30"}]
    whole = make({"fixed": [{"name": "f", "basis": "per_kw", "load_bands": bands}]})
    tele = make(
        {
            "fixed": [
                {"name": "f", "basis": "per_kw", "load_bands": bands, "band_method": "telescopic"}
            ]
        }
    )
    load = Supply(sanctioned_load_kw=Decimal(6))
    assert bill(whole, "0", load).total == Decimal("180.00")  # 6 kW in the >5 band: 6 * 30
    assert bill(tele, "0", load).total == Decimal("110.00")  # 2*10 + 3*20 + 1*30
    with pytest.raises(TariffGap, match="sanctioned load"):
        bill(whole, "0")


def test_per_day_per_month_and_move_in_partial_period() -> None:
    t = make(
        {
            "energy": [{"name": "e", "kind": "telescopic", "slabs": SLABS}],
            "fixed": [
                {"name": "meter", "basis": "per_month", "amount": "60"},
                {"name": "service", "basis": "per_day", "amount": "0.5"},
            ],
        }
    )
    full = bill(t, "200")
    assert full.total == Decimal("575.00")  # 100*2 + 100*3 + 60 + 30 * 0.5
    # Move-in on 21 June: 10 days of a 30-day cycle: slabs and the monthly charge scale by 1/3.
    days = determinants_from_totals(t, date(2024, 6, 21), date(2024, 7, 1), Decimal(200))
    partial = calculate_bill(days, t, cycle_days=30)
    # slab limits 33.333... and 100: 33.33.. * 2 = 66.67, 66.67 * 3 = 200.00, 100 * 5 = 500.00
    # meter 60 / 3 = 20.00; service 10 * 0.5 = 5.00
    assert [line.amount for line in partial.lines] == [
        Decimal("66.67"),
        Decimal("200.00"),
        Decimal("500.00"),
        Decimal("20.00"),
        Decimal("5.00"),
    ]
    assert partial.total == Decimal("791.67")


def test_demand_charge_on_the_highest_30_minute_kw() -> None:
    t = make(
        {
            "energy": [{"name": "e", "kind": "flat", "rate": "1"}],
            "demand": [{"name": "d", "window_minutes": 30, "rate": "8"}],
        }
    )
    b = bill(t, "100", max_demand_kw={15: Decimal(9), 30: Decimal("7.5")})
    assert b.amount_of("d") == Decimal("60.00")  # 7.5 kW * 8
    with pytest.raises(TariffGap, match="30-minute demand"):
        bill(t, "100")


def test_minimum_monthly_charge_tops_up() -> None:
    t = make(
        {
            "energy": [{"name": "e", "kind": "flat", "rate": "2"}],
            "minimum_charge": {"amount": "100", "applies_to": ["energy"]},
        }
    )
    assert bill(t, "30").total == Decimal("100.00")  # 60 billed + 40 minimum top-up
    assert bill(t, "80").total == Decimal("160.00")  # above the minimum


def test_taxes_in_stated_order_and_on_earlier_taxes() -> None:
    t = make(
        {
            "energy": [{"name": "e", "kind": "flat", "rate": "1"}],
            "fixed": [{"name": "f", "basis": "per_month", "amount": "50"}],
            "taxes": [
                {"name": "duty", "percent": "10", "applies_to": ["e"]},
                {"name": "vat", "percent": "13", "applies_to": ["energy", "fixed", "duty"]},
            ],
        }
    )
    b = bill(t, "200")
    # duty 10% of 200 = 20.00; VAT 13% of (200 + 50 + 20 = 270) = 35.10
    assert b.amount_of("duty", "vat") == Decimal("55.10")
    assert b.total == Decimal("305.10")


def test_net_metering_net_and_credit() -> None:
    energy = [{"name": "e", "kind": "telescopic", "slabs": SLABS}]
    net = make({"energy": energy, "net_metering": {"method": "net", "export_rate": "1"}})
    credit = make({"energy": energy, "net_metering": {"method": "credit", "export_rate": "1.5"}})
    assert bill(net, "250", export_kwh=Decimal(100)).total == Decimal("350.00")  # 150 net: 200+150
    over = bill(net, "100", export_kwh=Decimal(130))
    assert over.total == Decimal("-30.00")  # nothing to pay, 30 kWh excess * 1
    assert over.excess_export_kwh == Decimal(30)
    # import priced in full (100*2 + 150*3 = 650), export credited: 100 * 1.5 = 150
    assert bill(credit, "250", export_kwh=Decimal(100)).total == Decimal("500.00")


def test_rounding_line_makes_lines_add_up_to_a_whole_total() -> None:
    t = make(
        {"energy": [{"name": "e", "kind": "flat", "rate": "0.333"}]},
        rounding={"line": "0.01", "total": "1", "mode": "half_up"},
    )
    b = bill(t, "10")  # 3.33 -> 3
    assert [line.amount for line in b.lines] == [Decimal("3.33"), Decimal("-0.33")]
    assert sum(line.amount for line in b.lines) == b.total == Decimal(3)


def test_no_version_in_force_is_an_error_not_a_zero() -> None:
    t = make({"energy": [{"name": "e", "kind": "flat", "rate": "1"}]})
    with pytest.raises(TariffGap, match="no version in force"):
        bill(t, "10", period=(date(2019, 12, 20), date(2020, 1, 20)))


def test_tou_tariff_needs_intervals() -> None:
    t = make(
        {"energy": [{"name": "e", "kind": "tou", "rates": [{"window": "off", "rate": "1"}]}]},
        time_of_use={"windows": [], "default_window": "off"},
    )
    with pytest.raises(ValueError, match="intervals are needed"):
        bill(t, "10")
    empty = Determinants(date(2024, 6, 1), date(2024, 7, 1), Decimal(30), Decimal(0))
    assert calculate_bill(empty, t).total == Decimal("0.00")
