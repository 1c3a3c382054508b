"""The Delhi (DERC) and Nepal (NEA) domestic tariffs under examples/tariffs/.

Bills worked by hand from the published schedule (arithmetic beside every expected number),
including a tariff change inside a period.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tariff_examples import amounts, slab_bill

from meterhub.billing.calculate import Bill, Connection

# ----------------------------------------------------------------------------- DERC (Delhi)


def test_derc_month_3kw_567kwh_fy2018_19() -> None:
    bill = slab_bill(
        "derc-domestic", date(2019, 7, 1), date(2019, 8, 1), "567", Connection(Decimal(3))
    )
    assert amounts(bill) == [
        ("energy", "600.00"),  # 200 * 3.00
        ("energy", "900.00"),  # 200 * 4.50
        ("energy", "1085.50"),  # 167 * 6.50
        ("fixed", "420.00"),  # 3 kW in the >2-5 kW band: 3 * 140
        ("surcharge", "240.44"),  # 8% of (2585.50 + 420.00 = 3005.50) = 240.44
        ("pension-trust", "114.21"),  # 3.8% of 3005.50 = 114.209
        ("electricity-duty", "168.01"),  # 5% of (3005.50 + 240.44 + 114.21 = 3360.15) = 168.0075
        ("rounding", "-0.16"),  # 3360.15 + 168.01 = 3528.16, payable in whole rupees
    ]
    assert bill.total == Decimal("3528")


def test_derc_fy2019_20_fixed_charge_bands() -> None:
    bill = slab_bill(
        "derc-domestic", date(2019, 9, 1), date(2019, 10, 1), "150", Connection(Decimal("1.5"))
    )
    # 150 * 3.00 = 450.00; 1.5 kW in the <=2 kW band: 1.5 * 20 = 30.00; base 480.00
    # 8% = 38.40; 3.8% = 18.24; duty 5% of (480 + 38.40 + 18.24 = 536.64) = 26.832 -> 26.83
    # 536.64 + 26.83 = 563.47 -> 563
    assert bill.amount_of("fixed") == Decimal("30.00")
    assert bill.total == Decimal("563")


def test_derc_order_change_on_1_august_2019_prorated_by_days() -> None:
    # 17 July - 15 August 2019: 15 days under FY 2018-19, 15 under FY 2019-20. 600 kWh shared
    # by days: 300 kWh each; monthly slabs scaled by 15/30: 100 / 200 / 400 / 600 kWh.
    bill = slab_bill(
        "derc-domestic", date(2019, 7, 17), date(2019, 8, 16), "600", Connection(Decimal(3))
    )
    assert amounts(bill) == [
        # FY 2018-19 part
        ("energy", "300.00"),  # 100 * 3.00
        ("energy", "450.00"),  # 100 * 4.50
        ("energy", "650.00"),  # 100 * 6.50
        ("fixed", "210.00"),  # 3 kW * 140 * 15/30
        ("surcharge", "128.80"),  # 8% of 1610.00
        ("pension-trust", "61.18"),  # 3.8% of 1610.00
        ("electricity-duty", "90.00"),  # 5% of (1610 + 128.80 + 61.18 = 1799.98) = 89.999
        # FY 2019-20 part
        ("energy", "300.00"),
        ("energy", "450.00"),
        ("energy", "650.00"),
        ("fixed", "75.00"),  # 3 kW * 50 * 15/30
        ("surcharge", "118.00"),  # 8% of 1475.00
        ("pension-trust", "56.05"),  # 3.8% of 1475.00
        ("electricity-duty", "82.45"),  # 5% of (1475 + 118 + 56.05 = 1649.05) = 82.4525
        ("rounding", "-0.48"),  # 1889.98 + 1731.50 = 3621.48 -> 3621
    ]
    assert bill.total == Decimal("3621")
    assert [line.effective_from for line in bill.lines[:1] + bill.lines[7:8]] == [
        date(2018, 4, 1),
        date(2019, 8, 1),
    ]


# ----------------------------------------------------------------------------- NEA (Nepal)


def nea(kwh: str, amperes: int | None, start: date = date(2024, 1, 1)) -> Bill:
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    bill: Bill = slab_bill("nea-domestic", start, end, kwh, Connection(amperes=amperes))
    return bill


def test_nea_15a_100kwh() -> None:
    bill = nea("100", 15)
    # 20 * 4.00 + 10 * 6.50 + 20 * 8.00 + 50 * 9.50 = 80 + 65 + 160 + 475 = 780.00
    # minimum charge, 15 A, 51-150 kWh block: 125.00;  780 + 125 = 905.00
    assert bill.amount_of("energy") == Decimal("780.00")
    assert bill.amount_of("minimum-charge") == Decimal("125.00")
    assert bill.total == Decimal("905.00")


def test_nea_5a_within_first_block_pays_only_the_minimum_charge() -> None:
    bill = nea("15", 5)
    # 15 * 0.00 = 0.00; minimum charge, 5 A, 0-20 kWh: 30.00
    assert amounts(bill) == [("energy-5a", "0.00"), ("minimum-charge", "30.00")]
    assert bill.total == Decimal("30.00")


def test_nea_60a_500kwh_every_block() -> None:
    bill = nea("500", 60)
    # 20*6 + 10*6.5 + 20*8 + 100*9.5 + 100*9.5 + 150*10 + 100*11
    # = 120 + 65 + 160 + 950 + 950 + 1500 + 1100 = 4845.00; minimum (60 A, >400 kWh) 275.00
    assert bill.total == Decimal("5120.00")  # 4845 + 275


def test_nea_ampere_rating_is_required() -> None:
    from meterhub.billing.tariff import TariffGap

    with pytest.raises(TariffGap, match="ampere rating"):
        nea("100", None)


def test_nea_schedule_change_inside_the_period() -> None:
    # 2 - 31 July 2021 (30 days), new schedule from 17 July: 15 days each. 40 kWh -> 20 kWh per
    # part; blocks scaled by 15/30: 10 / 15 / 25 / 75 / ... kWh.
    bill = slab_bill(
        "nea-domestic", date(2021, 7, 2), date(2021, 8, 1), "40", Connection(amperes=5)
    )
    assert amounts(bill) == [
        ("energy-5a", "30.00"),  # 10 * 3.00 (old schedule)
        ("energy-5a", "32.50"),  # 5 * 6.50
        ("energy-5a", "40.00"),  # 5 * 8.00
        ("minimum-charge", "37.50"),  # 20 kWh is in the 31-50 block scaled (15-25]: 75 * 15/30
        ("energy-5a", "0.00"),  # 10 * 0.00 (new schedule)
        ("energy-5a", "32.50"),
        ("energy-5a", "40.00"),
        ("minimum-charge", "37.50"),
    ]
    assert bill.total == Decimal("250.00")  # 140.00 + 110.00
    assert bill.payment_terms is not None
    assert bill.payment_terms.prompt_payment_rebate_percent == Decimal(2)
