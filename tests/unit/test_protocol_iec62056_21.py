"""IEC 62056-21 mode D push (CRC-16) and mode C readout (STX .. ETX BCC), built in code."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols.base import ParseContext, ParseError, parse
from meterhub.protocols.crc import crc16_arc
from meterhub.protocols.iec62056_21 import bcc

OSLO = ZoneInfo("Europe/Oslo")
CONTEXT = ParseContext(meter_id="M1", timezone=OSLO)
LINES = (
    "0-0:1.0.0(220204110650W)",
    "1-0:1.8.0(00010501.076*kWh)",
    "1-0:2.8.0(00000000.000*kWh)",
    "1-0:1.7.0(0002.301*kW)",
    "1-0:2.7.0(0000.000*kW)",
    "1-0:61.7.0(0001.011*kW)",
    "1-0:32.7.0(232.1*V)",
    "1-0:31.7.0(002.8*A)",
)


def mode_d(*lines: str) -> bytes:
    body = ("/LGF5E360\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!").encode()
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def mode_c(*lines: str) -> bytes:
    block = ("".join(f"{line}\r\n" for line in lines) + "!\r\n").encode() + b"\x03"
    return b"/ISk5MT174-0001\r\n\x02" + block + bytes([bcc(block)])


def test_mode_d_push() -> None:
    [reading] = parse("iec62056-21", mode_d(*LINES), CONTEXT)
    assert (reading.import_kwh, reading.export_kwh, reading.power_w) == (10501.076, 0.0, 2301.0)
    assert (reading.voltage_v, reading.current_a) == (232.1, 2.8)
    assert reading.extra["obis"]["1-0:61.7.0"] == {"value": 1011.0, "unit": "W"}
    assert reading.ts == datetime(2022, 2, 4, 10, 6, 50, tzinfo=UTC)  # 11:06:50 CET


def test_mode_d_bad_crc() -> None:
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", mode_d(*LINES).replace(b"232.1", b"232.2"), CONTEXT)
    assert refused.value.code == "bad_crc"


def test_mode_c_readout_with_bcc() -> None:
    data = mode_c(
        "1-0:0.0.0*255(63355730)",
        "1-0:0.9.1*255(201455)",
        "1-0:0.9.2*255(0170318)",
        "1-0:1.8.0*255(0008048.375*kWh)",
        "1-0:1.8.1*07(0006334.294*kWh)",
    )
    [reading] = parse("iec62056-21", data, ParseContext(timezone=ZoneInfo("Europe/Ljubljana")))
    assert reading.meter_id == "63355730"
    assert reading.import_kwh == 8048.375
    assert reading.extra["obis"]["1-0:1.8.1*7"] == {"value": 6334.294, "unit": "kWh"}
    assert reading.ts == datetime(2017, 3, 18, 19, 14, 55, tzinfo=UTC)


def test_mode_c_bad_bcc() -> None:
    data = bytearray(mode_c("1-0:1.8.0*255(0008048.375*kWh)"))
    data[-1] ^= 0xFF
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", bytes(data), CONTEXT)
    assert refused.value.code == "bad_crc"


def test_no_zone_given_reads_the_clock_as_utc() -> None:
    [reading] = parse("iec62056-21", mode_d(*LINES), ParseContext(meter_id="M1"))
    assert reading.ts == datetime(2022, 2, 4, 11, 6, 50, tzinfo=UTC)


def test_a_winter_flag_in_summer_is_read_in_the_zone_and_marked() -> None:
    # The Kamstrup sample of the conformance corpus sends W on 8 April, Oslo being on CEST.
    [reading] = parse("iec62056-21", mode_d("0-0:1.0.0(220408135021W)", *LINES[1:]), CONTEXT)
    assert reading.ts == datetime(2022, 4, 8, 11, 50, 21, tzinfo=UTC)
    assert reading.extra["clock_flag_mismatch"] is True


def test_meter_id_overrides_the_readouts_which_is_kept() -> None:
    data = mode_d("0-0:C.1.0(63355730)", *LINES)
    [reading] = parse("iec62056-21", data, CONTEXT)
    assert (reading.meter_id, reading.extra["frame_meter_id"]) == ("M1", "63355730")
    [own] = parse("iec62056-21", data, ParseContext(timezone=OSLO))
    assert own.meter_id == "63355730" and "frame_meter_id" not in own.extra


def test_a_readouts_id_that_is_no_meter_id_is_refused_without_an_override() -> None:
    data = mode_d("0-0:C.1.0(63 355 730)", *LINES)
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", data, ParseContext(timezone=OSLO))
    assert refused.value.code == "bad_meter_id"
    [reading] = parse("iec62056-21", data, CONTEXT)
    assert reading.extra["frame_meter_id"] == "63 355 730"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (f"1-0:1.8.0({'9' * 309}.000*kWh)", "non_finite"),
        (f"1-0:32.7.0({'9' * 400}*V)", "non_finite"),
        ("1-0:1.8.0(-00010501.076*kWh)", "negative_register"),
        ("1-0:2.8.0(-00000000.001*kWh)", "negative_register"),
    ],
)
def test_impossible_values_in_a_mode_d_push_are_refused(line: str, code: str) -> None:
    lines = [line if line.split("(")[0] == known.split("(")[0] else known for known in LINES]
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", mode_d(*lines), CONTEXT)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("1-0:1.8.1*07(-0006334.294*kWh)", "negative_register"),  # a billing period
        (f"1-0:1.8.0*255({'9' * 309}*kWh)", "non_finite"),
    ],
)
def test_impossible_values_in_a_mode_c_readout_are_refused(line: str, code: str) -> None:
    data = mode_c("1-0:0.0.0*255(63355730)", "1-0:1.8.0*255(0008048.375*kWh)", line)
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", data, CONTEXT)
    assert refused.value.code == code


def test_negative_power_is_accepted() -> None:
    [reading] = parse("iec62056-21", mode_d(*LINES[:3], "1-0:1.7.0(-0002.301*kW)"), CONTEXT)
    assert reading.power_w == -2301.0


def test_readout_without_meter_id_needs_one() -> None:
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", mode_d(*LINES), ParseContext())
    assert refused.value.code == "missing_meter_id"


@given(st.sampled_from(["d", "c"]), st.data())
def test_any_single_byte_corruption_is_refused(mode: str, data: st.DataObject) -> None:
    raw = mode_d(*LINES) if mode == "d" else mode_c(*LINES)
    # mode D: '/' .. CRC digits; mode C: everything from STX on (BCC covers it, with ETX)
    first = 0 if mode == "d" else raw.index(b"\x02")
    last = len(raw.rstrip(b"\r\n")) if mode == "d" else len(raw)
    position = data.draw(st.integers(first, last - 1))
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
    broken = raw[:position] + bytes([replacement]) + raw[position + 1 :]
    with pytest.raises(ParseError) as refused:
        parse("iec62056-21", broken, CONTEXT)
    assert refused.value.code in {"bad_crc", "malformed_frame"}


@given(st.binary(max_size=2000))
def test_no_bytes_crash_the_parser(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse("iec62056-21", data, CONTEXT)


@given(
    st.sampled_from(["d", "c"]),
    st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=3)), max_size=6),
)
def test_no_mutation_of_a_readout_crashes_the_parser(
    mode: str, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(mode_d(*LINES) if mode == "d" else mode_c(*LINES))
    for position, chunk in edits:
        data[position : position + 1] = chunk
    with contextlib.suppress(ParseError):
        parse("iec62056-21", bytes(data), CONTEXT)
