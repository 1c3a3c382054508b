"""Network topology of a simulated fleet: feeders -> transformers -> consumer meters.

Every transformer has a main meter (``TX-0001-MAIN``) that measures what leaves it towards its
consumers; energy balance analytics compare it with the sum of the consumer meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from meterhub.sim.loadshape import LoadProfile, draw_annual_kwh

CONSUMERS_PER_TRANSFORMER = (25, 50)
TRANSFORMERS_PER_FEEDER = 8
TRANSFORMER_SIZES_KVA = (63, 100, 160, 250, 400, 630)
SANCTIONED_LOADS_KW = (3.0, 5.0, 7.0, 10.0, 15.0)
# Scatter of meters around the centre: about 5 km.
SCATTER_DEGREES = 0.045


@dataclass(frozen=True, slots=True)
class Meter:
    meter_id: str
    kind: str  # "consumer" or "main"
    transformer_id: str
    feeder_id: str
    lat: float
    lon: float
    phase: str  # "A", "B", "C" for single-phase consumers, "ABC" for main meters
    sanctioned_load_kw: float
    annual_kwh: float  # 0 for main meters
    pv_kwp: float  # 0 for homes without solar
    pf: float  # typical power factor of the connection


@dataclass(frozen=True, slots=True)
class Transformer:
    transformer_id: str
    feeder_id: str
    rating_kva: int
    main: int  # index of its main meter in Fleet.meters
    consumers: tuple[int, ...]  # indexes in Fleet.meters


@dataclass(frozen=True, slots=True)
class Fleet:
    meters: tuple[Meter, ...]  # consumers first, in id order, then main meters
    transformers: tuple[Transformer, ...]
    consumer_count: int

    def transformer_of(self) -> list[int]:
        """For each consumer meter index, the index of its transformer."""
        owner = [0] * self.consumer_count
        for t, transformer in enumerate(self.transformers):
            for i in transformer.consumers:
                owner[i] = t
        return owner


def _sanctioned_load(annual_kwh: float) -> float:
    # Peak demand of a home is roughly 4-5x its mean power; the connection is sized above that.
    peak_kw = annual_kwh / 8760 * 5
    return next((kw for kw in SANCTIONED_LOADS_KW if kw >= peak_kw * 1.5), SANCTIONED_LOADS_KW[-1])


def build_fleet(
    consumers: int,
    rng: Random,
    profile: LoadProfile,
    centre: tuple[float, float],
    solar_fraction: float = 0.1,
    pv_kwp_range: tuple[float, float] = (3.0, 5.0),
) -> Fleet:
    """A fleet of ``consumers`` consumer meters grouped under transformers, plus main meters."""
    if consumers < 1:
        raise ValueError("a fleet needs at least one consumer meter")
    lat0, lon0 = centre
    sizes: list[int] = []
    remaining = consumers
    while remaining > 0:
        size = min(remaining, rng.randint(*CONSUMERS_PER_TRANSFORMER))
        sizes.append(size)
        remaining -= size
    meters: list[Meter] = []
    groups: list[tuple[str, str, float, float, list[int]]] = []
    for t, size in enumerate(sizes):
        tx_id = f"TX-{t + 1:04d}"
        feeder_id = f"FDR-{t // TRANSFORMERS_PER_FEEDER + 1:02d}"
        tx_lat = lat0 + rng.uniform(-SCATTER_DEGREES, SCATTER_DEGREES)
        tx_lon = lon0 + rng.uniform(-SCATTER_DEGREES, SCATTER_DEGREES)
        members: list[int] = []
        for _ in range(size):
            annual = draw_annual_kwh(profile, rng)
            has_pv = rng.random() < solar_fraction
            members.append(len(meters))
            meters.append(
                Meter(
                    meter_id=f"SIM-{len(meters) + 1:06d}",
                    kind="consumer",
                    transformer_id=tx_id,
                    feeder_id=feeder_id,
                    lat=round(tx_lat + rng.gauss(0, 0.002), 6),
                    lon=round(tx_lon + rng.gauss(0, 0.002), 6),
                    phase="ABC"[rng.randrange(3)],
                    sanctioned_load_kw=_sanctioned_load(annual),
                    annual_kwh=round(annual, 1),
                    pv_kwp=round(rng.uniform(*pv_kwp_range), 1) if has_pv else 0.0,
                    pf=round(rng.uniform(0.88, 0.99), 2),
                )
            )
        groups.append((tx_id, feeder_id, tx_lat, tx_lon, members))
    transformers: list[Transformer] = []
    for tx_id, feeder_id, tx_lat, tx_lon, members in groups:
        # After diversity, a group of homes peaks at about a third of their sanctioned loads.
        peak_kva = sum(meters[i].sanctioned_load_kw for i in members) / 3
        rating = next(
            (s for s in TRANSFORMER_SIZES_KVA if s >= peak_kva), TRANSFORMER_SIZES_KVA[-1]
        )
        main = len(meters)
        meters.append(
            Meter(
                meter_id=f"{tx_id}-MAIN",
                kind="main",
                transformer_id=tx_id,
                feeder_id=feeder_id,
                lat=round(tx_lat, 6),
                lon=round(tx_lon, 6),
                phase="ABC",
                sanctioned_load_kw=float(rating),
                annual_kwh=0.0,
                pv_kwp=0.0,
                pf=0.95,
            )
        )
        transformers.append(Transformer(tx_id, feeder_id, rating, main, tuple(members)))
    return Fleet(tuple(meters), tuple(transformers), consumers)


def initial_registers(fleet: Fleet, rng: Random) -> list[float]:
    """Import registers at the start: meters installed up to five years ago."""
    registers = []
    for meter in fleet.meters:
        yearly = meter.annual_kwh or 35 * 3000.0
        registers.append(round(yearly * rng.uniform(0.05, 5.0), 3))
    return registers
