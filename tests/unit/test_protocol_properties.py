"""Every decoder, whatever it is fed: only ``ParseError`` escapes, and every reading it returns is
possible: its numbers are finite (in ``extra`` too) and no cumulative register is below zero.

Inputs are arbitrary bytes, frames built from a grammar whose values include the impossible ones
(negative registers, numbers of hundreds of digits, NaN and infinite floats, scalers of 10^127),
and mutations of such frames with their checksums recomputed, so that the damage reaches the
decoder instead of stopping at the CRC. Frames are built here, checksums and all.
"""

from __future__ import annotations

import math
import os
import string
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from meterhub.protocols.axdr import AxdrValue, encode_data
from meterhub.protocols.base import FORMATS, ParseContext, ParseError, parse
from meterhub.protocols.crc import crc16_arc
from meterhub.protocols.hdlc import HdlcFrame, encode_frame
from meterhub.protocols.iec62056_21 import bcc
from meterhub.protocols.obis import is_register
from meterhub.readings.model import Reading

ZONES = [None, ZoneInfo("Europe/Amsterdam"), ZoneInfo("Europe/Dublin"), ZoneInfo("UTC")]
contexts = st.builds(
    ParseContext,
    meter_id=st.sampled_from([None, "M-1", "M-1", "M-1"]),
    timezone=st.sampled_from(ZONES),
    encryption_key=st.sampled_from([None, bytes(range(16))]),
    authentication_key=st.sampled_from([None, bytes(range(16, 32))]),
)
# scripts/fuzz.py raises this for long runs.
MANY = settings(max_examples=int(os.environ.get("MH_FUZZ_EXAMPLES", "1000")))


# --- the property ---------------------------------------------------------------------------


def _numbers(value: Any, where: str) -> list[tuple[str, float]]:
    """Every number in a JSON-like value, with where it is."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [(where, float(value))]
    if isinstance(value, dict):
        return [n for key, item in value.items() for n in _numbers(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [n for index, item in enumerate(value) for n in _numbers(item, f"{where}[{index}]")]
    return []


def assert_possible(reading: Reading) -> None:
    offset = reading.ts.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    fields = {
        "import_kwh": reading.import_kwh,
        "export_kwh": reading.export_kwh,
        "power_w": reading.power_w,
        "voltage_v": reading.voltage_v,
        "current_a": reading.current_a,
        "pf": reading.pf,
        "freq_hz": reading.freq_hz,
        **{f"tariff {k}": v for k, v in (reading.import_kwh_by_tariff or {}).items()},
    }
    for name, value in fields.items():
        assert value is None or math.isfinite(value), name
    registers = [
        reading.import_kwh,
        reading.export_kwh,
        *(reading.import_kwh_by_tariff or {}).values(),
    ]
    assert all(value is None or value >= 0.0 for value in registers)
    for where, number in _numbers(reading.extra, "extra"):
        assert math.isfinite(number), where
    for code, entry in reading.extra.get("obis", {}).items():
        value = entry.get("value")
        if is_register(code) and isinstance(value, int | float):
            assert value >= 0.0, code
    for device in reading.extra.get("mbus", []):
        assert device.get("value", 0.0) >= 0.0, device
    for name, component in reading.extra.items():  # Shelly Gen2 registers, kept whole
        if name.startswith(("emdata:", "em1data:")) and isinstance(component, dict):
            for key, value in component.items():
                if "total" in key and isinstance(value, int | float):
                    assert value >= 0.0, f"{name}.{key}"
    for channel in reading.extra.get("emeters", []):  # Shelly Gen1
        if isinstance(channel, dict):
            for key in ("total", "total_returned"):
                value = channel.get(key)
                assert not isinstance(value, int | float) or value >= 0.0


def decoded_or_refused(fmt: str, data: bytes, context: ParseContext) -> list[Reading]:
    try:
        readings = parse(fmt, data, context)
    except ParseError as error:
        assert error.code and error.code.replace("_", "").isalnum()
        assert "\n" not in error.message  # `meterhub parse` promises one line on stderr
        return []
    for reading in readings:
        assert_possible(reading)
    return readings


@MANY
@given(st.sampled_from(sorted(FORMATS)), st.binary(max_size=800), contexts)
def test_arbitrary_bytes(fmt: str, data: bytes, context: ParseContext) -> None:
    decoded_or_refused(fmt, data, context)


def mutated(data: st.DataObject, raw: bytes, start: int = 0) -> bytes:
    """``raw`` with up to four bytes replaced, inserted or deleted at ``start`` or after."""
    edited = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        position = data.draw(st.integers(start, max(start, len(edited) - 1)), label="at")
        chunk = data.draw(st.binary(max_size=2), label="chunk")
        edited[position : position + 1] = chunk
    return bytes(edited)


# --- DSMR and IEC 62056-21: data lines --------------------------------------------------------

# code -> the units a meter would write for it; another unit now and then (bad_unit).
CODES: dict[str, list[str]] = {
    **{
        code: ["kWh", "Wh", "MWh"]
        for code in (
            "1-0:1.8.0",
            "1-0:1.8.1",
            "1-0:1.8.2",
            "1-0:2.8.0",
            "1-0:2.8.1",
            "1-0:1.8.1*07",
        )
    },
    "1-0:3.8.0": ["kvarh"],
    **{code: ["kW", "W"] for code in ("1-0:1.7.0", "1-0:2.7.0", "1-0:21.7.0")},
    "1-0:32.7.0": ["V"],
    "1-0:31.7.0": ["A"],
    "1-0:13.7.0": [""],
    "1-0:14.7.0": ["Hz"],
    "1-0:99.1.0": ["kWh", "furlong", ""],
    "0-0:96.7.21": [""],
    "0-1:24.2.1": ["m3"],
    "0-2:24.2.3": ["m3", "GJ"],
}
ANY_UNIT = ["kWh", "W", "V", "s", "", "furlong"]
small_digits = st.text(string.digits, min_size=1, max_size=12)
digits = st.one_of(
    small_digits,
    small_digits,
    small_digits,
    st.integers(300, 420).map(lambda n: "9" * n),  # around the float range's 308 digits
)
numbers = st.builds(
    lambda sign, whole, fraction: sign + whole + (f".{fraction}" if fraction else ""),
    st.sampled_from(["", "", "", "-", "+"]),
    digits,
    st.text(string.digits, max_size=4),
)


@st.composite
def coded_values(draw: st.DrawFn) -> tuple[str, str]:
    code = draw(st.sampled_from(sorted(CODES)))
    unit = draw(st.sampled_from(CODES[code] * 30 + ANY_UNIT))
    number = draw(numbers)
    return code, f"{number}*{unit}" if unit else number


clocks = st.builds(
    lambda yy, month, day, hour, minute, flag: (
        f"{yy:02d}{month:02d}{day:02d}{hour:02d}{minute:02d}00{flag}"
    ),
    st.integers(0, 99),
    st.integers(1, 12),
    st.sampled_from([1, 15, 25, 26, 27, 28, 29, 30, 31]),  # last Sundays of March and October
    st.integers(0, 23),
    st.sampled_from([0, 30]),
    st.sampled_from(["", "S", "W"]),
)
data_lines = st.one_of(
    coded_values().map(lambda cv: f"{cv[0]}({cv[1]})"),
    st.builds(lambda cv, ts: f"{cv[0]}({ts})({cv[1]})", coded_values(), clocks),
    clocks.map(lambda ts: f"0-0:1.0.0({ts})"),
    st.sampled_from(["0-1:24.1.0(003)", "0-0:96.1.1(4B384547303034)", "0-0:C.1.0(63355730)"]),
)


def mode_d(lines: list[str]) -> bytes:
    body = ("/ISk5\\2MT382-1000\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!").encode()
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def mode_c(lines: list[str]) -> bytes:
    block = ("".join(f"{line}\r\n" for line in lines) + "!\r\n").encode() + b"\x03"
    return b"/ISk5MT174-0001\r\n\x02" + block + bytes([bcc(block)])


def with_fresh_crc(telegram: bytes) -> bytes:
    """A mode D telegram whose CRC is computed again after a mutation (when it still has a '!')."""
    end = telegram.rfind(b"!")
    if end < 0:
        return telegram
    body = telegram[: end + 1]
    return body + f"{crc16_arc(body):04X}\r\n".encode()


@MANY
@given(
    st.sampled_from(["dsmr", "iec62056-21"]), st.lists(data_lines, min_size=1, max_size=8), contexts
)
def test_telegrams_from_the_grammar(fmt: str, lines: list[str], context: ParseContext) -> None:
    decoded_or_refused(fmt, mode_d(lines), context)


@MANY
@given(st.lists(data_lines, min_size=1, max_size=8), contexts)
def test_mode_c_readouts_from_the_grammar(lines: list[str], context: ParseContext) -> None:
    decoded_or_refused("iec62056-21", mode_c(lines), context)


@MANY
@given(
    st.sampled_from(["dsmr", "iec62056-21"]),
    st.lists(data_lines, min_size=1, max_size=8),
    contexts,
    st.data(),
)
def test_mutated_telegrams_with_their_crc_recomputed(
    fmt: str, lines: list[str], context: ParseContext, data: st.DataObject
) -> None:
    decoded_or_refused(fmt, with_fresh_crc(mutated(data, mode_d(lines))), context)


# --- DLMS/COSEM HAN push ----------------------------------------------------------------------

WH, VARH, W, V, A, NONE = 30, 32, 27, 35, 33, 255  # DLMS unit enumeration
# logical name -> the units a meter would send with it; another unit now and then (bad_unit).
DLMS_CODES: dict[bytes, list[int]] = {
    bytes([1, 0, 1, 8, 0, 255]): [WH],
    bytes([1, 0, 2, 8, 0, 255]): [WH],
    bytes([1, 0, 3, 8, 0, 255]): [VARH],
    bytes([1, 0, 1, 8, 0, 7]): [WH],  # a billing period: no field in the OBIS table
    bytes([1, 0, 1, 8, 5, 255]): [WH],  # tariff 5: no field either
    bytes([1, 1, 1, 8, 0, 255]): [WH],  # Kamstrup's channel 1
    bytes([1, 0, 1, 7, 0, 255]): [W],
    bytes([1, 0, 2, 7, 0, 255]): [W],
    bytes([1, 0, 32, 7, 0, 255]): [V],
    bytes([1, 0, 31, 7, 0, 255]): [A],
    bytes([1, 0, 13, 7, 0, 255]): [NONE],
    bytes([1, 0, 99, 7, 0, 255]): [W, 7],
}
dlms_numbers: st.SearchStrategy[AxdrValue] = st.one_of(
    st.integers(-(2**31), 2**32 - 1),  # encode_data: double-long when negative, else unsigned
    st.integers(0, 10**6),
    st.floats(),  # NaN and infinities included: float64 on the wire
    st.floats(min_value=1e300, max_value=1.7e308),
)
dlms_texts = st.sampled_from(["7359992890497997", "AIDON_V0001", "a b"])
scalers = st.one_of(st.integers(-3, 3), st.integers(-128, 127), st.sampled_from([-128, 127]))


@st.composite
def dlms_entries(draw: st.DrawFn) -> list[AxdrValue]:
    if draw(st.integers(0, 9)) == 0:  # the meter's id, or text where a number belongs
        code = draw(st.sampled_from([bytes([0, 0, 96, 1, 0, 255]), *DLMS_CODES]))
        return [code, draw(dlms_texts)]
    code = draw(st.sampled_from(sorted(DLMS_CODES)))
    value = draw(dlms_numbers)
    if draw(st.booleans()):
        return [code, value]  # no scaler: base units
    unit = draw(st.sampled_from(DLMS_CODES[code] * 30 + [WH, W, V, NONE, 7]))
    return [code, value, [draw(scalers), unit]]


def notification(entries: list[Any]) -> bytes:
    return b"\x0f\x40\x00\x00\x00\x00" + encode_data(entries)


def han_frame(apdu: bytes) -> bytes:
    return encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, b"\xe6\xe7\x00" + apdu, False))


@MANY
@given(st.lists(dlms_entries(), min_size=1, max_size=8), contexts)
def test_han_pushes_from_the_grammar(entries: list[Any], context: ParseContext) -> None:
    decoded_or_refused("dlms", han_frame(notification(entries)), context)


@MANY
@given(st.lists(dlms_entries(), min_size=1, max_size=8), contexts, st.data())
def test_mutated_han_pushes_with_their_checksums_recomputed(
    entries: list[Any], context: ParseContext, data: st.DataObject
) -> None:
    apdu = mutated(data, notification(entries), start=1)
    decoded_or_refused("dlms", han_frame(apdu[:2000]), context)


# --- Tasmota, Shelly, native: JSON ---------------------------------------------------------------

json_numbers = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.5, -1e308, 1e308, 1.7e308, -0.0]),
)
channels = json_numbers | st.lists(json_numbers, min_size=1, max_size=3)
tasmota_documents = st.fixed_dictionaries(
    {
        "ENERGY": st.dictionaries(
            st.sampled_from(["Total", "ExportActive", "Power", "Voltage", "Factor", "Today"]),
            channels,
        )
    },
    optional={"Time": st.sampled_from(["2024-10-27T02:30:00", "2024-03-31T02:30:00"])},
)
shelly_gen1 = st.fixed_dictionaries(
    {
        "mac": st.just("A4CF12F45A2B"),
        "emeters": st.lists(
            st.dictionaries(
                st.sampled_from(["total", "total_returned", "power", "pf"]), json_numbers
            ),
            min_size=1,
            max_size=3,
        ),
    },
    optional={"total_power": json_numbers},
)
shelly_gen2 = st.fixed_dictionaries(
    {"sys": st.just({"mac": "0CB815FCAFF4"})},
    optional={
        "em:0": st.dictionaries(
            st.sampled_from(["total_act_power", "a_act_power", "a_voltage", "a_pf"]), json_numbers
        ),
        "emdata:0": st.dictionaries(
            st.sampled_from(
                ["total_act", "total_act_ret", "a_total_act_energy", "b_total_act_ret_energy"]
            ),
            json_numbers,
        ),
        "em1data:0": st.dictionaries(
            st.sampled_from(["total_act_energy", "total_act_ret_energy"]), json_numbers
        ),
    },
)
native_documents = st.fixed_dictionaries(
    {"ts": st.just("2026-11-24T10:15:00+05:45")},
    optional={
        "import_kwh": json_numbers,
        "export_kwh": json_numbers,
        "power_w": json_numbers,
        "import_kwh_by_tariff": st.dictionaries(st.sampled_from(["peak", "off"]), json_numbers),
    },
)
JSON_FORMATS: dict[str, st.SearchStrategy[Any]] = {
    "tasmota": tasmota_documents,
    "shelly": shelly_gen1 | shelly_gen2,
    "native": native_documents
    | st.fixed_dictionaries({"readings": st.lists(native_documents, max_size=4)}),
}


@MANY
@given(st.data(), contexts)
def test_json_documents_from_the_grammar(data: st.DataObject, context: ParseContext) -> None:
    fmt = data.draw(st.sampled_from(sorted(JSON_FORMATS)), label="format")
    document = data.draw(JSON_FORMATS[fmt], label="document")
    decoded_or_refused(fmt, orjson.dumps(document), context)


@MANY
@given(st.data(), contexts)
def test_mutated_json_documents(data: st.DataObject, context: ParseContext) -> None:
    fmt = data.draw(st.sampled_from(sorted(JSON_FORMATS)), label="format")
    document = data.draw(JSON_FORMATS[fmt], label="document")
    decoded_or_refused(fmt, mutated(data, orjson.dumps(document)), context)


# --- the grammar does reach the checks ---------------------------------------------------------


def refusal_codes(examples: list[tuple[str, bytes]]) -> set[str]:
    codes = set()
    for fmt, data in examples:
        try:
            parse(fmt, data, ParseContext(meter_id="M-1"))
        except ParseError as error:
            codes.add(error.code)
    return codes


def test_the_grammars_produce_the_impossible_values_they_are_meant_to() -> None:
    # A guard for the properties above: they would pass vacuously if every frame were refused
    # for some other reason before the value checks.
    examples: list[tuple[str, bytes]] = [
        ("dsmr", mode_d(["1-0:1.8.1(-1*kWh)"])),
        ("dsmr", mode_d([f"1-0:1.8.1({'9' * 400})"])),
        ("iec62056-21", mode_c(["1-0:1.8.1*07(-1*kWh)"])),
        ("dlms", han_frame(notification([[bytes([1, 0, 1, 8, 0, 255]), -1, [0, WH]]]))),
        ("dlms", han_frame(notification([[bytes([1, 0, 1, 7, 0, 255]), float("nan")]]))),
        ("tasmota", orjson.dumps({"ENERGY": {"Total": -0.5}})),
        ("shelly", orjson.dumps({"mac": "AA", "emeters": [{"total": -1}]})),
        ("native", orjson.dumps({"ts": "2026-11-24T10:15:00Z", "import_kwh": -1})),
    ]
    assert refusal_codes(examples) == {"negative_register", "non_finite"}
