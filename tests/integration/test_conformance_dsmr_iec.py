"""DSMR P1 and IEC 62056-21 samples of ../shared/conformance, read where they lie.

Every ``*.expected.json`` is checked against the sample beside it: meter id, energy registers,
power, voltage and M-Bus values. ``crc_valid: false`` means the parser must refuse the sample,
and ``meterhub parse`` must exit 2 with one line on stderr.

Timestamps: the corpus gives each clock line verbatim (``"170102192002W"``), the meter's wall
clock with its summer/winter flag. DSMR samples are parsed with no zone given, which for DSMR
means Europe/Amsterdam; the expected UTC time is worked out here from that text
(``expected_clock``), not by the parser's code. Mode D IEC samples are Norwegian and read in
Europe/Oslo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from conftest import service_missing
from meterhub.protocols.base import ParseContext, ParseError, parse

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
FALLBACK_ID = "fallback-1"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
OSLO = ZoneInfo("Europe/Oslo")


def expected_clock(text: str, zone: ZoneInfo) -> tuple[datetime, bool]:
    """A clock text ``YYMMDDhhmmss[S|W]`` in UTC, and whether its flag agrees with the zone.

    The wall time is read in the zone; in the hour that comes twice in autumn, W is the second
    one (fold 1). Summer time is an offset other than January's (true of Amsterdam and Oslo).
    """
    wall = datetime.strptime(text[:12], "%y%m%d%H%M%S")
    flag = text[12:]
    local = wall.replace(tzinfo=zone, fold=1 if flag == "W" else 0)
    summer = local.utcoffset() != datetime(wall.year, 1, 15, tzinfo=zone).utcoffset()
    return local.astimezone(UTC), not flag or (flag == "S") == summer


def _samples(folder: str) -> list[Path]:
    return sorted((CONFORMANCE / folder).glob("*.expected.json"))


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    if not CONFORMANCE.is_dir():
        service_missing(f"the conformance corpus at {CONFORMANCE}")


def _sample(path: Path, expected: dict[str, Any]) -> Path:
    return path.with_name(expected.get("file") or path.name.replace(".expected.json", ".txt"))


def _expected(path: Path) -> tuple[dict[str, Any], bytes]:
    expected = json.loads(path.read_text())
    return expected, _sample(path, expected).read_bytes()


def _cli(fmt: str, sample: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "parse", "--format", fmt, *args, str(sample)],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _ids(paths: list[Path]) -> list[str]:
    return [p.name.removesuffix(".expected.json") for p in paths]


DSMR = _samples("dsmr")
IEC = _samples("iec62056-21")


def test_the_corpus_has_the_samples_the_readme_lists() -> None:
    assert len(DSMR) == 14
    assert len(IEC) == 6


@pytest.mark.parametrize("path", DSMR, ids=_ids(DSMR))
def test_dsmr_sample(path: Path) -> None:
    expected, data = _expected(path)
    context = ParseContext()  # no zone: DSMR's own, Europe/Amsterdam
    if expected["crc_valid"] is False:
        with pytest.raises(ParseError) as refused:
            parse("dsmr", data, context)
        assert refused.value.code == "bad_crc"
        return
    if expected.get("equipment_identifier_raw") in (None, ""):
        with pytest.raises(ParseError) as refused:
            parse("dsmr", data, context)
        assert refused.value.code == "missing_meter_id"
        context = ParseContext(meter_id=FALLBACK_ID)
    [reading] = parse("dsmr", data, context)

    if expected.get("equipment_identifier_raw"):
        want = expected["equipment_identifier"] or expected["equipment_identifier_raw"]
        assert reading.meter_id == want
    else:
        assert reading.meter_id == FALLBACK_ID

    t1, t2 = expected["energy_delivered_tariff1_kwh"], expected["energy_delivered_tariff2_kwh"]
    total = expected["energy_delivered_total_kwh"]
    if total is not None:
        assert reading.import_kwh == pytest.approx(total)
    elif t1 is not None:
        assert reading.import_kwh == pytest.approx(t1 + t2)
    else:
        assert reading.import_kwh is None
    if t1 is not None:
        assert reading.import_kwh_by_tariff is not None
        assert reading.import_kwh_by_tariff["1"] == pytest.approx(t1)
        assert reading.import_kwh_by_tariff["2"] == pytest.approx(t2)
    r1, r2 = expected["energy_returned_tariff1_kwh"], expected["energy_returned_tariff2_kwh"]
    returned = expected["energy_returned_total_kwh"]
    if returned is not None:
        assert reading.export_kwh == pytest.approx(returned)
    elif r1 is not None:
        assert reading.export_kwh == pytest.approx(r1 + r2)

    delivered, returned_kw = expected["power_delivered_kw"], expected["power_returned_kw"]
    if delivered is None and returned_kw is None:
        assert reading.power_w is None
    else:
        # The contract's power_w is net import: (1.7.0 - 2.7.0) in W.
        assert reading.power_w == pytest.approx(((delivered or 0) - (returned_kw or 0)) * 1000)
    if expected["voltage_l1_v"] is not None:
        assert reading.voltage_v == pytest.approx(expected["voltage_l1_v"])
        assert reading.extra["obis"]["1-0:32.7.0"]["value"] == expected["voltage_l1_v"]

    if expected["timestamp"] is None:
        assert reading.ts == context.now
    else:
        assert reading.extra["obis"]["0-0:1.0.0"]["raw"] == expected["timestamp"]
        utc, agrees = expected_clock(expected["timestamp"], AMSTERDAM)
        assert reading.ts == utc
        # iskra_ie sends S on 2 February: kept, read as CET, and marked.
        assert reading.extra.get("clock_flag_mismatch", False) is not agrees

    channels = {device["channel"]: device for device in reading.extra.get("mbus", [])}
    for device in expected["mbus"]:
        if device.get("unit") is None:
            continue  # an empty channel (value without unit) carries nothing to compare
        got = channels[device["channel"]]
        assert got["obis"] == device["reading_obis"]
        assert got["value"] == pytest.approx(device["value"])
        assert got["unit"] == device["unit"]
        if device.get("timestamp"):
            assert got["ts"] == expected_clock(device["timestamp"], AMSTERDAM)[0].isoformat()
        if device.get("equipment_id"):
            assert got["equipment_id"] == device["equipment_id"]
    if expected["gas"] is not None:
        gas = channels[expected["gas"]["channel"]]
        assert gas["value"] == pytest.approx(expected["gas"]["value"])
        assert gas.get("kind", "gas") == "gas"


@pytest.mark.parametrize("path", DSMR, ids=_ids(DSMR))
def test_dsmr_sample_through_the_command(path: Path) -> None:
    expected, _ = _expected(path)
    sample = _sample(path, expected)
    result = _cli("dsmr", sample, "--meter-id", FALLBACK_ID)  # no --timezone: Europe/Amsterdam
    if expected["crc_valid"] is False:
        assert result.returncode == 2
        assert result.stdout == b""
        assert result.stderr.decode().count("\n") == 1
        assert result.stderr.startswith(b"bad_crc:")
        return
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    document = orjson.loads(line)
    assert document["meter_id"] == FALLBACK_ID
    own_id = expected.get("equipment_identifier") or expected.get("equipment_identifier_raw")
    assert document["extra"].get("frame_meter_id") == (own_id or None)
    if expected["timestamp"] == "170102192002W":
        # v5: 2017-01-02 19:20:02 winter time in Amsterdam (UTC+1), worked out by hand
        assert document["ts"] == "2017-01-02T18:20:02+00:00"
    if expected["timestamp"]:
        assert document["ts"] == expected_clock(expected["timestamp"], AMSTERDAM)[0].isoformat()


def _iec_values(expected: dict[str, Any]) -> dict[str, Any]:
    return dict(expected.get("values_current_period") or expected["values"])


@pytest.mark.parametrize("path", IEC, ids=_ids(IEC))
def test_iec_sample(path: Path) -> None:
    expected, data = _expected(path)
    context = ParseContext(timezone=OSLO, meter_id=FALLBACK_ID)
    if not expected["checksum"]["valid"]:
        with pytest.raises(ParseError):
            parse("iec62056-21", data, context)
        return
    [reading] = parse("iec62056-21", data, context)
    key = expected["key_values"]
    assert reading.meter_id == FALLBACK_ID
    if "timestamp" in key:
        utc, agrees = expected_clock(key["timestamp"], OSLO)
        assert reading.ts == utc
        # kamstrup_kam5 (W on 8 April) and ell5_example_c (W on 20 October) contradict Oslo's
        # summer time: kept, read in the zone, marked.
        assert reading.extra.get("clock_flag_mismatch", False) is not agrees
    assert reading.import_kwh == pytest.approx(key["active_energy_import_kwh"])
    if "active_energy_export_kwh" in key:
        assert reading.export_kwh == pytest.approx(key["active_energy_export_kwh"])
    net_kw = key["active_power_import_kw"] - key["active_power_export_kw"]
    assert reading.power_w == pytest.approx(net_kw * 1000)
    if "voltage_l1_v" in key:
        assert reading.voltage_v == pytest.approx(key["voltage_l1_v"])
        assert reading.current_a == pytest.approx(key["current_l1_a"])
    # Every numeric line of the readout is somewhere in the reading or its extra.
    for code, value in _iec_values(expected).items():
        if isinstance(value, dict) and value.get("unit") in ("V", "A"):
            assert reading.extra["obis"][code.removesuffix("*255")]["value"] == value["value"]


def test_iec_quirk_landisgyr_l3_power_is_exact() -> None:
    # amshan asserts 1010 W for 1-0:61.7.0(0001.011*kW); the line says 1011 W exactly.
    data = (CONFORMANCE / "iec62056-21" / "landisgyr_e360_d.txt").read_bytes()
    [reading] = parse("iec62056-21", data, ParseContext(meter_id=FALLBACK_ID))
    assert reading.extra["obis"]["1-0:61.7.0"] == {"value": 1011.0, "unit": "W"}


def test_iec_mode_c_readout_names_its_meter_and_keeps_billing_periods() -> None:
    data = (CONFORMANCE / "iec62056-21" / "iskra_mt174_mode_c.txt").read_bytes()
    [reading] = parse("iec62056-21", data, ParseContext(timezone=ZoneInfo("Europe/Ljubljana")))
    assert reading.meter_id == "63355730"  # 1-0:0.0.0, the device address
    assert reading.extra["obis"]["1-0:1.8.1*7"] == {"value": 6334.294, "unit": "kWh"}
    assert reading.extra["obis"]["1-0:1.6.0"]["value"] == 2468.0
    assert reading.ts.isoformat() == "2017-03-18T19:14:55+00:00"  # 20:14:55 CET


@pytest.mark.parametrize("path", IEC, ids=_ids(IEC))
def test_iec_sample_through_the_command(path: Path) -> None:
    expected, _ = _expected(path)
    result = _cli("iec62056-21", _sample(path, expected), "--meter-id", FALLBACK_ID)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    document = orjson.loads(line)
    assert document["import_kwh"] == pytest.approx(
        expected["key_values"]["active_energy_import_kwh"]
    )


def test_a_corrupted_iec_readout_exits_2(tmp_path: Path) -> None:
    data = bytearray((CONFORMANCE / "iec62056-21" / "landisgyr_e360_d.txt").read_bytes())
    data[data.index(b"10501.076")] ^= 0x01
    broken = tmp_path / "broken.txt"
    broken.write_bytes(bytes(data))
    result = _cli("iec62056-21", broken, "--meter-id", FALLBACK_ID)
    assert result.returncode == 2
    assert result.stderr.startswith(b"bad_crc:")
    assert result.stderr.decode().count("\n") == 1
