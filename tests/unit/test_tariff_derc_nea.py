"""The Delhi (DERC) and Nepal (NEA) domestic tariffs under examples/tariffs/.

Bills worked by hand from the published schedules (the sources are in each file's header),
arithmetic beside every expected number, including a tariff change inside a period.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from tariff_examples import amounts, slab_bill

from meterhub.billing.core.calculate import Bill, Supply
from meterhub.billing.core.tariff import TariffGap

# ----------------------------------------------------------------------------- DERC (Delhi)


def derc(start: date, end: date, kwh: str, kw: str) -> Bill:
    bill: Bill = slab_bill("derc-domestic", start, end, kwh, Supply(Decimal(kw)))
    return bill


def test_derc_fy2018_19_month_3kw_567kwh() -> None:
    bill = derc(date(2019, 7, 1), date(2019, 8, 1), "567", "3")
    assert amounts(bill) == [
        ("energy", "600.00"),  # 200 * 3.00
        ("energy", "900.00"),  # 200 * 4.50
        ("energy", "1085.50"),  # 167 * 6.50
        ("fixed", "420.00"),  # 3 kW is in the >2-5 kW band: 3 * 140
        ("surcharge", "240.44"),  # 8% of (2585.50 + 420.00 = 3005.50) = 240.44
        ("pension-trust", "114.21"),  # 3.8% of 3005.50 = 114.209
        ("electricity-tax", "168.01"),  # 5% of (3005.50 + 240.44 + 114.21 = 3360.15) = 168.0075
        ("rounding", "-0.16"),  # 3360.15 + 168.01 = 3528.16, payable in whole rupees
    ]
    assert bill.total == Decimal("3528")


def test_derc_fy2018_19_above_1200_units_at_7_75() -> None:
    bill = derc(date(2019, 6, 1), date(2019, 7, 1), "1300", "7")
    # 200*3.00 + 200*4.50 + 400*6.50 + 400*7.00 + 100*7.75 = 600 + 900 + 2600 + 2800 + 775
    assert bill.amount_of("energy") == Decimal("7675.00")
    assert bill.amount_of("fixed") == Decimal("1225.00")  # 7 kW in >5-15 kW: 7 * 175
    # base 8900.00; 8% = 712.00; 3.8% = 338.20; tax 5% of (8900 + 712 + 338.20 = 9950.20) =
    # 497.51; 9950.20 + 497.51 = 10447.71 -> 10448
    assert bill.amount_of("electricity-tax") == Decimal("497.51")
    assert bill.total == Decimal("10448")


def test_derc_fy2019_20_small_load() -> None:
    bill = derc(date(2019, 9, 1), date(2019, 10, 1), "150", "1.5")
    # 150 * 3.00 = 450.00; 1.5 kW in the <=2 kW band: 1.5 * 20 = 30.00; base 480.00
    # 8% = 38.40; 3.8% = 18.24; tax 5% of (480 + 38.40 + 18.24 = 536.64) = 26.832 -> 26.83
    # 536.64 + 26.83 = 563.47 -> 563
    assert bill.amount_of("fixed") == Decimal("30.00")
    assert bill.total == Decimal("563")


@pytest.mark.parametrize(
    ("kw", "fixed"),
    [
        ("2", "40.00"),  # band limits are inclusive: 2 kW is "upto 2 kW", 2 * 20
        ("5", "250.00"),  # ">2 kW and <=5 kW": 5 * 50
        ("6", "600.00"),  # ">5 kW and <=15 kW": the whole 6 kW at 100, not 2*20 + 3*50 + 1*100
        ("25", "5000.00"),  # ">15 kW and <=25 kW": 25 * 200
        ("26", "6500.00"),  # ">25 kW": 26 * 250
    ],
)
def test_derc_fy2019_20_whole_load_at_its_bands_rate(kw: str, fixed: str) -> None:
    assert derc(date(2019, 9, 1), date(2019, 10, 1), "0", kw).amount_of("fixed") == Decimal(fixed)


def test_derc_fy2020_21_pension_trust_surcharge_5_percent() -> None:
    bill = derc(date(2020, 10, 1), date(2020, 11, 1), "450", "3")
    assert amounts(bill) == [
        ("energy", "600.00"),  # 200 * 3.00
        ("energy", "900.00"),  # 200 * 4.50
        ("energy", "325.00"),  # 50 * 6.50
        ("fixed", "150.00"),  # 3 kW * 50
        ("surcharge", "158.00"),  # 8% of 1975.00
        ("pension-trust", "98.75"),  # 5% of 1975.00
        ("electricity-tax", "111.59"),  # 5% of (1975 + 158 + 98.75 = 2231.75) = 111.5875
        ("rounding", "-0.34"),  # 2231.75 + 111.59 = 2343.34 -> 2343
    ]


def test_derc_fy2021_22_pension_trust_surcharge_7_percent() -> None:
    bill = derc(date(2021, 11, 1), date(2021, 12, 1), "250", "2")
    # energy 200*3.00 + 50*4.50 = 825.00; fixed 2 kW * 20 = 40.00; base 865.00
    # 8% = 69.20; 7% = 60.55; tax 5% of (865 + 69.20 + 60.55 = 994.75) = 49.7375 -> 49.74
    # 994.75 + 49.74 = 1044.49 -> 1044
    assert bill.amount_of("pension-trust") == Decimal("60.55")
    assert bill.total == Decimal("1044")


def test_derc_order_change_on_1_august_2019_prorated_by_days() -> None:
    # 17 July - 15 August 2019: 15 days under FY 2018-19, 15 under FY 2019-20. 600 kWh shared
    # by days: 300 kWh each; monthly slabs scaled by 15/30: 100 / 200 / 400 / 600 kWh.
    bill = derc(date(2019, 7, 17), date(2019, 8, 16), "600", "3")
    assert amounts(bill) == [
        # FY 2018-19 part
        ("energy", "300.00"),  # 100 * 3.00
        ("energy", "450.00"),  # 100 * 4.50
        ("energy", "650.00"),  # 100 * 6.50
        ("fixed", "210.00"),  # 3 kW * 140 * 15/30
        ("surcharge", "128.80"),  # 8% of 1610.00
        ("pension-trust", "61.18"),  # 3.8% of 1610.00
        ("electricity-tax", "90.00"),  # 5% of (1610 + 128.80 + 61.18 = 1799.98) = 89.999
        # FY 2019-20 part
        ("energy", "300.00"),
        ("energy", "450.00"),
        ("energy", "650.00"),
        ("fixed", "75.00"),  # 3 kW * 50 * 15/30
        ("surcharge", "118.00"),  # 8% of 1475.00
        ("pension-trust", "56.05"),  # 3.8% of 1475.00
        ("electricity-tax", "82.45"),  # 5% of (1475 + 118 + 56.05 = 1649.05) = 82.4525
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
    bill: Bill = slab_bill("nea-domestic", start, end, kwh, Supply(amperes=amperes))
    return bill


def test_nea_2077_5a_50kwh_reproduces_the_published_worked_bill() -> None:
    # ktm2day.com, June 2020: "households consuming 50 units will have to pay Rs 335 in total".
    bill = nea("50", 5, date(2021, 1, 1))
    assert amounts(bill) == [
        ("energy-5a", "60.00"),  # above 10 kWh the first 20 kWh are at 3.00: 20 * 3.00
        ("energy-5a", "65.00"),  # 10 * 6.50
        ("energy-5a", "160.00"),  # 20 * 8.00
        ("free-units-5a", "0.00"),  # 50 kWh is above 10 kWh: nothing waived
        ("minimum-charge", "50.00"),  # 5 A, 31-50 kWh
    ]
    assert bill.total == Decimal("335.00")  # 285 + 50


def test_nea_2077_5a_within_10kwh_pays_only_the_minimum_charge() -> None:
    bill = nea("8", 5, date(2021, 1, 1))
    assert amounts(bill) == [
        ("energy-5a", "24.00"),  # 8 * 3.00
        ("free-units-5a", "-24.00"),  # within 10 kWh: 8 * -3.00
        ("minimum-charge", "30.00"),  # 5 A, 0-20 kWh
    ]
    assert bill.total == Decimal("30.00")


def test_nea_2078_5a_within_20kwh_pays_only_the_minimum_charge() -> None:
    bill = nea("15", 5)
    assert amounts(bill) == [
        ("energy-5a", "45.00"),  # 15 * 3.00
        ("free-units-5a", "-45.00"),  # within 20 kWh: 15 * -3.00
        ("minimum-charge", "30.00"),  # 5 A, 0-20 kWh
    ]
    assert bill.total == Decimal("30.00")


def test_nea_2078_5a_above_20kwh_pays_the_first_block_at_3() -> None:
    bill = nea("25", 5)
    # 20 * 3.00 = 60.00; 5 * 6.50 = 32.50; nothing waived; minimum 5 A, 21-30 kWh: 50.00
    assert bill.amount_of("energy") == Decimal("92.50")
    assert bill.total == Decimal("142.50")  # 92.50 + 50.00


def test_nea_2078_15a_100kwh() -> None:
    bill = nea("100", 15)
    # 20 * 4.00 + 10 * 6.50 + 20 * 8.00 + 50 * 9.50 = 80 + 65 + 160 + 475 = 780.00
    # minimum charge, 15 A, 51-100 kWh block: 100.00;  780 + 100 = 880.00
    assert bill.amount_of("energy") == Decimal("780.00")
    assert bill.amount_of("minimum-charge") == Decimal("100.00")
    assert bill.total == Decimal("880.00")


def test_nea_60a_500kwh_every_block_before_and_after_mangsir_2078() -> None:
    before = nea("500", 60, date(2021, 1, 1))
    # 20*6 + 10*6.5 + 20*8 + 50*9.5 + 50*9.5 + 100*10 + 150*11 + 100*12
    # = 120 + 65 + 160 + 475 + 475 + 1000 + 1650 + 1200 = 5145.00; minimum (60 A, >400) 275
    assert before.total == Decimal("5420.00")  # 5145 + 275
    after = nea("500", 60)
    # 120 + 65 + 160 + 475 + 475 + 100*9.5 + 150*11 + 100*11
    # = 120 + 65 + 160 + 475 + 475 + 950 + 1650 + 1100 = 4995.00; minimum (60 A, >400) 250
    assert after.total == Decimal("5245.00")  # 4995 + 250


def test_nea_ampere_rating_is_required() -> None:
    with pytest.raises(TariffGap, match="ampere rating"):
        nea("100", None)


def test_nea_schedule_change_on_mangsir_1_2078_inside_the_period() -> None:
    # 2 November - 1 December 2021 (30 days), new schedule from 17 November: 15 days each.
    # 16 kWh -> 8 kWh per part; every monthly limit scaled by 15/30: first block 10 kWh, the
    # free-units limit 5 kWh (2020) and 10 kWh (2021), minimum-charge band 0-20 -> 0-10 kWh.
    bill = slab_bill("nea-domestic", date(2021, 11, 2), date(2021, 12, 2), "16", Supply(amperes=5))
    assert amounts(bill) == [
        ("energy-5a", "24.00"),  # 8 * 3.00 (2020 schedule)
        ("free-units-5a", "0.00"),  # 8 kWh is above the 5 kWh free limit
        ("minimum-charge", "15.00"),  # 30 * 15/30
        ("energy-5a", "24.00"),  # 8 * 3.00 (2021 schedule)
        ("free-units-5a", "-24.00"),  # 8 kWh is within the 10 kWh free limit
        ("minimum-charge", "15.00"),  # 30 * 15/30
    ]
    assert bill.total == Decimal("54.00")  # 39.00 + 15.00
    assert [line.effective_from for line in bill.lines[::3]] == [
        date(2020, 6, 15),
        date(2021, 11, 17),
    ]
    assert bill.payment_terms is not None
    assert bill.payment_terms.prompt_payment_rebate_percent == Decimal(2)
