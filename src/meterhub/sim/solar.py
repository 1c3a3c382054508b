"""Rooftop solar: a clear-sky-ish bell curve by day of year, time and latitude, with clouds.

Not calibrated on measurements: the sun's elevation comes from the textbook declination and
hour-angle formulas (no equation of time, no refraction), output is proportional to
sin(elevation)^1.2 with a 0.8 performance ratio, and each day draws one cloudiness for the whole
area (clouds are regional) with a small per-interval flicker.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from random import Random

PERFORMANCE_RATIO = 0.8


def sin_elevation(at: datetime, lat: float, lon: float) -> float:
    """Sine of the sun's elevation at an aware instant and place (negative at night)."""
    utc = at.astimezone(UTC)
    doy = utc.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (doy - 81) / 365)
    hours = utc.hour + utc.minute / 60 + utc.second / 3600
    solar_hours = hours + lon / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    phi = math.radians(lat)
    return math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)


def clear_sky_kw_per_kwp(at: datetime, lat: float, lon: float) -> float:
    s = sin_elevation(at, lat, lon)
    return PERFORMANCE_RATIO * float(s**1.2) if s > 0 else 0.0


def draw_cloudiness(rng: Random) -> float:
    """A day's cloudiness, 0 (clear) to 1 (overcast); skewed towards partly cloudy."""
    return float(rng.random() ** 1.5)


def pv_kwh_per_kwp(
    start: datetime, seconds: int, lat: float, lon: float, cloudiness: float, rng: Random
) -> float:
    """Energy one kWp produces in [start, start + seconds), sampled at the interval's middle."""
    middle = start + timedelta(seconds=seconds / 2)
    clear = clear_sky_kw_per_kwp(middle, lat, lon)
    if clear == 0.0:
        return 0.0
    flicker = 1.0 - 0.3 * cloudiness * rng.random()
    return clear * (1.0 - 0.75 * cloudiness) * flicker * seconds / 3600
