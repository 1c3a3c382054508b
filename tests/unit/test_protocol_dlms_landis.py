"""Landis+Gyr E450/E360 style HAN push: an OBIS-coded list, built byte by byte here.

No L+G HAN frame of this shape is in ../shared/conformance, so the frame is synthetic. Its layout
is written from memory, not from a document at hand: the Norwegian HAN list shape (NEK/NVE "HAN
list" descriptions, as the meter makers published them for their meters; Landis+Gyr's E450
description follows the same pattern as I recall it): a structure of (OBIS octet string, value)
pairs, registers followed by their {scaler, unit}, led by the list version identifier
1-1:0.2.129, meter id 0-0:96.1.0 and meter type 0-0:96.1.7; the hourly list adds the clock
0-0:1.0.0 and the energy registers 1.8.0 / 2.8.0. The list version text "LGF_V0001" and all the
values are made up. The HDLC addresses (destination CE FF, source 03, control 13) are those of
the L+G E450 captures in UtilitechAS/amsreader-firmware test/payloads/landis-gyr (gh501, gh949).

Those real captures are NOT this shape: the Swiss E450 ones are general-block-transfer pushes
with a capture-object descriptor array, the Slovenian one a positional list without OBIS codes,
the Austrian ones encrypted with a proprietary layout. This test covers the OBIS-coded form only.

Checksums (CRC-16/X-25) and A-XDR are computed here, independently of the parser's own code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from meterhub.protocols import dlms
from meterhub.protocols.base import ParseContext
from meterhub.protocols.hdlc import HdlcFrame, encode_frame

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
W, A, V, WH = 27, 33, 35, 30  # DLMS unit enumeration


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25, bit by bit: poly 0x1021 reflected (0x8408), init 0xFFFF, final XOR 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_crc_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E  # the catalogue's check value for CRC-16/X-25


# --- A-XDR, by hand ----------------------------------------------------------------------------


def octets(value: bytes) -> bytes:
    return b"\x09" + bytes([len(value)]) + value


def visible(text: str) -> bytes:
    return b"\x0a" + bytes([len(text)]) + text.encode()


def u32(value: int) -> bytes:
    return b"\x06" + value.to_bytes(4, "big")


def u16(value: int) -> bytes:
    return b"\x12" + value.to_bytes(2, "big")


def structure(*items: bytes) -> bytes:
    return b"\x02" + bytes([len(items)]) + b"".join(items)


def obis(code: str) -> bytes:
    return octets(bytes(int(part) for part in code.split(".")))


def register(code: str, value: bytes, scaler: int, unit: int) -> bytes:
    scaler_unit = structure(b"\x0f" + scaler.to_bytes(1, "big", signed=True), bytes([0x16, unit]))
    return structure(obis(code), value, scaler_unit)


def clock(year: int, month: int, day: int, hour: int) -> bytes:
    # DLMS date-time: year, month, day, weekday (FF), h, m, s, hundredths (FF),
    # deviation 8000 (not specified: the meter's wall clock), status 00.
    raw = year.to_bytes(2, "big") + bytes([month, day, 0xFF, hour, 0, 0, 0xFF, 0x80, 0x00, 0x00])
    return structure(obis("0.0.1.0.0.255"), octets(raw))


def landis_list(hourly: bool) -> bytes:
    items = [
        structure(obis("1.1.0.2.129.255"), visible("LGF_V0001")),
        structure(obis("0.0.96.1.0.255"), visible("7359990012345678")),
        structure(obis("0.0.96.1.7.255"), visible("E450")),
        register("1.0.1.7.0.255", u32(2345), 0, W),
        register("1.0.2.7.0.255", u32(120), 0, W),
        register("1.0.31.7.0.255", u16(512), -2, A),  # 5.12 A
        register("1.0.51.7.0.255", u16(387), -2, A),
        register("1.0.71.7.0.255", u16(95), -2, A),
        register("1.0.32.7.0.255", u16(2314), -1, V),  # 231.4 V
        register("1.0.52.7.0.255", u16(2298), -1, V),
        register("1.0.72.7.0.255", u16(2321), -1, V),
    ]
    if hourly:
        items += [
            clock(2026, 3, 15, 14),
            register("1.0.1.8.0.255", u32(12345678), 0, WH),  # 12345.678 kWh
            register("1.0.2.8.0.255", u32(4321), 0, WH),
        ]
    return structure(*items)


def notification(body: bytes) -> bytes:
    # data-notification, long-invoke-id-and-priority, date-time absent (00), body.
    return b"\x0f\x40\x00\x00\x01\x00" + body


def hdlc_frame(information: bytes) -> bytes:
    header_length = 2 + 2 + 1 + 1  # format, destination CE FF, source 03, control 13
    length = header_length + 2 + len(information) + 2  # + HCS, information, FCS
    header = (0xA000 | length).to_bytes(2, "big") + b"\xce\xff\x03\x13"
    with_hcs = header + crc16_x25(header).to_bytes(2, "little")
    body = with_hcs + information
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def landis_frame(hourly: bool) -> bytes:
    return hdlc_frame(b"\xe6\xe7\x00" + notification(landis_list(hourly)))


# --- tests -------------------------------------------------------------------------------------


def test_frame_matches_the_project_encoder() -> None:
    information = b"\xe6\xe7\x00" + notification(landis_list(True))
    frame = HdlcFrame(b"\xce\xff", b"\x03", 0x13, information)
    assert encode_frame(frame) == landis_frame(True)


def test_hourly_list_maps_to_reading_fields() -> None:
    (reading,) = dlms.parse(landis_frame(True), ParseContext(timezone=OSLO, now=NOW))
    assert reading.meter_id == "7359990012345678"
    assert reading.ts == datetime(2026, 3, 15, 13, 0, tzinfo=UTC)  # 14:00 in Oslo (CET)
    assert reading.power_w == 2225.0  # 2345 W import - 120 W export
    assert (reading.import_kwh, reading.export_kwh) == (12345.678, 4.321)
    assert (reading.voltage_v, reading.current_a) == (231.4, 5.12)
    assert reading.extra["list_version"] == "LGF_V0001"
    phases = reading.extra["obis"]
    assert phases["0-0:96.1.7"] == {"value": "E450", "unit": ""}
    assert phases["1-0:51.7.0"] == {"value": 3.87, "unit": "A"}
    assert phases["1-0:71.7.0"] == {"value": 0.95, "unit": "A"}
    assert phases["1-0:52.7.0"] == {"value": 229.8, "unit": "V"}
    assert phases["1-0:72.7.0"] == {"value": 232.1, "unit": "V"}
    assert "unlabelled" not in reading.extra


def test_short_list_without_clock_or_energy() -> None:
    (reading,) = dlms.parse(landis_frame(False), ParseContext(timezone=OSLO, now=NOW))
    assert reading.ts == NOW
    assert (reading.import_kwh, reading.export_kwh) == (None, None)
    assert (reading.power_w, reading.voltage_v) == (2225.0, 231.4)


def test_hex_text_of_the_frame() -> None:
    text = landis_frame(True).hex(" ").upper().encode()
    assert dlms.parse(text, ParseContext(timezone=OSLO)) == dlms.parse(
        landis_frame(True), ParseContext(timezone=OSLO)
    )
