"""The load model against the real London data it was calibrated on (Low Carbon London 2013)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from zoneinfo import ZoneInfo

import pytest

from conftest import service_missing
from meterhub.sim.loadshape import PROFILES_PATH, expected_fraction, load_profile, noise_model

DATASET = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "lcl_london_2013"
LONDON = ZoneInfo("Europe/London")


def _dataset_or_skip() -> Path:
    if not DATASET.is_dir():
        service_missing(f"the calibration dataset at {DATASET}")
    return DATASET


def simulate_year(annual_kwh: float, seed: int) -> list[float]:
    """Half-hourly kWh of one home through 2013 (London local time), noise included."""
    profile = load_profile()
    noise = noise_model(profile, 1800)
    rng, z, values = Random(seed), 0.0, []
    t = datetime(2013, 1, 1, tzinfo=UTC)
    for _ in range(17_520):
        factor, z = noise.step(z, rng.gauss(0.0, 1.0))
        values.append(annual_kwh * expected_fraction(profile, t, 1800, LONDON) * factor)
        t += timedelta(minutes=30)
    return values


def pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return float(cov / (va * vb) ** 0.5)


def test_profiles_file_is_small_and_says_where_it_comes_from():
    assert PROFILES_PATH.stat().st_size < 100_000
    text = PROFILES_PATH.read_text()
    assert "Low Carbon London" in text and "scripts/calibrate_sim.py" in text


def test_simulated_homes_match_the_london_data_in_daily_shape_and_annual_total():
    import polars as pl

    dataset = _dataset_or_skip()
    homes = pl.read_csv(dataset / "households.csv").filter(pl.col("halfhours_present") >= 17_000)
    data_median = float(homes["kwh_2013"].median())  # type: ignore[arg-type]
    wide = pl.read_csv(dataset / "lcl_2013_hh_wide.csv.gz", infer_schema_length=1000)
    utc_shape = wide.select(pl.col(f"hh_{k}").mean() for k in range(48)).row(0)
    # The data's clock is GMT all year; the model's is local, so compare on the GMT clock too.
    homes_sim = [simulate_year(data_median, seed) for seed in range(3)]
    sim_shape = [0.0] * 48
    t = datetime(2013, 1, 1, tzinfo=UTC)
    for n in range(17_520):
        slot = (t + timedelta(minutes=30 * n)).hour * 2 + (
            t + timedelta(minutes=30 * n)
        ).minute // 30
        sim_shape[slot] += sum(home[n] for home in homes_sim)

    correlation = pearson(sim_shape, list(utc_shape))
    assert correlation > 0.9, correlation
    for home in homes_sim:
        assert sum(home) == pytest.approx(data_median, rel=0.15)
