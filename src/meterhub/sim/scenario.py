"""Which faults the simulator injects, how often and to whom: data, and the draws that plan them.

Rates:
- ``theft_rate``: fraction of consumer meters that start stealing at some point of the run
  (onset uniform over the history window, or over the first simulated day without history).
- ``outage_rate``: probability, per meter and per simulated day, that an outage starts; the same
  rate applies per transformer for whole-transformer outages.
- ``bad_data_rate``: probability that a reading message is damaged in one of ``bad_data_kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

THEFT_KINDS = ("bypass", "reversed_dial")
BAD_DATA_KINDS = ("garbage", "nan", "impossible", "wrong_id", "duplicate", "out_of_order")
# What a thief's meter may report when its cover is opened or a magnet is held to it.
BYPASS_TAMPER_EVENTS = ("cover_open", "magnet", "tamper")


@dataclass(frozen=True, slots=True)
class Scenario:
    theft_rate: float = 0.0
    theft_kinds: tuple[str, ...] = THEFT_KINDS
    # Bypass: the meter records only this fraction of the real consumption.
    bypass_recorded: tuple[float, float] = (0.2, 0.7)
    # Reversed dial: the register moves backwards by this fraction of the real consumption.
    reversed_recorded: tuple[float, float] = (-1.0, -0.5)
    tamper_event_probability: float = 0.5
    outage_rate: float = 0.0
    outage_median_minutes: float = 60.0
    outage_max_minutes: float = 12 * 60.0
    bad_data_rate: float = 0.0
    bad_data_kinds: tuple[str, ...] = BAD_DATA_KINDS
    solar_fraction: float = 0.1
    pv_kwp_range: tuple[float, float] = (3.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("theft_rate", "outage_rate", "bad_data_rate", "solar_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        unknown = set(self.bad_data_kinds) - set(BAD_DATA_KINDS)
        if unknown:
            raise ValueError(f"unknown bad data kinds: {sorted(unknown)}")
        if set(self.theft_kinds) - set(THEFT_KINDS):
            raise ValueError(f"unknown theft kinds: {self.theft_kinds}")


@dataclass(frozen=True, slots=True)
class Theft:
    meter: int  # index in Fleet.meters
    kind: str
    onset_step: int  # first interval index in which the meter under-reports
    recorded: float  # reported energy = real energy x recorded
    tamper_event: str | None  # event the meter raises at onset, if any


def plan_thefts(
    consumers: int, scenario: Scenario, rng: Random, onset_window_steps: int
) -> list[Theft]:
    thefts = []
    for i in range(consumers):
        if rng.random() >= scenario.theft_rate:
            continue
        kind = scenario.theft_kinds[rng.randrange(len(scenario.theft_kinds))]
        onset = rng.randrange(max(1, onset_window_steps))
        if kind == "bypass":
            recorded = rng.uniform(*scenario.bypass_recorded)
            event = BYPASS_TAMPER_EVENTS[rng.randrange(len(BYPASS_TAMPER_EVENTS))]
        else:
            recorded = rng.uniform(*scenario.reversed_recorded)
            event = "reverse_flow"
        raised = event if rng.random() < scenario.tamper_event_probability else None
        thefts.append(Theft(i, kind, onset, round(recorded, 3), raised))
    return thefts


@dataclass(frozen=True, slots=True)
class Outage:
    meters: tuple[int, ...]  # every meter that loses power
    transformer: int | None  # set for a whole-transformer outage
    start_step: int  # first interval without power (no reading at its end)
    end_step: int  # first interval with power again
    fail_offset_s: int  # power_fail at start_step's start + offset
    restore_offset_s: int  # power_restore at end_step's start + offset


def draw_outage_steps(scenario: Scenario, rng: Random, interval_s: int) -> int:
    minutes = rng.lognormvariate(0.0, 0.9) * scenario.outage_median_minutes
    minutes = min(scenario.outage_max_minutes, minutes)
    return max(1, round(minutes * 60 / interval_s))


def plan_day_outages(
    day_first_step: int,
    steps_per_day: int,
    consumers: int,
    transformers: list[tuple[int, tuple[int, ...]]],  # (main meter index, consumer indexes)
    scenario: Scenario,
    rng: Random,
    interval_s: int,
) -> list[Outage]:
    """Outages that start during one simulated day (consumer ones, then transformer ones)."""
    if scenario.outage_rate <= 0.0:
        return []
    outages = []
    for i in range(consumers):
        if rng.random() < scenario.outage_rate:
            start = day_first_step + rng.randrange(steps_per_day)
            end = start + draw_outage_steps(scenario, rng, interval_s)
            offsets = rng.randrange(1, interval_s), rng.randrange(1, min(60, interval_s))
            outages.append(Outage((i,), None, start, end, *offsets))
    for t, (main, members) in enumerate(transformers):
        if rng.random() < scenario.outage_rate:
            start = day_first_step + rng.randrange(steps_per_day)
            end = start + draw_outage_steps(scenario, rng, interval_s)
            offsets = rng.randrange(1, interval_s), rng.randrange(1, min(60, interval_s))
            outages.append(Outage((*members, main), t, start, end, *offsets))
    return outages


def pick_bad_data(scenario: Scenario, rng: Random) -> str | None:
    """The kind of damage for one reading message, or None for a clean one."""
    if rng.random() >= scenario.bad_data_rate:
        return None
    return scenario.bad_data_kinds[rng.randrange(len(scenario.bad_data_kinds))]
