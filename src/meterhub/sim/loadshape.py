"""Household load model calibrated on the Low Carbon London 2013 data (see profiles.json).

Expected energy of a home in a half-hour = annual kWh / 365 x day_ratio[month][daytype] x
shape[month][daytype][slot], in the utility's local time. On top of it, multiplicative appliance
noise: a log-normal factor with mean 1 whose log follows an AR(1) process, because appliances run
for more than one interval (a kettle is short, a washing machine is not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from random import Random
from zoneinfo import ZoneInfo

import orjson

PROFILES_PATH = Path(__file__).with_name("profiles.json")
SLOT_SECONDS = 1800


@dataclass(frozen=True, slots=True)
class LoadProfile:
    shape: tuple[tuple[tuple[float, ...], ...], ...]  # [month 0-11][daytype 0-1][slot 0-47]
    day_ratio: tuple[tuple[float, ...], ...]  # [month][daytype]
    annual_mu: float
    annual_sigma: float
    annual_median: float
    noise_sigma: float  # standard deviation of the log of the noise factor (per half-hour)
    noise_rho: float  # lag-1 autocorrelation of that log, half-hour to half-hour


@lru_cache(maxsize=4)
def load_profile(path: Path = PROFILES_PATH) -> LoadProfile:
    raw = orjson.loads(path.read_bytes())
    return LoadProfile(
        shape=tuple(tuple(tuple(slots) for slots in month) for month in raw["shape"]),
        day_ratio=tuple(tuple(month) for month in raw["day_ratio"]),
        annual_mu=raw["annual_kwh"]["mu"],
        annual_sigma=raw["annual_kwh"]["sigma"],
        annual_median=raw["annual_kwh"]["median"],
        noise_sigma=raw["noise"]["sigma_log"],
        noise_rho=raw["noise"]["lag1_autocorrelation_log"],
    )


def draw_annual_kwh(profile: LoadProfile, rng: Random) -> float:
    """A home's yearly kWh, from the fitted log-normal (clipped to 300..30000)."""
    return min(30_000.0, max(300.0, rng.lognormvariate(profile.annual_mu, profile.annual_sigma)))


def daytype(local: datetime) -> int:
    """0 on Monday-Friday, 1 on Saturday-Sunday."""
    return 1 if local.weekday() >= 5 else 0


def expected_fraction(profile: LoadProfile, start: datetime, seconds: int, zone: ZoneInfo) -> float:
    """Expected energy in [start, start + seconds) as a fraction of the home's annual kWh.

    ``start`` is timezone-aware; the calendar (month, weekday, half-hour) is read in ``zone``.
    """
    total = 0.0
    t = start
    end = start + timedelta(seconds=seconds)
    while t < end:
        local = t.astimezone(zone)
        into_slot = (local.minute % 30) * 60 + local.second
        piece = min(SLOT_SECONDS - into_slot, (end - t).total_seconds())
        slot = local.hour * 2 + local.minute // 30
        m, d = local.month - 1, daytype(local)
        total += profile.day_ratio[m][d] * profile.shape[m][d][slot] * piece / SLOT_SECONDS
        t += timedelta(seconds=piece)
    return total / 365.0


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """Appliance noise for one interval length: factor = exp(sigma*z - sigma^2/2), mean 1."""

    rho: float
    innovation: float  # sqrt(1 - rho^2): keeps z standard normal
    sigma: float
    offset: float  # sigma^2 / 2

    def step(self, z: float, normal: float) -> tuple[float, float]:
        """Next (factor, z) from the previous z and a standard normal draw."""
        z = self.rho * z + self.innovation * normal
        return math.exp(self.sigma * z - self.offset), z


def noise_model(profile: LoadProfile, interval_s: int) -> NoiseModel:
    # The calibrated autocorrelation is per half-hour; an interval of another length decays it
    # accordingly, so that the noise has the same memory in minutes whatever the interval.
    rho = profile.noise_rho ** (interval_s / SLOT_SECONDS)
    sigma = profile.noise_sigma
    return NoiseModel(rho, math.sqrt(1.0 - rho * rho), sigma, sigma * sigma / 2.0)
