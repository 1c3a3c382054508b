"""The simulator engine, as specifications: what the fleet publishes and what really happened."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from meterhub.readings.model import MEASUREMENT_FIELDS
from meterhub.sim.engine import Engine, Publication, SimOptions
from meterhub.sim.scenario import Scenario

WINTER = datetime(2026, 1, 15, tzinfo=UTC)
SUMMER = datetime(2026, 6, 20, tzinfo=UTC)
DAY = 86_400
CONTRACT_FIELDS = {"ts", "seq", *MEASUREMENT_FIELDS} - {"import_kwh_by_tariff"}


def engine(start: datetime = WINTER, **kwargs: object) -> Engine:
    options = SimOptions(start=start, **kwargs)  # type: ignore[arg-type]
    return Engine(options, start)


def live(sim: Engine, steps: int) -> list[Publication]:
    publications: list[Publication] = []
    for _ in range(steps):
        publications.extend(sim.live_step()[1])
    return publications


def readings_by_meter(publications: list[Publication]) -> dict[str, list[dict[str, object]]]:
    """Every reading object published, per meter id (batches unpacked), in publication order."""
    found: dict[str, list[dict[str, object]]] = defaultdict(list)
    for p in publications:
        if not p.topic.endswith("/readings"):
            continue
        body = orjson.loads(p.payload)
        found[p.topic.split("/")[1]].extend(body.get("readings", [body]))
    return found


def test_same_seed_and_start_give_byte_identical_publications():
    faults = Scenario(theft_rate=0.2, outage_rate=0.1, bad_data_rate=0.05)

    def run(seed: int) -> list[tuple[str, bytes, bool]]:
        sim = engine(meters=60, seed=seed, history_s=DAY, scenario=faults)
        pubs = sim.status_publications() + list(sim.history()) + live(sim, 8)
        return [(p.topic, p.payload, p.retain) for p in pubs]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_import_and_export_registers_never_go_backwards_without_injected_faults():
    sim = engine(start=SUMMER, meters=80, history_s=2 * DAY)
    for meter_id, readings in readings_by_meter(list(sim.history())).items():
        for key in ("import_kwh", "export_kwh"):
            values = [float(r[key]) for r in readings]  # type: ignore[arg-type]
            assert values == sorted(values), (meter_id, key)


def test_main_meter_sees_its_consumers_real_energy_plus_three_to_five_percent_losses():
    sim = engine(start=SUMMER, meters=120, history_s=DAY)
    before = list(sim.import_register), list(sim.export_register)
    list(sim.history())
    truth = sim.truth
    for t, tx in enumerate(sim.fleet.transformers):
        consumed = sum(truth.real_import_kwh[i] for i in tx.consumers)
        exported = sum(truth.real_export_kwh[i] for i in tx.consumers)
        main_net = (sim.import_register[tx.main] - before[0][tx.main]) - (
            sim.export_register[tx.main] - before[1][tx.main]
        )
        assert main_net == pytest.approx(consumed + truth.loss_kwh[t] - exported, rel=1e-9)
        assert 0.03 * consumed <= truth.loss_kwh[t] <= 0.05 * consumed


def test_bypass_theft_under_reports_at_the_consumer_while_the_main_meter_sees_the_real_load():
    thieves = Scenario(theft_rate=1.0, theft_kinds=("bypass",))
    sim = engine(meters=40, history_s=DAY, scenario=thieves)
    before = list(sim.import_register)
    list(sim.history())
    live(sim, 96)  # a full day after the last onset
    truth = sim.truth
    for theft in truth.thefts:
        reported = sim.import_register[theft.meter] - before[theft.meter]
        assert reported < 0.95 * truth.real_import_kwh[theft.meter]
    tx = sim.fleet.transformers[0]
    main_delivered = sim.import_register[tx.main] - before[tx.main]
    reported_by_consumers = sum(sim.import_register[i] - before[i] for i in tx.consumers)
    real = sum(truth.real_import_kwh[i] for i in tx.consumers)
    assert main_delivered > 1.03 * real * 0.999 > reported_by_consumers


def test_reversed_dial_makes_the_register_run_backwards_after_onset():
    sim = engine(
        meters=30, history_s=DAY, scenario=Scenario(theft_rate=1.0, theft_kinds=("reversed_dial",))
    )
    readings = readings_by_meter(list(sim.history()) + live(sim, 8))
    theft = sim.truth.thefts[0]
    values = [float(r["import_kwh"]) for r in readings[sim.fleet.meters[theft.meter].meter_id]]  # type: ignore[arg-type]
    assert values[-1] < values[theft.onset_step]


def test_an_outage_gives_power_fail_then_power_restore_and_no_readings_in_between():
    sim = engine(meters=40, history_s=2 * DAY, scenario=Scenario(outage_rate=0.2))
    pubs = list(sim.history())
    outage = next(o for o in sim.truth.outages if o.transformer is None)
    meter_id = sim.fleet.meters[outage.meters[0]].meter_id
    events = [orjson.loads(p.payload) for p in pubs if p.topic == f"meters/{meter_id}/events"]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["power_fail", "power_restore"]
    failed, restored = (datetime.fromisoformat(e["ts"]) for e in events[:2])
    stamps = [datetime.fromisoformat(str(r["ts"])) for r in readings_by_meter(pubs)[meter_id]]
    assert not [ts for ts in stamps if failed < ts < restored]
    assert len(stamps) == 2 * 96 - (outage.end_step - outage.start_step)


def test_a_transformer_outage_silences_its_main_meter_and_every_consumer():
    sim = engine(meters=60, history_s=3 * DAY, scenario=Scenario(outage_rate=0.3))
    pubs = list(sim.history())
    outage = next(o for o in sim.truth.outages if o.transformer is not None)
    tx = sim.fleet.transformers[outage.transformer]  # type: ignore[index]
    failed = {p.topic.split("/")[1] for p in pubs if b'"power_fail"' in p.payload}
    assert {sim.fleet.meters[i].meter_id for i in (*tx.consumers, tx.main)} <= failed


def test_solar_homes_export_around_midday_only():
    sim = engine(start=SUMMER, meters=200, history_s=3 * DAY, scenario=Scenario(solar_fraction=0.5))
    readings = readings_by_meter(list(sim.history()))
    exported_by_hour: dict[int, float] = defaultdict(float)  # UTC hour; solar noon in London ~12:00
    for meter in sim.fleet.meters:
        series = readings[meter.meter_id]
        for previous, current in itertools.pairwise(series):
            hour = datetime.fromisoformat(str(current["ts"])).hour
            exported_by_hour[hour] += float(current["export_kwh"]) - float(previous["export_kwh"])  # type: ignore[arg-type]
    total = sum(exported_by_hour.values())
    assert total > 0
    assert sum(exported_by_hour[h] for h in (22, 23, 0, 1, 2, 3)) == 0  # the sun is down
    assert sum(exported_by_hour[h] for h in range(8, 17)) > 0.8 * total  # 08:00-17:00
    assert all(
        float(readings[m.meter_id][-1]["export_kwh"]) == 0  # type: ignore[arg-type]
        for m in sim.fleet.meters
        if m.pv_kwp == 0 and m.kind == "consumer"
    )


def test_reading_payloads_follow_the_contract_with_the_meter_id_only_in_the_topic():
    sim = engine(meters=30, timezone="Asia/Kathmandu")
    for p in live(sim, 2):
        assert p.topic.startswith("meters/") and p.topic.endswith("/readings")
        assert p.qos == 1 and not p.retain
        reading = orjson.loads(p.payload)
        assert set(reading) == CONTRACT_FIELDS
        assert datetime.fromisoformat(reading["ts"]).utcoffset() == timedelta(hours=5, minutes=45)
        assert p.topic.split("/")[1] not in p.payload.decode()


def test_statuses_are_retained_online_with_firmware_at_start():
    sim = engine(meters=30)
    statuses = sim.status_publications()
    assert len(statuses) == len(sim.fleet.meters)
    assert all(p.retain and p.topic.endswith("/status") for p in statuses)
    assert all(
        orjson.loads(p.payload)["online"] is True and orjson.loads(p.payload)["fw"]
        for p in statuses
    )


def test_history_is_one_batch_per_meter_per_day_of_at_most_96_readings():
    sim = engine(meters=30, history_s=2 * DAY)
    batches = [
        orjson.loads(p.payload)["readings"] for p in sim.history() if p.topic.endswith("/readings")
    ]
    assert len(batches) == 2 * len(sim.fleet.meters)
    assert {len(b) for b in batches} == {96}


def _kinds_seen(publications: list[Publication]) -> set[str]:
    seen: set[str] = set()
    last_payload: dict[str, bytes] = {}
    last_seq: dict[str, int] = {}
    for p in publications:
        if not p.topic.endswith("/readings"):
            continue
        meter_id = p.topic.split("/")[1]
        if last_payload.get(meter_id) == p.payload or p.payload in last_payload.values():
            seen.add("duplicate")
        last_payload[meter_id] = p.payload
        if b"NaN" in p.payload:
            seen.add("nan")
            continue
        try:
            body = orjson.loads(p.payload)
        except orjson.JSONDecodeError:
            seen.add("garbage")
            continue
        for reading in body.get("readings", [body]) if isinstance(body, dict) else []:
            if reading.get("meter_id", meter_id) != meter_id:
                seen.add("wrong_id")
            if (
                reading["voltage_v"] > 1000
                or reading["pf"] > 1
                or reading["import_kwh"] < 0
                or reading["power_w"] > 1e8
                or reading["freq_hz"] == 0
            ):
                seen.add("impossible")
            if reading["seq"] < last_seq.get(meter_id, 0):
                seen.add("out_of_order")
            last_seq[meter_id] = max(reading["seq"], last_seq.get(meter_id, 0))
    return seen


@pytest.mark.parametrize("phase", ["history", "live"])
def test_bad_data_injection_produces_every_kind(phase: str):
    sim = engine(meters=40, history_s=DAY, scenario=Scenario(bad_data_rate=0.05))
    pubs = list(sim.history()) if phase == "history" else (list(sim.history()) and live(sim, 24))
    expected = {"garbage", "nan", "impossible", "wrong_id", "duplicate", "out_of_order"}
    assert expected <= _kinds_seen(pubs)
    assert expected == {kind for kind, _, _ in sim.truth.bad_data}


def test_nan_is_written_as_the_bare_token_that_json_dumps_emits():
    sim = engine(meters=40, scenario=Scenario(bad_data_rate=1.0, bad_data_kinds=("nan",)))
    reading = json.loads(live(sim, 1)[0].payload)  # the stdlib parser accepts NaN; orjson does not
    assert any(isinstance(v, float) and math.isnan(v) for v in reading.values())
