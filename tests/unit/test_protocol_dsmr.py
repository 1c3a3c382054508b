"""DSMR P1 telegrams built in code with their CRCs (CRC-16/ARC over '/' .. '!')."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols.base import ParseContext, ParseError, parse
from meterhub.protocols.crc import crc16_arc
from meterhub.readings.model import Reading

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT = ParseContext(timezone=AMSTERDAM, now=NOW)


def telegram(*lines: str, header: str = "/ISk5\\2MT382-1000", crc: bool = True) -> bytes:
    body = (header + "\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!").encode("latin-1")
    return body + (f"{crc16_arc(body):04X}\r\n".encode() if crc else b"\r\n")


def meter_id_line(meter_id: str) -> str:
    return f"0-0:96.1.1({meter_id.encode().hex().upper()})"


V5 = telegram(
    "1-3:0.2.8(50)",
    "0-0:1.0.0(170102192002W)",
    meter_id_line("K8EG004046395507"),
    "1-0:1.8.1(000004.426*kWh)",
    "1-0:1.8.2(000002.399*kWh)",
    "1-0:2.8.1(000002.444*kWh)",
    "1-0:2.8.2(000000.000*kWh)",
    "1-0:1.7.0(00.244*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:32.7.0(0230.0*V)",
    "1-0:52.7.0(0229.0*V)",
    "1-0:31.7.0(001*A)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(3232323241424344313233343536373839)",
    "0-1:24.2.1(170102161005W)(00000.107*m3)",
)


def parse_one(data: bytes, context: ParseContext = CONTEXT) -> Reading:
    [reading] = parse("dsmr", data, context)
    return reading


def test_registers_power_and_voltage() -> None:
    reading = parse_one(V5)
    assert reading.import_kwh == 6.825  # 4.426 + 2.399: no 1.8.0 total in DSMR
    assert reading.import_kwh_by_tariff == {"1": 4.426, "2": 2.399}
    assert reading.export_kwh == 2.444
    assert reading.power_w == 244.0
    assert (reading.voltage_v, reading.current_a) == (230.0, 1.0)
    assert reading.extra["obis"]["1-0:52.7.0"] == {"value": 229.0, "unit": "V"}


def test_meter_id_is_hex_decoded() -> None:
    assert parse_one(V5).meter_id == "K8EG004046395507"


def test_meter_id_not_printable_is_kept_as_sent() -> None:
    data = telegram("0-0:96.1.1(3960221976967177082151037881335713)", "1-0:1.8.1(1.0*kWh)")
    assert parse_one(data).meter_id == "3960221976967177082151037881335713"


def test_context_meter_id_overrides_and_the_telegrams_own_id_is_kept() -> None:
    reading = parse_one(V5, ParseContext(meter_id="M-1", timezone=AMSTERDAM))
    assert reading.meter_id == "M-1"
    assert reading.extra["frame_meter_id"] == "K8EG004046395507"


def test_context_meter_id_equal_to_the_telegrams_adds_nothing() -> None:
    reading = parse_one(V5, ParseContext(meter_id="K8EG004046395507"))
    assert reading.meter_id == "K8EG004046395507"
    assert "frame_meter_id" not in reading.extra


def test_context_meter_id_serves_a_telegram_whose_own_id_is_no_meter_id() -> None:
    too_long = telegram(f"0-0:96.1.1({'AB' * 40})", "1-0:1.8.1(1.0*kWh)")
    reading = parse_one(too_long, ParseContext(meter_id="M-1"))
    assert (reading.meter_id, reading.extra["frame_meter_id"]) == ("M-1", "AB" * 40)


def test_no_context_meter_id_uses_the_telegrams_and_adds_nothing() -> None:
    assert "frame_meter_id" not in parse_one(V5).extra


def test_no_meter_id_anywhere_is_refused() -> None:
    with pytest.raises(ParseError) as refused:
        parse("dsmr", telegram("1-0:1.8.1(1.0*kWh)"), CONTEXT)
    assert refused.value.code == "missing_meter_id"


def test_meter_id_that_is_no_valid_id_is_refused() -> None:
    data = telegram(meter_id_line("K8 EG/1"), "1-0:1.8.1(1.0*kWh)")
    # "K8 EG/1" decodes to text with a space: the raw hex is used instead, which is valid.
    assert parse_one(data).meter_id == b"K8 EG/1".hex().upper()
    too_long = telegram(f"0-0:96.1.1({'AB' * 40})", "1-0:1.8.1(1.0*kWh)")
    with pytest.raises(ParseError) as refused:
        parse("dsmr", too_long, CONTEXT)
    assert refused.value.code == "bad_meter_id"


def test_timestamp_is_local_time_with_winter_flag() -> None:
    assert parse_one(V5).ts == datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC)


@pytest.mark.parametrize(("flag", "utc_hour"), [("S", 0), ("W", 1)])
def test_summer_winter_flag_picks_the_repeated_hour(flag: str, utc_hour: int) -> None:
    # 2024-10-27 02:30 happens twice in Amsterdam: 00:30 UTC (CEST) and 01:30 UTC (CET).
    data = telegram(meter_id_line("M1"), f"0-0:1.0.0(241027023000{flag})", "1-0:1.8.1(1*kWh)")
    assert parse_one(data).ts == datetime(2024, 10, 27, utc_hour, 30, tzinfo=UTC)


def test_no_zone_given_means_europe_amsterdam() -> None:
    # 2017-01-02 19:20:02 W is CET (UTC+1); the context names no zone.
    [reading] = parse("dsmr", V5, ParseContext(now=NOW))
    assert reading.ts == datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC)
    [reading] = parse("dsmr", V5)  # no context at all
    assert reading.ts == datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC)


def test_no_zone_given_reads_summer_time_as_cest() -> None:
    data = telegram(meter_id_line("M1"), "0-0:1.0.0(240715120000S)", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data, ParseContext(now=NOW))
    assert reading.ts == datetime(2024, 7, 15, 10, 0, tzinfo=UTC)
    assert "clock_flag_mismatch" not in reading.extra


def test_a_zone_given_wins_over_the_default() -> None:
    reading = parse_one(V5, ParseContext(timezone=ZoneInfo("Europe/Dublin")))
    assert reading.ts == datetime(2017, 1, 2, 19, 20, 2, tzinfo=UTC)  # GMT in January


@pytest.mark.parametrize(
    ("clock", "utc"),
    [
        # S in winter: the zone says CET, so 13:27:47 is 12:27:47 UTC (the Iskra IE sample).
        ("230202132747S", datetime(2023, 2, 2, 12, 27, 47, tzinfo=UTC)),
        # W in summer: the zone says CEST.
        ("220408135021W", datetime(2022, 4, 8, 11, 50, 21, tzinfo=UTC)),
    ],
)
def test_a_flag_that_contradicts_the_zone_is_kept_read_in_the_zone_and_marked(
    clock: str, utc: datetime
) -> None:
    data = telegram(meter_id_line("M1"), f"0-0:1.0.0({clock})", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data)
    assert reading.ts == utc
    assert reading.extra["clock_flag_mismatch"] is True


def test_a_summer_flag_contradicts_a_zone_without_summer_time() -> None:
    data = telegram(meter_id_line("M1"), "0-0:1.0.0(240715120000S)", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data, ParseContext(timezone=ZoneInfo("UTC")))
    assert reading.ts == datetime(2024, 7, 15, 12, 0, tzinfo=UTC)
    assert reading.extra["clock_flag_mismatch"] is True
    winter = telegram(meter_id_line("M1"), "0-0:1.0.0(240715120000W)", "1-0:1.8.1(1*kWh)")
    assert (
        "clock_flag_mismatch" not in parse_one(winter, ParseContext(timezone=ZoneInfo("UTC"))).extra
    )


@pytest.mark.parametrize(("flag", "utc_hour"), [("S", 0), ("W", 1)])
def test_the_flag_picks_the_repeated_hour_in_dublin_too(flag: str, utc_hour: int) -> None:
    # Europe/Dublin is on "negative" daylight saving time in winter (dst() is -1 h in January),
    # so summer is told by the larger offset, not by dst(). 01:30 happens twice on 2024-10-27:
    # 00:30 UTC (IST, +1) and 01:30 UTC (GMT).
    dublin = ParseContext(timezone=ZoneInfo("Europe/Dublin"))
    data = telegram(meter_id_line("M1"), f"0-0:1.0.0(241027013000{flag})", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data, dublin)
    assert reading.ts == datetime(2024, 10, 27, utc_hour, 30, tzinfo=UTC)
    assert "clock_flag_mismatch" not in reading.extra


@pytest.mark.parametrize(
    ("clock", "agrees"),
    [
        ("240115120000W", True),
        ("240715120000S", True),
        ("240115120000S", False),
        ("240715120000W", False),
    ],
)
def test_dublin_flags_agree_with_its_seasons(clock: str, agrees: bool) -> None:
    data = telegram(meter_id_line("M1"), f"0-0:1.0.0({clock})", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data, ParseContext(timezone=ZoneInfo("Europe/Dublin")))
    assert ("clock_flag_mismatch" not in reading.extra) is agrees


@pytest.mark.parametrize(("flag", "utc_hour"), [("W", 1), ("S", 0)])
def test_a_wall_time_in_the_spring_gap_takes_the_flags_offset_and_is_marked(
    flag: str, utc_hour: int
) -> None:
    # 2024-03-31 02:30 does not exist in Amsterdam (02:00 CET becomes 03:00 CEST), but a meter
    # on winter time all year shows it: W is CET (01:30 UTC), S CEST (00:30 UTC).
    data = telegram(meter_id_line("M1"), f"0-0:1.0.0(240331023000{flag})", "1-0:1.8.1(1*kWh)")
    reading = parse_one(data)
    assert reading.ts == datetime(2024, 3, 31, utc_hour, 30, tzinfo=UTC)
    assert reading.extra["clock_flag_mismatch"] is True


def test_a_wall_time_in_the_spring_gap_without_a_flag_is_refused() -> None:
    data = telegram(meter_id_line("M1"), "0-0:1.0.0(240331023000)", "1-0:1.8.1(1*kWh)")
    with pytest.raises(ParseError) as refused:
        parse("dsmr", data, CONTEXT)
    assert refused.value.code == "bad_timestamp"


def test_telegram_without_clock_uses_now() -> None:
    data = telegram(meter_id_line("M1"), "1-0:1.8.1(00001.001*kWh)", crc=False)
    assert parse_one(data).ts == NOW


def test_bad_crc_is_an_error() -> None:
    data = V5.replace(b"000004.426", b"000004.427")
    with pytest.raises(ParseError) as refused:
        parse("dsmr", data, CONTEXT)
    assert refused.value.code == "bad_crc"


def test_unpadded_crc_is_accepted() -> None:
    lines = [meter_id_line("M1"), "0-0:1.0.0(260215200523W)"]
    for n in range(200):  # find a telegram whose CRC has a leading zero
        body_lines = [*lines, f"1-0:1.8.1({n:06d}.000*kWh)"]
        data = telegram(*body_lines)
        crc_text = data[data.rindex(b"!") + 1 :].strip()
        if crc_text.startswith(b"0"):
            break
    unpadded = data.replace(b"!" + crc_text, b"!" + crc_text.lstrip(b"0"))
    assert parse_one(unpadded).meter_id == "M1"


def test_clock_without_crc_is_malformed() -> None:
    data = telegram(meter_id_line("M1"), "0-0:1.0.0(170102192002W)", "1-0:1.8.1(1*kWh)", crc=False)
    with pytest.raises(ParseError) as refused:
        parse("dsmr", data, CONTEXT)
    assert refused.value.code == "malformed_frame"


def test_truncated_telegram_is_malformed() -> None:
    with pytest.raises(ParseError) as refused:
        parse("dsmr", V5[: len(V5) // 2], CONTEXT)
    assert refused.value.code == "malformed_frame"


def test_wh_and_w_are_converted() -> None:
    data = telegram(
        meter_id_line("M1"), "1-0:1.8.0(006545766*Wh)", "1-0:1.7.0(000000286*W)", crc=False
    )
    reading = parse_one(data)
    assert (reading.import_kwh, reading.power_w) == (6545.766, 286.0)


def test_gas_on_mbus_channel() -> None:
    [gas] = parse_one(V5).extra["mbus"]
    assert gas == {
        "channel": 1,
        "device_type": 3,
        "kind": "gas",
        "equipment_id": "2222ABCD123456789",
        "obis": "0-1:24.2.1",
        "ts": "2017-01-02T15:10:05+00:00",
        "value": 0.107,
        "unit": "m3",
    }
    assert parse_one(V5).extra["obis"]["0-1:24.2.1"]["value"] == 0.107


def test_dsmr_2_2_two_line_gas() -> None:
    data = telegram(
        meter_id_line("M1"),
        "0-1:24.1.0(3)",
        "0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)",
        "(00001.001)",
        crc=False,
    )
    [gas] = parse_one(data).extra["mbus"]
    assert (gas["value"], gas["unit"], gas["kind"]) == (1.001, "m3", "gas")


def test_belgian_gas_and_water() -> None:
    data = telegram(
        "0-0:96.1.4(50217)",
        meter_id_line("1SAG3101021605"),
        "0-0:1.0.0(200512135409S)",
        "1-0:1.8.1(000000.034*kWh)",
        "0-1:24.1.0(003)",
        "0-1:24.2.3(200512134558S)(00112.384*m3)",
        "0-2:24.1.0(007)",
        "0-2:24.2.1(200512134558S)(00872.234*m3)",
        header="/FLU5\\253769484_A",
    )
    reading = parse_one(data)
    kinds = {d["kind"]: d["value"] for d in reading.extra["mbus"]}
    assert kinds == {"gas": 112.384, "water": 872.234}
    assert reading.extra["dsmr_version"] == "50217"


def test_unmapped_codes_stay_in_extra() -> None:
    reading = parse_one(V5)
    assert reading.extra["obis"]["1-3:0.2.8"] == {"raw": "50"}
    assert reading.extra["dsmr_version"] == "50"


def test_garbled_line_is_malformed() -> None:
    data = telegram(meter_id_line("M1"), "1-0:1.8.1(1*kWh", crc=False)
    with pytest.raises(ParseError) as refused:
        parse("dsmr", data, CONTEXT)
    assert refused.value.code == "malformed_frame"


def test_several_telegrams_in_one_capture() -> None:
    assert len(parse("dsmr", V5 + V5, CONTEXT)) == 2


# --- impossible values ------------------------------------------------------------------

HUGE = "9" * 309  # more than 308 digits: infinity as a float


def refusal(*lines: str) -> str:
    with pytest.raises(ParseError) as refused:
        parse("dsmr", telegram(meter_id_line("M1"), "0-0:1.0.0(170102192002W)", *lines), CONTEXT)
    return refused.value.code


@pytest.mark.parametrize(
    "line",
    [
        f"1-0:1.8.1({HUGE}.000*kWh)",  # a register, in the field's unit
        f"1-0:1.8.0({HUGE}000*Wh)",  # a register through a factor (Decimal)
        f"1-0:1.7.0({HUGE}*kW)",  # power
        f"1-0:32.7.0({HUGE})",  # no unit
        f"1-0:99.1.0({HUGE}*kWh)",  # a code the table does not know
        f"1-0:99.97.0(1)(0-0:96.7.19)(170102192002W)({HUGE}*s)",  # several groups
    ],
)
def test_a_value_beyond_the_float_range_is_non_finite(line: str) -> None:
    assert refusal(line) == "non_finite"


def test_tariff_registers_whose_sum_overflows_are_non_finite() -> None:
    # Each is finite (9e307); their sum, the reading's import_kwh, is not.
    big = "9" + "0" * 307
    assert refusal(f"1-0:1.8.1({big}*kWh)", f"1-0:1.8.2({big}*kWh)") == "non_finite"


@pytest.mark.parametrize(
    "line",
    [
        "1-0:1.8.1(-000004.426*kWh)",
        "1-0:1.8.2(-000000.001*kWh)",
        "1-0:2.8.1(-000002.444*kWh)",
        "1-0:1.8.0(-006545766*Wh)",
        "1-0:3.8.0(-000111.222*kvarh)",  # reactive energy: kept only in extra, still a register
        "1-0:1.8.1*7(-000001.000*kWh)",  # a billing period's register
    ],
)
def test_a_negative_cumulative_register_is_refused(line: str) -> None:
    assert refusal("1-0:1.8.2(000002.399*kWh)", line) == "negative_register"


def test_negative_instantaneous_values_are_accepted() -> None:
    data = telegram(
        meter_id_line("M1"),
        "1-0:1.8.1(000004.426*kWh)",
        "1-0:1.7.0(-00.244*kW)",  # a meter that nets import and export in one value
        "1-0:13.7.0(-0.95)",  # signed power factor
        crc=False,
    )
    reading = parse_one(data)
    assert (reading.power_w, reading.pf, reading.import_kwh) == (-244.0, -0.95, 4.426)


@pytest.mark.parametrize(
    ("value", "code"), [("-00001.000*m3", "negative_register"), (f"{HUGE}*m3", "non_finite")]
)
def test_an_impossible_mbus_value_is_withheld_and_the_electricity_reading_kept(
    value: str, code: str
) -> None:
    data = telegram(
        meter_id_line("M1"),
        "0-0:1.0.0(170102192002W)",
        "1-0:1.8.1(000004.426*kWh)",
        "0-1:24.1.0(003)",
        f"0-1:24.2.1(170102161005W)({value})",
        "0-2:24.1.0(007)",
        "0-2:24.2.1(170102161005W)(00872.234*m3)",
    )
    reading = parse_one(data)
    assert reading.import_kwh == 4.426
    gas, water = reading.extra["mbus"]
    assert gas == {
        "channel": 1, "device_type": 3, "kind": "gas", "obis": "0-1:24.2.1", "refused": code
    }  # fmt: skip
    assert reading.extra["obis"]["0-1:24.2.1"] == {
        "raw": ["170102161005W", value], "refused": code
    }  # fmt: skip
    assert water["value"] == 872.234


def test_an_impossible_dsmr_2_2_gas_value_is_withheld() -> None:
    data = telegram(
        meter_id_line("M1"),
        "1-0:1.8.1(00001.001*kWh)",
        "0-1:24.1.0(3)",
        "0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3)",
        "(-0001.001)",
        crc=False,
    )
    reading = parse_one(data)
    [gas] = reading.extra["mbus"]
    assert gas["refused"] == "negative_register" and "value" not in gas
    assert reading.import_kwh == 1.001


# --- properties -------------------------------------------------------------------------


@dataclass(frozen=True)
class Telegram:
    meter_id: str
    ts: datetime  # UTC, whole seconds
    t1_wh: int
    t2_wh: int
    export_wh: int
    import_w: int
    export_w: int
    voltage_dv: int


def serialize(t: Telegram) -> bytes:
    local = t.ts.astimezone(AMSTERDAM)
    flag = "S" if local.dst() else "W"
    return telegram(
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({local:%y%m%d%H%M%S}{flag})",
        meter_id_line(t.meter_id),
        f"1-0:1.8.1({t.t1_wh // 1000:06d}.{t.t1_wh % 1000:03d}*kWh)",
        f"1-0:1.8.2({t.t2_wh // 1000:06d}.{t.t2_wh % 1000:03d}*kWh)",
        f"1-0:2.8.1({t.export_wh // 1000:06d}.{t.export_wh % 1000:03d}*kWh)",
        f"1-0:1.7.0({t.import_w // 1000:02d}.{t.import_w % 1000:03d}*kW)",
        f"1-0:2.7.0({t.export_w // 1000:02d}.{t.export_w % 1000:03d}*kW)",
        f"1-0:32.7.0({t.voltage_dv // 10:03d}.{t.voltage_dv % 10}*V)",
    )


def from_reading(reading: Reading) -> Telegram:
    by_tariff = reading.import_kwh_by_tariff
    assert by_tariff is not None
    assert reading.export_kwh is not None
    assert reading.power_w is not None
    assert reading.voltage_v is not None
    return Telegram(
        reading.meter_id,
        reading.ts,
        round(by_tariff["1"] * 1000),
        round(by_tariff["2"] * 1000),
        round(reading.export_kwh * 1000),
        round(max(reading.power_w, 0)),
        round(max(-reading.power_w, 0)),
        round(reading.voltage_v * 10),
    )


telegrams = st.builds(
    Telegram,
    meter_id=st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True),
    ts=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2068, 12, 31), timezones=st.just(UTC)
    ).map(lambda ts: ts.replace(microsecond=0)),
    t1_wh=st.integers(0, 999_999_999),
    t2_wh=st.integers(0, 999_999_999),
    export_wh=st.integers(0, 999_999_999),
    import_w=st.integers(0, 99_999),
    export_w=st.just(0),
    voltage_dv=st.integers(0, 9999),
)


@given(telegrams)
def test_parse_of_serialize_is_identity(t: Telegram) -> None:
    assert from_reading(parse_one(serialize(t))) == t


@given(telegrams, st.data())
def test_any_single_byte_corruption_is_refused(t: Telegram, data: st.DataObject) -> None:
    raw = serialize(t)
    protected_end = len(raw.rstrip(b"\r\n"))  # '/' .. '!' and the CRC digits
    position = data.draw(st.integers(0, protected_end - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    broken = raw[:position] + bytes([replacement]) + raw[position + 1 :]
    with pytest.raises(ParseError) as refused:
        parse("dsmr", broken, CONTEXT)
    assert refused.value.code in {"bad_crc", "malformed_frame"}


@given(st.binary(max_size=2000))
def test_no_bytes_crash_the_parser(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse("dsmr", data, CONTEXT)


@given(st.lists(st.tuples(st.integers(0, len(V5) - 1), st.binary(max_size=3)), max_size=6))
def test_no_mutation_of_a_real_telegram_crashes_the_parser(edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(V5)
    for position, chunk in edits:
        data[position : position + 1] = chunk
    with contextlib.suppress(ParseError):
        parse("dsmr", bytes(data), ParseContext(meter_id="M1", timezone=AMSTERDAM))
