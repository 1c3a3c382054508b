"""The simulation engine: advances simulated time interval by interval and yields publications.

Pure: no broker, no clock, no sleeping. Everything random comes from ``random.Random`` streams
seeded from the options' seed, one stream per concern (fleet, load noise, solar, faults, bad data,
grid), so the same seed and start give byte-identical payloads in the same order.

Interval ``k`` covers [t0 + k*interval, t0 + (k+1)*interval); its reading is stamped at the end.
Steps ``0 .. history_steps-1`` are the history (published as one batch per meter per simulated day
of 24 h), the following ones are live. Main meters measure what their transformer delivers:
the consumers' real consumption (stolen energy included) plus technical losses of 3-5 % that grow
with load, minus what solar homes export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import exp
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.sim import baddata
from meterhub.sim.fleet import Fleet, build_fleet, initial_registers
from meterhub.sim.loadshape import expected_fraction, load_profile, noise_model
from meterhub.sim.scenario import (
    Outage,
    Scenario,
    Theft,
    pick_bad_data,
    plan_day_outages,
    plan_thefts,
)
from meterhub.sim.solar import draw_cloudiness, pv_kwh_per_kwp

DAY_S = 86_400
LONDON = (51.5074, -0.1278)
NOMINAL_VOLTAGE = 230.0


@dataclass(frozen=True, slots=True)
class Publication:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class SimOptions:
    meters: int = 100  # consumer meters; one main meter per transformer comes on top
    interval_s: int = 900
    speed: float = 60.0  # simulated seconds per real second, live phase
    history_s: int = 0
    seed: int = 0
    start: datetime | None = None  # where the live phase begins; None = now
    end: datetime | None = None  # stop when the simulated clock reaches it; None = never
    duration_s: float | None = None  # stop after this many real seconds; None = never
    topic_prefix: str = "meters"
    timezone: str = "UTC"
    centre: tuple[float, float] = LONDON
    scenario: Scenario = field(default_factory=Scenario)
    firmware: str = "1.4.2"

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or DAY_S % self.interval_s:
            raise ValueError("the interval must divide a day (e.g. 15m, 30m, 1h, 900s)")
        if self.history_s < 0 or self.history_s % self.interval_s:
            raise ValueError("the history must be a whole number of intervals")
        if self.speed <= 0:
            raise ValueError("speed must be positive")


@dataclass(slots=True)
class GroundTruth:
    """What really happened, for tests and for scoring detectors; never published."""

    real_import_kwh: list[float]  # per meter since the start; mains: delivered incl. losses
    real_export_kwh: list[float]
    loss_kwh: list[float]  # per transformer
    thefts: list[Theft]
    outages: list[Outage] = field(default_factory=list)
    bad_data: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, meter id, ts)


def floor_to_interval(instant: datetime, interval_s: int) -> datetime:
    epoch = int(instant.timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_s, UTC)


def iso(epoch: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(epoch, zone).isoformat()


class Engine:
    def __init__(self, options: SimOptions, start: datetime) -> None:
        self.options = options
        self.scenario = options.scenario
        self.zone = ZoneInfo(options.timezone)
        self.interval_s = options.interval_s
        self.steps_per_day = DAY_S // options.interval_s
        self.history_steps = options.history_s // options.interval_s
        self.live_start = floor_to_interval(start, options.interval_s)
        self.t0 = int(self.live_start.timestamp()) - options.history_s
        self.next_step = 0

        seed = options.seed
        self.profile = load_profile()
        self.fleet: Fleet = build_fleet(
            options.meters,
            Random(f"{seed}:fleet"),
            self.profile,
            options.centre,
            self.scenario.solar_fraction,
            self.scenario.pv_kwp_range,
        )
        self.noise = noise_model(self.profile, options.interval_s)
        self._noise_rng = Random(f"{seed}:noise")
        self._solar_rng = Random(f"{seed}:solar")
        self._fault_rng = Random(f"{seed}:faults")
        self._bad_rng = Random(f"{seed}:bad")
        self._grid_rng = Random(f"{seed}:grid")

        meters = self.fleet.meters
        count = len(meters)
        prefix = options.topic_prefix
        self.reading_topics = [f"{prefix}/{m.meter_id}/readings" for m in meters]
        self.event_topics = [f"{prefix}/{m.meter_id}/events" for m in meters]
        self.status_topics = [f"{prefix}/{m.meter_id}/status" for m in meters]
        self.import_register = initial_registers(self.fleet, Random(f"{seed}:registers"))
        self.export_register = [0.0] * count
        self.seq = [0] * count
        self._z = [0.0] * count
        self._recorded = [1.0] * count  # reported / real import; changed by theft
        self._down_until = [0] * count  # interval index from which the meter has power again
        self._tx_of = self.fleet.transformer_of()
        self._tx_voltage = [NOMINAL_VOLTAGE + 2.0] * len(self.fleet.transformers)
        self._cloudiness = 0.0
        window = self.history_steps or self.steps_per_day
        thefts = plan_thefts(self.fleet.consumer_count, self.scenario, self._fault_rng, window)
        self._onsets: dict[int, list[Theft]] = {}
        for theft in thefts:
            self._onsets.setdefault(theft.onset_step, []).append(theft)
        self._outage_starts: dict[int, list[Outage]] = {}
        self._restores: dict[int, list[tuple[int, Outage]]] = {}
        self._held: dict[int, Publication] = {}  # live out-of-order readings, sent one step late
        self.truth = GroundTruth(
            real_import_kwh=[0.0] * count,
            real_export_kwh=[0.0] * count,
            loss_kwh=[0.0] * len(self.fleet.transformers),
            thefts=thefts,
        )

    # ---- publications ---------------------------------------------------------------------

    def status_publications(self, online: bool = True) -> list[Publication]:
        """Retained status of every meter, with its place in the network (extra fields)."""
        return [self._status(i, online) for i in range(len(self.fleet.meters))]

    def _status(self, i: int, online: bool) -> Publication:
        if not online:  # what the meter's last will says
            return Publication(self.status_topics[i], b'{"online":false}', 1, True)
        meter = self.fleet.meters[i]
        status = {
            "online": True,
            "fw": self.options.firmware,
            "kind": meter.kind,
            "transformer": meter.transformer_id,
            "feeder": meter.feeder_id,
            "lat": meter.lat,
            "lon": meter.lon,
            "phase": meter.phase,
            "sanctioned_load_kw": meter.sanctioned_load_kw,
        }
        return Publication(self.status_topics[i], baddata.encode(status), 1, True)

    def history(self) -> Iterator[Publication]:
        """The past, quickly: events as they happen, then one batch per meter per 24 h."""
        count = len(self.fleet.meters)
        while self.next_step < self.history_steps:
            day_end = min(self.history_steps, self.next_step + self.steps_per_day)
            batches: list[list[dict[str, Any]]] = [[] for _ in range(count)]
            extras: list[Publication] = []
            while self.next_step < day_end:
                readings, events, bad = self._advance()
                yield from events
                for i, reading in enumerate(readings):
                    if reading is not None:
                        batches[i].append(reading)
                for i, kind in bad:
                    extras.extend(self._damage_in_batch(i, kind, batches[i]))
            for i, batch in enumerate(batches):
                if batch:
                    yield Publication(self.reading_topics[i], baddata.encode({"readings": batch}))
            yield from extras

    def live_step(self) -> tuple[datetime, list[Publication]]:
        """The next interval: the instant its publications are due and the publications."""
        due = datetime.fromtimestamp(self.t0 + (self.next_step + 1) * self.interval_s, UTC)
        readings, publications, bad = self._advance()
        damaged = dict(bad)
        held, self._held = self._held, {}
        for i, reading in enumerate(readings):
            if reading is None:
                continue
            topic = self.reading_topics[i]
            kind = damaged.get(i)
            if kind is None or kind in ("nan", "impossible"):
                publications.append(Publication(topic, baddata.encode(reading)))
            elif kind == "garbage":
                publications.append(Publication(topic, baddata.garbage(reading, self._bad_rng)))
            elif kind == "wrong_id":
                other = self._other_meter(i)
                payload = baddata.encode(baddata.name_other_meter(reading, other))
                publications.append(Publication(topic, payload))
            elif kind == "duplicate":
                publications.extend([Publication(topic, baddata.encode(reading))] * 2)
            else:  # out_of_order: sent after this meter's next reading
                self._held[i] = Publication(topic, baddata.encode(reading))
            if i in held:
                publications.append(held.pop(i))
        publications.extend(held.values())  # meters that went quiet: send late anyway
        return due, publications

    # ---- the model ------------------------------------------------------------------------

    def _advance(
        self,
    ) -> tuple[list[dict[str, Any] | None], list[Publication], list[tuple[int, str]]]:
        """Simulate one interval: readings per meter (None when unpowered), events, damage."""
        k = self.next_step
        self.next_step += 1
        interval = self.interval_s
        start_epoch = self.t0 + k * interval
        events = self._scheduled_events(k, start_epoch)
        # The random draws keep their order (day plan, solar, grid frequency, consumers'
        # noise, transformers' voltage): a seed gives the same fleet history every time.
        start = datetime.fromtimestamp(start_epoch, UTC)
        base = expected_fraction(self.profile, start, interval, self.zone)
        lat, lon = self.options.centre
        pv = pv_kwh_per_kwp(start, interval, lat, lon, self._cloudiness, self._solar_rng)
        ts = iso(start_epoch + interval, self.zone)
        freq = round(50.0 + self._grid_rng.gauss(0.0, 0.02), 2)
        readings: list[dict[str, Any] | None] = [None] * len(self.fleet.meters)
        tx_import, tx_export = self._consumer_readings(k, base, pv, ts, freq, readings)
        self._transformer_readings(k, ts, freq, tx_import, tx_export, readings)
        bad: list[tuple[int, str]] = []
        if self.scenario.bad_data_rate > 0.0:
            bad = self._pick_damage(readings, ts)
        return readings, events, bad

    def _scheduled_events(self, k: int, start_epoch: int) -> list[Publication]:
        """The day's plan at midnight, then restores, outages and thefts due at step ``k``."""
        events: list[Publication] = []
        if k % self.steps_per_day == 0:
            self._plan_day(k)
        self._apply_restores(k, events)
        self._apply_outage_starts(k, events)
        self._apply_theft_onsets(k, start_epoch, events)
        return events

    def _consumer_readings(
        self,
        k: int,
        base: float,
        pv: float,
        ts: str,
        freq: float,
        readings: list[dict[str, Any] | None],
    ) -> tuple[list[float], list[float]]:
        """Every powered consumer meter's reading into ``readings``; returns the energy each
        transformer delivered to and took back from its consumers."""
        to_w = 3_600_000.0 / self.interval_s
        meters = self.fleet.meters
        tx_count = len(self.fleet.transformers)
        tx_import = [0.0] * tx_count
        tx_export = [0.0] * tx_count
        down, recorded, z_state, tx_of = self._down_until, self._recorded, self._z, self._tx_of
        imp_reg, exp_reg, seq = self.import_register, self.export_register, self.seq
        real_imp, real_exp = self.truth.real_import_kwh, self.truth.real_export_kwh
        tx_voltage = self._tx_voltage
        gauss, uniform = self._noise_rng.gauss, self._noise_rng.random
        rho, innovation = self.noise.rho, self.noise.innovation
        sigma, offset = self.noise.sigma, self.noise.offset

        # The hot loop: one reading per consumer. NoiseModel.step written out for speed.
        for i in range(self.fleet.consumer_count):
            if down[i] > k:
                continue
            meter = meters[i]
            z = rho * z_state[i] + innovation * gauss(0.0, 1.0)
            z_state[i] = z
            net = meter.annual_kwh * base * exp(sigma * z - offset) - meter.pv_kwp * pv
            if net >= 0.0:
                real_imp[i] += net
                tx_import[tx_of[i]] += net
                factor = recorded[i]
                imp_reg[i] += net * factor
                power = net * to_w * factor
            else:
                real_exp[i] -= net
                tx_export[tx_of[i]] -= net
                exp_reg[i] -= net
                power = net * to_w
            voltage = tx_voltage[tx_of[i]] + 2.0 * uniform() - 1.0
            seq[i] += 1
            readings[i] = {
                "ts": ts,
                "seq": seq[i],
                "import_kwh": round(imp_reg[i], 3),
                "export_kwh": round(exp_reg[i], 3),
                "power_w": round(power, 1),
                "voltage_v": round(voltage, 1),
                "current_a": round(abs(power) / (voltage * meter.pf), 2),
                "pf": meter.pf,
                "freq_hz": freq,
            }
        return tx_import, tx_export

    def _transformer_readings(
        self,
        k: int,
        ts: str,
        freq: float,
        tx_import: list[float],
        tx_export: list[float],
        readings: list[dict[str, Any] | None],
    ) -> None:
        """Each transformer's voltage for the next interval, its losses, and its powered main
        meter's reading (what its consumers drew, plus losses, less what they exported)."""
        to_w = 3_600_000.0 / self.interval_s
        down, tx_voltage, grid = self._down_until, self._tx_voltage, self._grid_rng
        imp_reg, exp_reg, seq = self.import_register, self.export_register, self.seq
        real_imp, real_exp = self.truth.real_import_kwh, self.truth.real_export_kwh
        for t, transformer in enumerate(self.fleet.transformers):
            load = tx_import[t]
            utilisation = min(1.0, load * to_w / 1000.0 / transformer.rating_kva)
            # The sag on the next interval follows this one's load (a lag of one interval).
            tx_voltage[t] = NOMINAL_VOLTAGE + 4.0 - 12.0 * utilisation + grid.gauss(0.0, 0.8)
            i = transformer.main
            if down[i] > k:
                continue
            # Technical losses: about 3 % at light load, up to 5 % near the rating.
            loss = load * (0.03 + 0.02 * utilisation)
            self.truth.loss_kwh[t] += loss
            delivered = load + loss - tx_export[t]
            if delivered >= 0.0:
                real_imp[i] += delivered
                imp_reg[i] += delivered
            else:
                real_exp[i] -= delivered
                exp_reg[i] -= delivered
            power = delivered * to_w
            voltage = tx_voltage[t]
            seq[i] += 1
            readings[i] = {
                "ts": ts,
                "seq": seq[i],
                "import_kwh": round(imp_reg[i], 3),
                "export_kwh": round(exp_reg[i], 3),
                "power_w": round(power, 1),
                "voltage_v": round(voltage, 1),
                "current_a": round(abs(power) / (voltage * 3 * 0.95), 2),
                "pf": 0.95,
                "freq_hz": freq,
            }

    def _plan_day(self, k: int) -> None:
        self._cloudiness = draw_cloudiness(self._solar_rng)
        fleet = self.fleet
        groups = [(t.main, t.consumers) for t in fleet.transformers]
        for outage in plan_day_outages(
            k,
            self.steps_per_day,
            fleet.consumer_count,
            groups,
            self.scenario,
            self._fault_rng,
            self.interval_s,
        ):
            self._outage_starts.setdefault(outage.start_step, []).append(outage)

    def _event(self, i: int, epoch: int, kind: str, **extra: Any) -> Publication:
        payload = {"ts": iso(epoch, self.zone), "type": kind, **extra}
        return Publication(self.event_topics[i], baddata.encode(payload))

    def _apply_outage_starts(self, k: int, events: list[Publication]) -> None:
        for outage in self._outage_starts.pop(k, []):
            at = self.t0 + k * self.interval_s + outage.fail_offset_s
            hit = [i for i in outage.meters if self._down_until[i] <= k]
            if not hit:
                continue
            self.truth.outages.append(outage)
            for i in hit:
                self._down_until[i] = outage.end_step
                self._restores.setdefault(outage.end_step, []).append((i, outage))
                events.append(self._event(i, at, "power_fail"))
                events.append(self._status(i, online=False))

    def _apply_restores(self, k: int, events: list[Publication]) -> None:
        for i, outage in self._restores.pop(k, []):
            at = self.t0 + k * self.interval_s + outage.restore_offset_s
            events.append(self._event(i, at, "power_restore"))
            events.append(self._status(i, online=True))

    def _apply_theft_onsets(self, k: int, start_epoch: int, events: list[Publication]) -> None:
        for theft in self._onsets.pop(k, []):
            self._recorded[theft.meter] = theft.recorded
            if theft.tamper_event is not None:
                at = start_epoch + self._fault_rng.randrange(self.interval_s)
                events.append(self._event(theft.meter, at, theft.tamper_event))

    def _pick_damage(self, readings: list[dict[str, Any] | None], ts: str) -> list[tuple[int, str]]:
        bad = []
        rng = self._bad_rng
        for i, reading in enumerate(readings):
            if reading is None:
                continue
            kind = pick_bad_data(self.scenario, rng)
            if kind is None:
                continue
            if kind == "nan":
                baddata.make_nan(reading, rng)
            elif kind == "impossible":
                baddata.make_impossible(reading, rng)
            bad.append((i, kind))
            self.truth.bad_data.append((kind, self.fleet.meters[i].meter_id, ts))
        return bad

    def _other_meter(self, i: int) -> str:
        meters = self.fleet.meters
        return meters[
            (i + 1 + self._bad_rng.randrange(len(meters) - 1 or 1)) % len(meters)
        ].meter_id

    def _damage_in_batch(self, i: int, kind: str, batch: list[dict[str, Any]]) -> list[Publication]:
        """Delivery damage in the history: extra messages after the day's batches."""
        topic = self.reading_topics[i]
        reading = batch[-1]
        if kind == "garbage":
            batch.pop()  # the frame was lost: only garbage arrived
            return [Publication(topic, baddata.garbage(reading, self._bad_rng))]
        if kind == "wrong_id":
            payload = baddata.name_other_meter(reading, self._other_meter(i))
            return [Publication(topic, baddata.encode(payload))]
        if kind == "duplicate":  # a redelivery of a reading already sent in the batch
            return [Publication(topic, baddata.encode(reading))]
        if kind == "out_of_order" and len(batch) >= 2:
            batch[-1], batch[-2] = batch[-2], batch[-1]
        return []


def resolve_start(options: SimOptions, now: datetime | None = None) -> datetime:
    start = options.start or now or datetime.now(UTC)
    if start.tzinfo is None:
        raise ValueError("the start instant must carry a time zone offset")
    return start
