"""Invalid tariff documents: every problem at once, each naming the field path and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meterhub.billing.core.tariff import TariffInvalid, load_tariff, parse_tariff

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tariffs" / "pge-e-tou-c.yaml"


def problems(document: Any) -> dict[str, str]:
    with pytest.raises(TariffInvalid) as caught:
        parse_tariff(document)
    return {
        problem.field: f"{problem.code}: {problem.message}" for problem in caught.value.problems
    }


def example() -> dict[str, Any]:
    document = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(document, dict)
    return document


def test_structural_problems_name_their_fields() -> None:
    document = example()
    document["currency"] = "dollars"
    document["timezone"] = "Mars/Olympus"
    document["versions"][0]["energy"][0]["rates"][0]["rate"] = "cheap"
    document["versions"][1]["fixed"] = [{"name": "f", "basis": "per_week", "amount": "1"}]
    found = problems(document)
    assert set(found) == {
        "currency",
        "timezone",
        "versions.0.energy.0.rates.0.rate",
        "versions.1.fixed.0.basis",
    }
    assert "unknown time zone" in found["timezone"]
    assert "decimal" in found["versions.0.energy.0.rates.0.rate"]


def test_missing_tou_price_is_an_error_not_a_zero() -> None:
    document = example()
    del document["versions"][1]["energy"][0]["rates"][3]  # winter off-peak
    found = problems(document)
    assert found == {
        "versions.1.energy.0.rates": "missing_price: no rate for season winter, off-peak"
    }


def test_cross_field_problems_are_all_reported() -> None:
    document = example()
    document["seasons"][1]["end"] = "04-30"  # May is in no season
    document["versions"][0]["energy"][1]["slabs"] = [
        {"up_to": 5, "rate": "1"},
        {"up_to": 3, "rate": "1"},
    ]
    document["versions"][0]["minimum_charge"]["applies_to"] = ["energy", "nonesuch"]
    document["versions"][1]["effective_from"] = "2023-01-01"
    found = problems(document)
    assert found["seasons"].startswith("seasons: every day must be in exactly one season")
    assert found["versions.0.energy.1.slabs.1.up_to"].startswith("open_last")
    assert found["versions.0.minimum_charge.applies_to"].startswith("unknown_component")
    assert found["versions.1.effective_from"].startswith("order")


def test_load_tariff_reads_json_and_reports_syntax(tmp_path: Path) -> None:
    import json
    from datetime import date

    document = example()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(document, default=lambda value: value.isoformat()))
    assert load_tariff(path).version_on(date(2025, 6, 1)).effective_from == date(2025, 3, 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text("versions: [\n")
    with pytest.raises(TariffInvalid) as caught:
        load_tariff(broken)
    assert caught.value.problems[0].code == "syntax"


def test_effective_until_must_follow_the_last_version() -> None:
    document = example()
    document["effective_until"] = document["versions"][-1]["effective_from"]
    assert problems(document) == {
        "effective_until": "order: must be after the last version's effective_from"
    }
