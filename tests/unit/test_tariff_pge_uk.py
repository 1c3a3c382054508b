"""The PG&E E-TOU-C and UK Economy 7 tariffs under examples/tariffs/.

Bills worked by hand from the published schedule (arithmetic beside every expected number),
including a tariff change inside a period.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from tariff_examples import USAGE, amounts, tariff

from meterhub.billing.core.calculate import Supply, calculate_bill
from meterhub.billing.core.determinants import compute_determinants
from meterhub.billing.core.tariff import TariffGap
from meterhub.billing.quote import quote, read_usage_csv
from meterhub.readings.intervals import Interval
from meterhub.readings.model import Quality

# ----------------------------------------------------------------------------- PG&E E-TOU-C
# Rates from PG&E's residential rate tables (Res_Inclu_TOU_*.xlsx, E-TOU-C rows), territory T:
# see the header of examples/tariffs/pge-e-tou-c.yaml for the sources of every figure.


def one_kw(zone: ZoneInfo, first: date, last: date) -> list[Interval]:
    """A constant 1 kW load in 15-minute intervals over the local days ``first``..``last``."""
    at = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=zone).astimezone(UTC)
    intervals = []
    while at < end + timedelta(days=1):
        intervals.append(Interval("m", at, 900, 0.25, 0.0, Quality.ACTUAL))
        at += timedelta(minutes=15)
    return intervals


def test_pge_change_on_1_march_2025_inside_a_winter_period_across_dst() -> None:
    # 14 Feb - 15 Mar 2025 (30 local days) at a constant 1 kW. 9 March has 23 hours (DST), so
    # 719 kWh; peak 4-9 p.m. every day: 30 * 5 = 150 kWh, off-peak 569 kWh. All winter. The
    # 1 March 2025 rate change splits the period 15/15 days: 75 peak and 284.5 off-peak kWh
    # each, and a winter baseline of 7.5 kWh/day * 15 days = 112.5 kWh each.
    t = tariff("pge-e-tou-c")
    determinants, bill = quote(
        t,
        read_usage_csv(USAGE / "pge-1kw-2025-02-14-to-03-15.csv"),
        Supply(),
    )
    assert determinants.import_kwh == Decimal("719.000000")
    assert determinants.energy_by_bin == {
        ("winter", "peak"): Decimal("150.000000"),
        ("winter", "off-peak"): Decimal("569.000000"),
    }
    assert amounts(bill) == [
        # Rates of 1 January 2025 (Res_Inclu_TOU_250101-250228)
        ("energy", "131.76"),  # off-peak 284.5 * 0.46312 = 131.75764
        ("energy", "36.98"),  # peak 75 * 0.49312 = 36.984
        ("baseline-credit-winter", "-11.40"),  # 112.5 * -0.10135 = -11.401875
        ("baseline-credit-winter", "0.00"),  # the rest, 359.5 - 112.5 = 247 kWh, at 0
        # Rates of 1 March 2025 (Res_Inclu_TOU_250301-250831)
        ("energy", "133.96"),  # 284.5 * 0.47086 = 133.95967
        ("energy", "37.56"),  # 75 * 0.50086 = 37.5645
        ("baseline-credit-winter", "-11.59"),  # 112.5 * -0.10301 = -11.588625
        ("baseline-credit-winter", "0.00"),
        # No minimum line: 157.34 > 15 * 0.39167 = 5.88 and 159.93 > 15 * 0.40317 = 6.05
    ]
    assert bill.total == Decimal("317.27")  # (131.76 + 36.98 - 11.40) + (133.96 + 37.56 - 11.59)


def test_pge_change_on_1_september_2025_inside_a_summer_period() -> None:
    # 17 Aug - 15 Sep 2025 (30 local days, no DST change) at 1 kW: 720 kWh, peak 150 and
    # off-peak 570, all summer. 1 September 2025 splits it 15/15: 75 peak and 285 off-peak kWh
    # each, and a summer baseline of 6.5 kWh/day * 15 days = 97.5 kWh each.
    t = tariff("pge-e-tou-c")
    usage = one_kw(t.zone, date(2025, 8, 17), date(2025, 9, 15))
    bill = calculate_bill(compute_determinants(usage, t, date(2025, 8, 17), date(2025, 9, 16)), t)
    assert amounts(bill) == [
        # Rates of 1 March 2025 (Res_Inclu_TOU_250301-250831)
        ("energy", "143.27"),  # off-peak 285 * 0.50269 = 143.26665
        ("energy", "46.93"),  # peak 75 * 0.62569 = 46.92675
        ("baseline-credit-summer", "-10.04"),  # 97.5 * -0.10301 = -10.043475
        ("baseline-credit-summer", "0.00"),  # 360 - 97.5 = 262.5 kWh at 0
        # Rates of 1 September 2025 (Res_Inclu_TOU_250901-251231)
        ("energy", "140.10"),  # 285 * 0.49157 = 140.09745
        ("energy", "46.09"),  # 75 * 0.61457 = 46.09275
        ("baseline-credit-summer", "-9.83"),  # 97.5 * -0.10084 = -9.8319
        ("baseline-credit-summer", "0.00"),
    ]
    assert bill.total == Decimal("356.52")  # (143.27 + 46.93 - 10.04) + (140.10 + 46.09 - 9.83)


def test_pge_minimum_delivery_charge_per_day() -> None:
    t = tariff("pge-e-tou-c")
    # One kWh off-peak in March 2025 (31 days).
    one = Interval("m", datetime(2025, 3, 5, 11, tzinfo=UTC), 900, 1.0, 0.0, Quality.ACTUAL)
    bill = calculate_bill(compute_determinants([one], t, date(2025, 3, 1), date(2025, 4, 1)), t)
    assert amounts(bill) == [
        ("energy", "0.47"),  # 1 * 0.47086
        ("baseline-credit-winter", "-0.10"),  # 1 * -0.10301
        ("minimum-charge", "12.13"),  # 0.40317 * 31 = 12.49827, less 0.37 billed = 12.12827
    ]
    assert bill.total == Decimal("12.50")  # 0.47 - 0.10 + 12.13: the 31-day minimum, rounded


def test_pge_dates_before_the_first_sourced_rates_are_not_priced() -> None:
    # The file starts at PG&E's rates of 1 January 2025: a 2024 bill is a gap, never a guess.
    t = tariff("pge-e-tou-c")
    one = Interval("m", datetime(2024, 12, 5, 11, tzinfo=UTC), 900, 1.0, 0.0, Quality.ACTUAL)
    with pytest.raises(TariffGap):
        calculate_bill(compute_determinants([one], t, date(2024, 12, 1), date(2025, 1, 1)), t)


# ----------------------------------------------------------------------------- UK Economy 7


def test_uk_economy7_price_cap_change_on_1_april_across_bst() -> None:
    # Flexible Octopus Economy 7, region A, direct debit (prices in pence including VAT).
    # 17 Mar - 15 Apr 2024 (30 local days); BST from 31 March, so 719 kWh at 1 kW. Night hours
    # are 00:30-07:30 UTC (01:30-08:30 in BST) on all 30 UTC dates: 210 kWh; day 509 kWh.
    # Prices changed on 1 April 2024 (the cap's quarter day): 15 days each side, so 254.5 day
    # and 105 night kWh in each part.
    t = tariff("uk-economy7-price-cap")
    determinants, bill = quote(
        t, read_usage_csv(USAGE / "uk-1kw-2024-03-17-to-04-15.csv"), Supply()
    )
    assert determinants.energy_by_bin == {
        ("all", "night"): Decimal("210.000000"),
        ("all", "day"): Decimal("509.000000"),
    }
    assert amounts(bill) == [
        ("energy", "94.64"),  # day 254.5 * 0.371847 = 94.6350615
        ("energy", "16.38"),  # night 105 * 0.155988 = 16.37874
        ("standing-charge", "6.30"),  # 15 days * 0.420105 = 6.301575 (figure NOT SURE)
        ("energy", "80.19"),  # day 254.5 * 0.315084 = 80.188878
        ("energy", "13.88"),  # night 105 * 0.132174 = 13.87827
        ("standing-charge", "7.26"),  # 15 * 0.483945 = 7.259175
    ]
    assert bill.total == Decimal("218.65")  # (94.64 + 16.38 + 6.30) + (80.19 + 13.88 + 7.26)


def test_uk_economy7_night_is_00_30_to_07_30_utc_in_winter_and_in_summer() -> None:
    # The smart-meter Economy 7 period is fixed on UTC: 00:30-07:30 GMT in January and
    # 01:30-08:30 BST in June. 1, 2, 4 and 8 kWh at 00:15, 00:30, 07:15 and 07:30 UTC: night is
    # 00:30 and 07:15 (2 + 4 = 6 kWh), day is 00:15 and 07:30 (1 + 8 = 9 kWh). A window read on
    # the local clock in June, or one of 00:00-07:00, would give night 3 and day 12.
    t = tariff("uk-economy7-price-cap")
    for day in (date(2024, 1, 10), date(2024, 6, 10)):
        usage = [
            Interval("m", datetime.combine(day, at, UTC), 900, kwh, 0.0, Quality.ACTUAL)
            for at, kwh in (
                (time(0, 15), 1.0),
                (time(0, 30), 2.0),
                (time(7, 15), 4.0),
                (time(7, 30), 8.0),
            )
        ]
        d = compute_determinants(usage, t, day, day + timedelta(days=1))
        assert d.energy_by_bin == {
            ("all", "night"): Decimal("6.000000"),
            ("all", "day"): Decimal("9.000000"),
        }, day


def test_pge_dates_after_the_schedule_was_replaced_are_not_priced() -> None:
    # From 1 March 2026 the minimum became the Base Services Charge, which the file does not
    # model: effective_until refuses the dates instead of pricing them on the January rates.
    t = tariff("pge-e-tou-c")
    assert t.version_on(date(2026, 2, 28)).effective_from == date(2026, 1, 1)
    with pytest.raises(TariffGap, match="2026-03-01"):
        t.split(date(2026, 2, 15), date(2026, 3, 15))
