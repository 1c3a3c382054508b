"""Shelly EM/3EM (Gen1) and Pro 3EM/Pro EM (Gen2) status documents (fixtures: README there)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols import shelly
from meterhub.protocols.base import ParseContext, ParseError
from meterhub.readings.model import METER_ID_PATTERN, Reading

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shelly"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def context(meter_id: str | None = None) -> ParseContext:
    return ParseContext(meter_id=meter_id, now=NOW)


def parse_fixture(name: str, ctx: ParseContext | None = None) -> Reading:
    (reading,) = shelly.parse((FIXTURES / name).read_bytes(), ctx or context())
    return reading


def error_code(payload: bytes | dict[str, Any], ctx: ParseContext | None = None) -> str:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(ParseError) as caught:
        shelly.parse(data, ctx or context())
    return caught.value.code


# -- Gen1 ------------------------------------------------------------------------------------


def test_gen1_em_status_wh_registers_become_kwh() -> None:
    reading = parse_fixture("gen1_em_status.json")
    assert reading.meter_id == "shelly-a4cf12f45a2b"
    assert reading.ts == datetime.fromtimestamp(1589531423, UTC)
    assert reading.import_kwh == 98.7654  # (98765.4 + 0.0) Wh
    assert reading.export_kwh == 456.8013  # (12.3 + 456789.0) Wh
    assert reading.power_w == pytest.approx(-777.59)  # 425.81 - 1203.4
    assert (reading.voltage_v, reading.pf) == (231.32, 0.98)
    assert reading.current_a is None and reading.freq_hz is None  # the EM reports neither
    assert [c["power"] for c in reading.extra["emeters"]] == [425.81, -1203.4]


def test_gen1_3em_status_uses_total_power_and_phase_a() -> None:
    reading = parse_fixture("gen1_3em_status.json")
    assert reading.meter_id == "shelly-c45bbe6bab12"
    assert reading.import_kwh == 1999.999  # (1234567 + 654321 + 111111) Wh
    assert reading.export_kwh == 0.01  # 10 Wh
    assert reading.power_w == 932.53
    assert (reading.voltage_v, reading.current_a, reading.pf) == (229.8, 3.66, 0.97)
    assert [c["voltage"] for c in reading.extra["emeters"]] == [229.8, 230.4, 231.1]
    assert reading.extra["total_power"] == 932.53


def test_gen1_clock_not_yet_synchronised_falls_back_to_now() -> None:
    status = orjson.loads((FIXTURES / "gen1_em_status.json").read_bytes())
    status["unixtime"] = 0
    (reading,) = shelly.parse(orjson.dumps(status), context())
    assert reading.ts == NOW


def test_a_register_missing_on_one_channel_is_not_half_summed() -> None:
    status = {"mac": "AA", "emeters": [{"total": 5.0, "power": 1}, {"power": 2}]}
    (reading,) = shelly.parse(orjson.dumps(status), context())
    assert reading.import_kwh is None
    assert reading.power_w == 3.0


def test_negative_power_is_accepted() -> None:
    status = {"mac": "AA", "emeters": [{"total": 5.0, "power": -300.5, "pf": -0.5}]}
    (reading,) = shelly.parse(orjson.dumps(status), context())
    assert (reading.import_kwh, reading.power_w, reading.pf) == (0.005, -300.5, -0.5)


def test_meter_id_overrides_the_device_id_which_is_kept() -> None:
    reading = parse_fixture("gen1_em_status.json", context("m-1"))
    assert reading.meter_id == "m-1"
    assert reading.extra["frame_meter_id"] == "shelly-a4cf12f45a2b"


def test_meter_id_equal_to_the_device_id_adds_nothing() -> None:
    reading = parse_fixture("gen1_em_status.json", context("shelly-a4cf12f45a2b"))
    assert "frame_meter_id" not in reading.extra


def test_meter_id_serves_a_message_that_names_no_device() -> None:
    status = {"emeters": [{"total": 5.0}]}
    (reading,) = shelly.parse(orjson.dumps(status), context("m-1"))
    assert reading.meter_id == "m-1" and "frame_meter_id" not in reading.extra


# -- Gen2 ------------------------------------------------------------------------------------

PRO3EM = dict(
    import_kwh=6.3283,  # total_act 6328.3 Wh = 2843.24 + 1892.88 + 1592.18
    export_kwh=1.2005,  # total_act_ret 1200.5 Wh
    power_w=715.5,  # total_act_power
    voltage_v=236.1,
    current_a=4.029,
    pf=1.0,
    freq_hz=50.0,
)


def fields(reading: Reading) -> dict[str, float | None]:
    return {name: getattr(reading, name) for name in PRO3EM}


def test_gen2_pro3em_shelly_getstatus() -> None:
    reading = parse_fixture("gen2_pro3em_shelly_getstatus.json")
    assert reading.meter_id == "shelly-0cb815fcaff4"  # from sys.mac
    assert reading.ts == datetime.fromtimestamp(1680613839, UTC)
    assert fields(reading) == PRO3EM
    assert reading.extra["em:0"]["c_voltage"] == 236.402
    assert reading.extra["emdata:0"]["b_total_act_ret_energy"] == 1200.5
    assert set(reading.extra) == {"em:0", "emdata:0"}


def test_gen2_notify_full_status_takes_src_and_ts() -> None:
    reading = parse_fixture("gen2_pro3em_notify_full_status.json")
    assert reading.meter_id == "shellypro3em-0cb815fcaff4"
    assert reading.ts == datetime.fromtimestamp(1680613839.87, UTC)
    assert fields(reading) == PRO3EM


def test_gen2_notify_status_carries_only_what_changed() -> None:
    reading = parse_fixture("gen2_pro3em_notify_status.json")
    assert reading.meter_id == "shellypro3em-0cb815fcaff4"
    assert reading.ts == datetime.fromtimestamp(1680613845.21, UTC)
    assert (reading.power_w, reading.current_a) == (724.7, 4.07)
    assert reading.voltage_v is None and reading.import_kwh is None


def test_gen2_notify_status_without_meter_data_gives_no_reading() -> None:
    data = (FIXTURES / "gen2_pro3em_notify_wifi_only.json").read_bytes()
    assert shelly.parse(data, context()) == []


def test_gen2_bare_em_getstatus_needs_a_meter_id() -> None:
    data = (FIXTURES / "gen2_em_getstatus.json").read_bytes()
    assert error_code(data) == "missing_meter_id"
    (reading,) = shelly.parse(data, context("pro3em-kitchen"))
    assert reading.meter_id == "pro3em-kitchen" and reading.ts == NOW
    assert reading.power_w == 715.5 and reading.import_kwh is None


def test_gen2_bare_emdata_getstatus() -> None:
    reading = parse_fixture("gen2_emdata_getstatus.json", context("m1"))
    assert (reading.import_kwh, reading.export_kwh) == (6.3283, 1.2005)
    assert reading.power_w is None


def test_gen2_rpc_response_frame() -> None:
    reading = parse_fixture("gen2_rpc_response_em.json")
    assert reading.meter_id == "shellypro3em-0cb815fcaff4"
    assert reading.voltage_v == 236.1 and reading.power_w == 715.5


def test_phase_energies_are_summed_when_the_total_is_absent() -> None:
    emdata = {"id": 0, "a_total_act_energy": 1000, "b_total_act_energy": 500.5}
    (partial,) = shelly.parse(orjson.dumps(emdata), context("m1"))
    assert partial.import_kwh is None  # phase c unknown: no register rather than a wrong one
    emdata["c_total_act_energy"] = 0.5
    (full,) = shelly.parse(orjson.dumps(emdata), context("m1"))
    assert full.import_kwh == 1.501  # (1000 + 500.5 + 0.5) Wh


def test_gen2_pro_em_sums_channels_and_reads_the_first() -> None:
    reading = parse_fixture("gen2_proem_shelly_getstatus.json")
    assert reading.meter_id == "shelly-08f9e0e5a1b2"
    assert reading.power_w == pytest.approx(414.4)  # 512.7 - 98.3
    assert reading.import_kwh == 346.679  # (345678.9 + 1000.1) Wh
    assert reading.export_kwh == 98.7774  # (12.4 + 98765.0) Wh
    assert (reading.voltage_v, reading.current_a, reading.pf, reading.freq_hz) == (
        229.4,
        2.411,
        0.93,
        50.0,
    )
    assert set(reading.extra) == {"em1:0", "em1:1", "em1data:0", "em1data:1"}


def test_context_meter_id_overrides_src() -> None:
    data = (FIXTURES / "gen2_pro3em_notify_status.json").read_bytes()
    (reading,) = shelly.parse(data, context("house-7"))
    assert reading.meter_id == "house-7"
    assert error_code(data, context("house 7")) == "bad_meter_id"


def test_src_is_sanitised_to_the_meter_id_alphabet() -> None:
    message = {"src": "shelly pro/3em:é", "method": "NotifyStatus", "params": {"em:0": {}}}
    (reading,) = shelly.parse(orjson.dumps(message), context())
    assert reading.meter_id == "shelly_pro_3em__"
    assert METER_ID_PATTERN.match(reading.meter_id)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "malformed_json"),
        (b'{"emeters": [', "malformed_json"),
        (b"42", "wrong_shape"),
        ({"mac": "AA", "emeters": []}, "wrong_shape"),
        ({"mac": "AA", "emeters": {"power": 1}}, "wrong_shape"),
        ({"mac": "AA", "emeters": [7]}, "wrong_shape"),
        ({"mac": "AA", "emeters": [{"power": "12"}]}, "wrong_type"),
        ({"mac": "AA", "emeters": [{"total": False}]}, "wrong_type"),
        ({"mac": "AA", "unixtime": 12, "emeters": [{"power": 1}]}, "bad_timestamp"),
        ({"emeters": [{"power": 1}]}, "missing_meter_id"),
        ({"sys": {"mac": "AA"}, "em:0": [1]}, "wrong_shape"),
        ({"sys": {"mac": "AA", "unixtime": "now"}, "em:0": {}}, "wrong_type"),
        ({"sys": {"mac": "AA"}, "wifi": {"rssi": -50}}, "no_meter_data"),
        ({"src": "x", "method": "NotifyEvent", "params": {"events": []}}, "unsupported_message"),
        ({"src": "x", "method": "NotifyStatus", "params": [1]}, "wrong_shape"),
        (
            {"src": "x", "method": "NotifyStatus", "params": {"ts": 1e12, "em:0": {}}},
            "bad_timestamp",
        ),
        ({"id": 1, "src": "x", "error": {"code": -105, "message": "no such"}}, "device_error"),
        ({"id": 1, "src": "x", "result": None}, "wrong_shape"),
        ({"id": "zero", "a_act_power": 1}, "wrong_type"),
        ({"mac": "AA", "emeters": [{"total": 1e308}, {"total": 1e308}]}, "non_finite"),
        ({"mac": "AA", "emeters": [{"total": 5.0}, {"total": -1.0}]}, "negative_register"),
        ({"mac": "AA", "emeters": [{"total_returned": -0.1}]}, "negative_register"),
        ({"sys": {"mac": "AA"}, "emdata:0": {"total_act": -1.0}}, "negative_register"),
        ({"sys": {"mac": "AA"}, "emdata:0": {"total_act_ret": -1}}, "negative_register"),
        # A per-phase register that only extra keeps is still a register.
        (
            {"sys": {"mac": "AA"}, "emdata:0": {"total_act": 9.0, "b_total_act_energy": -1.0}},
            "negative_register",
        ),
        ({"sys": {"mac": "AA"}, "em1data:1": {"total_act_energy": -5.0}}, "negative_register"),
    ],
)
def test_bad_input_is_refused_with_a_code(payload: bytes | dict[str, Any], code: str) -> None:
    assert error_code(payload) == code


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
FIELD_NAMES = [
    "id",
    "a_act_power",
    "total_act_power",
    "a_voltage",
    "total_act",
    "a_total_act_energy",
    "act_power",
    "voltage",
    "total_act_energy",
    "power",
    "total",
    "mac",
    "unixtime",
]
STATUS_KEYS = [
    "emeters",
    "em:0",
    "emdata:0",
    "em1:0",
    "em1:1",
    "em1data:0",
    "sys",
    "unixtime",
    "mac",
    "total_power",
    "ts",
    "id",
    "a_act_power",
    "total_act",
    "act_power",
    "total_act_energy",
]
component_fields = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values)
status_like = st.dictionaries(
    st.sampled_from(STATUS_KEYS),
    component_fields | st.lists(component_fields, max_size=3) | json_values,
)
message_like = st.one_of(
    status_like,
    st.fixed_dictionaries(
        {"method": st.sampled_from(["NotifyStatus", "NotifyFullStatus"]) | json_values},
        optional={"src": json_values, "params": status_like | json_values},
    ),
    st.fixed_dictionaries(
        {"src": json_values}, optional={"result": status_like | json_values, "error": json_values}
    ),
    json_values,
)


def assert_sound(readings: list[Reading]) -> None:
    for reading in readings:
        assert METER_ID_PATTERN.match(reading.meter_id)
        offset = reading.ts.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        for value in (reading.import_kwh, reading.export_kwh, reading.power_w, reading.voltage_v):
            assert value is None or type(value) is float


@given(message_like, st.sampled_from([None, "m-1"]))
def test_no_json_document_escapes_as_anything_but_parse_error(
    document: Any, meter_id: str | None
) -> None:
    try:
        readings = shelly.parse(orjson.dumps(document), context(meter_id))
    except ParseError as error:
        assert "\n" not in error.message  # `meterhub parse` promises one line on stderr
        return
    assert_sound(readings)


@given(st.binary(max_size=200))
def test_no_bytes_escape_as_anything_but_parse_error(data: bytes) -> None:
    try:
        readings = shelly.parse(data, context("m-1"))
    except ParseError as error:
        assert "\n" not in error.message  # `meterhub parse` promises one line on stderr
        return
    assert_sound(readings)
