"""`meterhub bill quote`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import typer
from typer.testing import CliRunner

from meterhub.cli.bill import register

ROOT = Path(__file__).resolve().parents[2]
TARIFFS = ROOT / "examples" / "tariffs"
USAGE = ROOT / "tests" / "fixtures" / "usage"


def app() -> typer.Typer:
    application = typer.Typer()
    application.command("noop")(lambda: None)
    register(application)
    return application


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app(), ["bill", "quote", *args])
    return result.exit_code, result.stdout, result.stderr


def test_quote_prints_json_lines_and_total() -> None:
    code, out, _ = run(
        "--tariff", str(TARIFFS / "uk-economy7-price-cap.yaml"),
        "--usage", str(USAGE / "uk-1kw-2024-03-17-to-04-15.csv"),
    )  # fmt: skip
    assert code == 0
    bill = json.loads(out)
    assert bill["total"] == "218.65"  # worked in test_tariff_pge_uk.py (Flexible Octopus E7)
    assert bill["period"] == {"from": "2024-03-17", "to": "2024-04-15"}
    assert sum(Decimal(line["amount"]) for line in bill["lines"]) == Decimal(bill["total"])
    assert bill["energy_by_window"] == {"all/day": "509.000", "all/night": "210.000"}


def test_quote_with_export_from_to_and_amperes() -> None:
    # One Kathmandu day: 24 kWh import, 8 kWh export (0.5 kWh per quarter hour, 10:00-14:00).
    # NEA has no net metering: export is reported, not priced. 15 A, 1 day of a 30-day cycle,
    # schedule of 2021-11-17: slabs scaled by 1/30 (0.667 / 1 / 1.667 / 3.333 / 5 / 8.333 /
    # 13.333 kWh): 0.667*4 + 0.333*6.5 + 0.667*8 + 1.667*9.5 + 1.667*9.5 + 3.333*9.5 + 5*11 +
    # 10.667*11 = 2.67 + 2.17 + 5.33 + 15.83 + 15.83 + 31.67 + 55.00 + 117.33 = 245.83;
    # minimum (15 A, above 400 kWh a month) 175/30 = 5.83
    code, out, err = run(
        "--tariff", str(TARIFFS / "nea-domestic.yaml"),
        "--usage", str(USAGE / "ktm-solar-2024-06-01.csv"),
        "--amperes", "15", "--from", "2024-06-01", "--to", "2024-06-01", "--cycle-days", "30",
    )  # fmt: skip
    assert code == 0, err
    bill = json.loads(out)
    assert bill["import_kwh"] == "24.000"
    assert bill["export_kwh"] == "8.000"
    assert bill["total"] == "251.66"  # 245.83 + 5.83


def test_invalid_tariff_exits_2_naming_field_and_reason(tmp_path: Path) -> None:
    text = (TARIFFS / "nea-domestic.yaml").read_text().replace("currency: NPR", "currency: rupees")
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("timezone: Asia/Kathmandu", "timezone: Asia/Atlantis"))
    code, _, err = run("--tariff", str(broken), "--usage", str(USAGE / "ktm-solar-2024-06-01.csv"))
    assert code == 2
    assert "currency: String should match pattern" in err
    assert "timezone: Value error, unknown time zone 'Asia/Atlantis'" in err


def test_missing_price_is_an_error_not_a_zero() -> None:
    code, _, err = run(
        "--tariff", str(TARIFFS / "nea-domestic.yaml"),
        "--usage", str(USAGE / "ktm-solar-2024-06-01.csv"),
    )  # fmt: skip
    assert code == 1
    assert "ampere rating" in err


def test_bad_usage_row_names_the_row(tmp_path: Path) -> None:
    usage = tmp_path / "u.csv"
    usage.write_text("start,import_kwh\n2024-06-01T00:00:00,1\n")
    code, _, err = run("--tariff", str(TARIFFS / "nea-domestic.yaml"), "--usage", str(usage))
    assert code == 2
    assert "row 2: start needs a UTC offset" in err
