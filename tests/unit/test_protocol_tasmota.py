"""Tasmota SENSOR telemetry: what maps where, local time, and what is refused (fixtures: README)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols import tasmota
from meterhub.protocols.base import ParseContext, ParseError
from meterhub.readings.model import METER_ID_PATTERN, Reading

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tasmota"
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45, no DST


def context(meter_id: str | None = "plug-1", zone: str = "UTC") -> ParseContext:
    return ParseContext(meter_id=meter_id, now=NOW, timezone=ZoneInfo(zone))


def parse_fixture(name: str, ctx: ParseContext | None = None) -> Reading:
    (reading,) = tasmota.parse((FIXTURES / name).read_bytes(), ctx or context())
    return reading


def error_code(payload: bytes | dict[str, Any], ctx: ParseContext | None = None) -> str:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(ParseError) as caught:
        tasmota.parse(data, ctx or context())
    return caught.value.code


def test_docs_example_maps_every_energy_field() -> None:
    # Tasmota docs "Energy": the SENSOR example of an idle plug.
    reading = parse_fixture("sensor_single.json")
    assert reading.meter_id == "plug-1"
    assert reading.import_kwh == 0.003
    assert reading.export_kwh is None
    assert (reading.power_w, reading.voltage_v, reading.current_a, reading.pf) == (0, 0, 0, 0)
    assert reading.freq_hz is None
    assert reading.extra == {
        "TotalStartTime": "2019-11-03T19:34:28",
        "Yesterday": 0.0,
        "Today": 0.003,
        "Period": 0,
        "ApparentPower": 0,
        "ReactivePower": 0,
    }


def test_time_is_local_wall_clock_in_the_context_zone() -> None:
    reading = parse_fixture("sensor_pow_loaded.json", context(zone="Asia/Kathmandu"))
    # 2024-03-30 10:15 at +05:45 is 04:30 UTC
    assert reading.ts == datetime(2024, 3, 30, 4, 30, tzinfo=UTC)
    assert (reading.power_w, reading.voltage_v, reading.current_a) == (812.0, 229.0, 3.654)
    assert (reading.pf, reading.freq_hz, reading.import_kwh) == (0.97, 50.01, 1234.567)


def test_time_across_a_dst_change_uses_the_zone_rules() -> None:
    summer = {"Time": "2024-07-01T12:00:00", "ENERGY": {"Total": 1.0}}
    winter = {"Time": "2024-01-01T12:00:00", "ENERGY": {"Total": 1.0}}
    ctx = context(zone="Europe/Amsterdam")
    (s,) = tasmota.parse(orjson.dumps(summer), ctx)
    (w,) = tasmota.parse(orjson.dumps(winter), ctx)
    assert s.ts == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)  # CEST, +02:00
    assert w.ts == datetime(2024, 1, 1, 11, 0, tzinfo=UTC)  # CET, +01:00


def test_time_with_an_offset_is_taken_as_sent() -> None:
    # SetOption52 1 makes Tasmota append its offset.
    payload = {"Time": "2024-07-01T12:00:00+02:00", "ENERGY": {"Total": 1.0}}
    (reading,) = tasmota.parse(orjson.dumps(payload), context(zone="Asia/Kathmandu"))
    assert reading.ts == datetime(2024, 7, 1, 10, 0, tzinfo=UTC)


def test_without_time_the_context_clock_stamps_the_reading() -> None:
    (reading,) = tasmota.parse(b'{"ENERGY": {"Power": 5}}', context())
    assert reading.ts == NOW


def test_status10_answer_is_unwrapped() -> None:
    reading = parse_fixture("status10.json", context(zone="Asia/Kathmandu"))
    # 19:34:28 at +05:45 is 13:49:28 UTC
    assert reading.ts == datetime(2019, 11, 3, 13, 49, 28, tzinfo=UTC)
    assert reading.import_kwh == 0.003


def test_multi_channel_power_is_summed_and_the_first_channel_is_phase_a() -> None:
    reading = parse_fixture("sensor_two_channel.json")
    assert reading.power_w == 170.0  # 150 + 20
    assert reading.current_a == 0.69 and reading.pf == 0.94
    assert reading.voltage_v == 232.0 and reading.import_kwh == 12.345
    # every channel stays readable
    assert reading.extra["Power"] == [150, 20]
    assert reading.extra["Current"] == [0.69, 0.108]
    assert reading.extra["Factor"] == [0.94, 0.8]
    assert "Voltage" not in reading.extra


def test_export_register_and_per_phase_totals_are_summed() -> None:
    payload = {"ENERGY": {"Total": [1.5, 2.25, 0.25], "ExportActive": [0.5, 0, 0.125]}}
    (reading,) = tasmota.parse(orjson.dumps(payload), context())
    assert reading.import_kwh == 4.0  # 1.5 + 2.25 + 0.25
    assert reading.export_kwh == 0.625  # 0.5 + 0 + 0.125


def test_meter_id_is_required_and_checked() -> None:
    data = (FIXTURES / "sensor_single.json").read_bytes()
    assert error_code(data, context(meter_id=None)) == "missing_meter_id"
    assert error_code(data, context(meter_id="plug/1")) == "bad_meter_id"
    assert error_code(data, context(meter_id="plug-1\n")) == "bad_meter_id"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "wrong_shape"),
        ({"StatusSNS": [1]}, "wrong_shape"),
        ({"Time": "2020-01-01T00:00:00"}, "missing_energy"),
        ({"ENERGY": [1, 2]}, "wrong_shape"),
        ({"ENERGY": {"Total": "12.5"}}, "wrong_type"),
        ({"ENERGY": {"Power": True}}, "wrong_type"),
        ({"ENERGY": {"Power": []}}, "wrong_type"),
        ({"ENERGY": {"Power": [1, "x"]}}, "wrong_type"),
        ({"ENERGY": {"Total": [1e308, 1e308]}}, "non_finite"),
        ({"ENERGY": {"Power": [1e308, 1e308]}}, "non_finite"),
        ({"ENERGY": {"Total": -0.5}}, "negative_register"),
        ({"ENERGY": {"Total": [1.5, -0.5]}}, "negative_register"),  # one channel: not summed
        ({"ENERGY": {"ExportActive": -2}}, "negative_register"),
        ({"Time": "yesterday", "ENERGY": {"Total": 1}}, "bad_timestamp"),
        ({"Time": 1700000000, "ENERGY": {"Total": 1}}, "bad_timestamp"),
        ({"Time": "0001-01-01T00:00:00", "ENERGY": {"Total": 1}}, "bad_timestamp"),
    ],
)
def test_bad_input_is_refused_with_a_code(payload: bytes | dict[str, Any], code: str) -> None:
    # 0001-01-01 local at +05:45 falls before datetime.min in UTC.
    assert error_code(payload, context(zone="Asia/Kathmandu")) == code


def test_a_sensor_message_of_a_device_without_energy_monitoring() -> None:
    assert error_code((FIXTURES / "sensor_no_energy.json").read_bytes()) == "missing_energy"


def test_negative_power_and_power_factor_are_accepted() -> None:
    # Net metering: a plug that feeds in shows negative power; some drivers sign the factor.
    payload = {"ENERGY": {"Total": 1.5, "Power": [-120, 20], "Factor": -0.9}}
    (reading,) = tasmota.parse(orjson.dumps(payload), context())
    assert (reading.import_kwh, reading.power_w, reading.pf) == (1.5, -100.0, -0.9)


def test_no_zone_given_reads_time_as_utc() -> None:
    payload = {"Time": "2024-07-15T12:00:00", "ENERGY": {"Total": 1}}
    (reading,) = tasmota.parse(orjson.dumps(payload), ParseContext(meter_id="plug-1"))
    assert reading.ts == datetime(2024, 7, 15, 12, 0, tzinfo=UTC)


def test_oversized_payload_is_refused() -> None:
    big = orjson.dumps({"ENERGY": {"Total": 1, "pad": "x" * 70_000}})
    assert error_code(big) == "payload_too_large"


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
energy_keys = st.sampled_from(
    ["Total", "ExportActive", "Power", "Voltage", "Current", "Factor", "Frequency", "Today"]
)
times = st.one_of(
    json_values,
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
sensor_like = st.fixed_dictionaries(
    {"ENERGY": st.dictionaries(energy_keys, json_values) | json_values},
    optional={"Time": times},
)


def assert_sound(readings: list[Reading]) -> None:
    for reading in readings:
        assert METER_ID_PATTERN.match(reading.meter_id)
        offset = reading.ts.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
        for value in (reading.import_kwh, reading.power_w, reading.voltage_v, reading.pf):
            assert value is None or type(value) is float


@given(st.one_of(sensor_like, sensor_like.map(lambda s: {"StatusSNS": s}), json_values))
def test_no_json_document_escapes_as_anything_but_parse_error(document: Any) -> None:
    try:
        readings = tasmota.parse(orjson.dumps(document), context(zone="Asia/Kathmandu"))
    except ParseError as error:
        assert "\n" not in error.message  # `meterhub parse` promises one line on stderr
        return
    assert_sound(readings)


@given(st.binary(max_size=200))
def test_no_bytes_escape_as_anything_but_parse_error(data: bytes) -> None:
    try:
        readings = tasmota.parse(data, context())
    except ParseError as error:
        assert "\n" not in error.message  # `meterhub parse` promises one line on stderr
        return
    assert_sound(readings)
