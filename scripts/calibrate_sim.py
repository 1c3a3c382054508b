"""Calibrate the simulator's household load model on the Low Carbon London 2013 data.

Reads ``lcl_2013_hh_wide.csv.gz`` and ``households.csv`` (see the dataset's README.md) and writes
``src/meterhub/sim/profiles.json``: the normalised mean daily shape per (month, weekday/weekend,
local half-hour), the day-energy ratio and monthly share of annual energy, the annual-kWh
distribution (log-normal fit and quantiles) and the noise of one home's half-hourly values around
its expected shape. The simulator reads only that JSON file, never the dataset.

Run: .venv/bin/python scripts/calibrate_sim.py [DATASET_DIR] [OUTPUT_JSON]
"""

from __future__ import annotations

import calendar
import math
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import polars as pl

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "lcl_london_2013"
DEFAULT_OUTPUT = REPO / "src" / "meterhub" / "sim" / "profiles.json"
# Households with at least this many of 2013's 17,520 half-hours are "well covered": their
# kwh_2013 is a true annual total, not a partial year.
MIN_HALFHOURS = 17_000
YEAR = 2013
SOURCE = (
    "UK Power Networks, Low Carbon London, SmartMeter Energy Consumption Data in London "
    "Households (London Datastore, OGL v2.0); 1,067-household 2013 subset lcl_london_2013"
)


def daytype(weekday: int) -> int:
    """0 for Monday-Friday, 1 for Saturday-Sunday (Python weekday numbering)."""
    return 1 if weekday >= 5 else 0


def days_per_month_daytype(year: int) -> list[list[int]]:
    counts = [[0, 0] for _ in range(12)]
    for month in range(1, 13):
        for day in range(1, calendar.monthrange(year, month)[1] + 1):
            counts[month - 1][daytype(date(year, month, day).weekday())] += 1
    return counts


def load_long(dataset: Path, homes: pl.DataFrame) -> pl.DataFrame:
    """One row per (household, half-hour) in Europe/London local time, well-covered homes only."""
    wide = pl.read_csv(dataset / "lcl_2013_hh_wide.csv.gz", infer_schema_length=1000)
    wide = wide.join(homes.select("LCLid", "kwh_2013"), on="LCLid", how="inner")
    hh_columns = [f"hh_{k}" for k in range(48)]
    long = wide.unpivot(
        index=["LCLid", "day", "kwh_2013"], on=hh_columns, variable_name="hh", value_name="kwh"
    ).drop_nulls("kwh")
    # The readings are on a GMT clock all year; people live by the local clock (BST in summer).
    ts = (
        pl.col("day").str.to_date().cast(pl.Datetime("us"))
        + pl.duration(minutes=pl.col("hh").str.slice(3).cast(pl.Int32) * 30)
    ).dt.replace_time_zone("UTC")
    local = ts.dt.convert_time_zone("Europe/London")
    return long.with_columns(local.alias("local")).select(
        "LCLid",
        "kwh",
        "kwh_2013",
        local.dt.date().alias("local_day"),
        local.dt.month().alias("month"),
        (local.dt.weekday() >= 6).cast(pl.Int32).alias("daytype"),  # polars: Monday=1
        (local.dt.hour() * 2 + local.dt.minute() // 30).alias("slot"),
    )


def calibrate(dataset: Path) -> dict[str, Any]:
    homes = pl.read_csv(dataset / "households.csv").filter(
        (pl.col("halfhours_present") >= MIN_HALFHOURS) & (pl.col("kwh_2013") > 0)
    )
    annual = homes["kwh_2013"]
    logs = annual.log()
    mu, sigma = float(logs.mean()), float(logs.std())  # type: ignore[arg-type]
    quantiles = {
        f"p{int(q * 100):02d}": round(float(annual.quantile(q)), 1)  # type: ignore[arg-type]
        for q in (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
    }

    long = load_long(dataset, homes)
    mean = (
        long.group_by("month", "daytype", "slot")
        .agg(pl.col("kwh").mean().alias("kwh"))
        .sort("month", "daytype", "slot")
    )
    table = {
        (int(m), int(d), int(s)): float(k)
        for m, d, s, k in mean.select("month", "daytype", "slot", "kwh").iter_rows()
    }
    counts = days_per_month_daytype(YEAR)
    daily = [[sum(table[(m + 1, d, s)] for s in range(48)) for d in range(2)] for m in range(12)]
    annual_mean_home = sum(daily[m][d] * counts[m][d] for m in range(12) for d in range(2))
    mean_day = annual_mean_home / 365
    shape = [
        [[round(table[(m + 1, d, s)] / daily[m][d], 6) for s in range(48)] for d in range(2)]
        for m in range(12)
    ]
    day_ratio = [[round(daily[m][d] / mean_day, 5) for d in range(2)] for m in range(12)]
    month_share = [
        round(sum(daily[m][d] * counts[m][d] for d in range(2)) / annual_mean_home, 5)
        for m in range(12)
    ]

    # Noise: each reading divided by what the model expects for that home and half-hour.
    expected = pl.DataFrame(
        [
            {"month": m + 1, "daytype": d, "slot": s, "factor": day_ratio[m][d] * shape[m][d][s]}
            for m in range(12)
            for d in range(2)
            for s in range(48)
        ],
        schema={"month": pl.Int8, "daytype": pl.Int32, "slot": pl.Int8, "factor": pl.Float64},
    )
    ratios = (
        long.join(
            expected.with_columns(pl.col("month").cast(long.schema["month"])).with_columns(
                pl.col("slot").cast(long.schema["slot"])
            ),
            on=["month", "daytype", "slot"],
        )
        .with_columns((pl.col("kwh") / (pl.col("kwh_2013") / 365 * pl.col("factor"))).alias("r"))
        .sort("LCLid", "local_day", "slot")
    )
    cv = float(ratios["r"].std())  # type: ignore[arg-type]
    positive = ratios.filter(pl.col("r") > 0).with_columns(pl.col("r").log().alias("z"))
    sigma_log = float(positive["z"].std())  # type: ignore[arg-type]
    lagged = positive.with_columns(pl.col("z").shift(1).over("LCLid", "local_day").alias("z_prev"))
    rho = float(
        lagged.drop_nulls("z_prev").select(pl.corr("z", "z_prev")).item()  # same home-day pairs
    )
    fleet_shape = long.group_by("slot").agg(pl.col("kwh").mean()).sort("slot")["kwh"].to_list()
    return {
        "source": SOURCE,
        "command": "python scripts/calibrate_sim.py",
        "year": YEAR,
        "households": homes.height,
        "readings": long.height,
        "clock": "Europe/London local time; slot = local half-hour of the day (0 = 00:00-00:30)",
        "normalisation": (
            "expected kWh in a half-hour = annual_kwh / 365 * day_ratio[m][d] * shape[m][d][slot]; "
            "shape sums to 1 over the 48 slots of each (month, daytype); day_ratio is that "
            "day-type-month's mean daily energy over the annual mean day; daytype 0 = Mon-Fri, "
            "1 = Sat-Sun; month index 0 = January"
        ),
        "shape": shape,
        "day_ratio": day_ratio,
        "month_share": month_share,
        "annual_kwh": {
            "distribution": "lognormal",
            "mu": round(mu, 5),
            "sigma": round(sigma, 5),
            "median": round(float(annual.median()), 1),  # type: ignore[arg-type]
            "quantiles": quantiles,
        },
        "noise": {
            "cv": round(cv, 4),
            "sigma_log": round(sigma_log, 4),
            "lag1_autocorrelation_log": round(rho, 4),
            "meaning": "reading / expected for its home and half-hour: CV, and of its log "
            "(non-zero readings) the standard deviation and lag-1 autocorrelation",
        },
        "fleet_mean_daily_shape_kwh": [round(float(v), 5) for v in fleet_shape],
    }


def main() -> None:
    dataset = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATASET
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUTPUT
    profile = calibrate(dataset)
    output.write_bytes(orjson.dumps(profile) + b"\n")
    noise = profile["noise"]
    print(
        f"households={profile['households']} readings={profile['readings']} "
        f"annual median={profile['annual_kwh']['median']} kWh "
        f"mu={profile['annual_kwh']['mu']} sigma={profile['annual_kwh']['sigma']} "
        f"cv={noise['cv']} sigma_log={noise['sigma_log']} "
        f"rho={noise['lag1_autocorrelation_log']} -> {output} ({output.stat().st_size} bytes)"
    )
    if not math.isfinite(noise["cv"]):
        raise SystemExit("noise level is not finite")


if __name__ == "__main__":
    main()
