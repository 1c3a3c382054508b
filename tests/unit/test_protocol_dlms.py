"""DLMS/COSEM push messages from HAN ports: frames built here, checksums computed here."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols import dlms
from meterhub.protocols.axdr import AxdrValue, encode_data, encode_length
from meterhub.protocols.base import ParseContext, ParseError
from meterhub.protocols.hdlc import HdlcFrame, encode_frame
from meterhub.readings.model import Reading

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OSLO = ZoneInfo("Europe/Oslo")
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SYSTEM_TITLE = bytes.fromhex("4B464D1020000001")
W, VAR, A, V, WH = 27, 29, 33, 35, 30  # DLMS unit enumeration


def obis(code: str) -> bytes:
    """'1.0.1.7.0.255' -> the 6-byte logical name."""
    return bytes(int(part) for part in code.split("."))


def date_time(
    year: int, month: int, day: int, hour: int, minute: int, second: int,
    deviation: int = -0x8000, status: int = 0,
) -> bytes:  # fmt: skip
    return (
        year.to_bytes(2, "big")
        + bytes([month, day, 0xFF, hour, minute, second, 0xFF])
        + deviation.to_bytes(2, "big", signed=True)
        + bytes([status])
    )


def notification(body: AxdrValue, stamp: bytes | None = None) -> bytes:
    header = b"\x0f\x40\x00\x00\x00" + (b"\x0c" + stamp if stamp else b"\x00")
    return header + encode_data(body)


def han_frame(apdu: bytes, segmented: bool = False, llc: bool = True) -> bytes:
    information = (b"\xe6\xe7\x00" if llc else b"") + apdu
    return encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, information, segmented))


def aidon_body(
    import_w: int = 2021, export_w: int = 0, meter_id: str = "7359992890497997"
) -> list[AxdrValue]:
    def register(code: str, value: int, scaler: int, unit: int) -> list[AxdrValue]:
        return [obis(code), value, [scaler, unit]]

    return [
        [obis("1.1.0.2.129.255"), "AIDON_V0001"],
        [obis("0.0.96.1.0.255"), meter_id],
        register("1.0.1.7.0.255", import_w, 0, W),
        register("1.0.2.7.0.255", export_w, 0, W),
        register("1.0.31.7.0.255", 9, -1, A),
        register("1.0.51.7.0.255", 37, -1, A),
        register("1.0.32.7.0.255", 2275, -1, V),
        register("1.0.52.7.0.255", 2264, -1, V),
        register("1.0.1.8.0.255", 10955225, 1, WH),
        register("1.0.2.8.0.255", 0, 1, WH),
        register("1.0.3.7.0.255", 472, 0, VAR),
    ]


def parse(data: bytes, **context: object) -> list[Reading]:
    fields: dict[str, object] = {"now": NOW}
    fields.update(context)
    return dlms.parse(data, ParseContext(**fields))  # type: ignore[arg-type]


def refused(data: bytes, **context: object) -> str:
    with pytest.raises(ParseError) as error:
        parse(data, **context)
    return error.value.code


def test_obis_coded_list_with_scalers_maps_to_reading_fields() -> None:
    (reading,) = parse(han_frame(notification(aidon_body())))
    assert reading.meter_id == "7359992890497997"
    assert reading.import_kwh == 109552.25  # 10955225 x 10^1 Wh
    assert reading.export_kwh == 0.0
    assert reading.voltage_v == 227.5  # L1: 2275 x 10^-1 V
    assert reading.current_a == 0.9
    assert reading.extra["list_version"] == "AIDON_V0001"
    phases = reading.extra["obis"]
    assert phases["1-0:52.7.0"] == {"value": 226.4, "unit": "V"}
    assert phases["1-0:51.7.0"] == {"value": 3.7, "unit": "A"}
    assert phases["1-0:3.7.0"] == {"value": 472.0, "unit": "var"}


def test_power_is_import_minus_export() -> None:
    (reading,) = parse(han_frame(notification(aidon_body(import_w=200, export_w=500))))
    assert reading.power_w == -300.0  # 200 W import - 500 W export


def test_kamstrup_flat_list_uses_kamstrup_scaling() -> None:
    body: list[AxdrValue] = [
        "Kamstrup_V0001",
        obis("1.1.0.0.5.255"), "5706567202753025",
        obis("1.1.1.7.0.255"), 1247,
        obis("1.1.31.7.0.255"), 189,
        obis("1.1.32.7.0.255"), 236,
        obis("1.1.1.8.0.255"), 8582328,
    ]  # fmt: skip
    (reading,) = parse(han_frame(notification(body)))
    assert reading.meter_id == "5706567202753025"
    assert reading.power_w == 1247.0
    assert reading.current_a == 1.89  # 0.01 A steps
    assert reading.voltage_v == 236.0
    assert reading.import_kwh == 85823.28  # 10 Wh steps
    assert reading.extra["obis"]["1-1:31.7.0"] == {"value": 1.89, "unit": "A"}


def test_kaifa_positional_list_2() -> None:
    body: list[AxdrValue] = [
        b"KFM_001", b"6970631403275928", b"MA304H3E",
        4097, 0, 195, 0, 12056, 5754, 13412, 2392, 0, 2397,
    ]  # fmt: skip
    (reading,) = parse(han_frame(notification(body)))
    assert reading.meter_id == "6970631403275928"
    assert reading.power_w == 4097.0
    assert reading.current_a == 12.056  # mA
    assert reading.voltage_v == 239.2  # 0.1 V
    assert reading.extra["obis"]["0-0:96.1.7"] == {"value": "MA304H3E", "unit": ""}
    assert reading.extra["obis"]["1-0:72.7.0"] == {"value": 239.7, "unit": "V"}


def test_kaifa_list_1_is_active_power_only() -> None:
    (reading,) = parse(han_frame(notification([1320])), meter_id="M-1")
    assert reading.power_w == 1320.0
    assert reading.meter_id == "M-1"


def test_unknown_positional_list_is_refused() -> None:
    assert refused(han_frame(notification([b"KFM_001", 1, 2])), meter_id="M-1") == "unknown_list"


def test_frame_without_meter_id_needs_one_from_the_context() -> None:
    apdu = notification([[obis("1.0.1.7.0.255"), 1661, [0, W]]])
    assert refused(han_frame(apdu)) == "missing_meter_id"
    (reading,) = parse(han_frame(apdu), meter_id="HAN-7")
    assert reading.meter_id == "HAN-7"
    assert "frame_meter_id" not in reading.extra


def test_context_meter_id_overrides_the_frames_and_keeps_it_in_extra() -> None:
    frame = han_frame(notification(aidon_body()))
    (reading,) = parse(frame, meter_id="HAN-7")
    assert reading.meter_id == "HAN-7"
    assert reading.extra["frame_meter_id"] == "7359992890497997"
    (same,) = parse(frame, meter_id="7359992890497997")
    assert same.meter_id == "7359992890497997"
    assert "frame_meter_id" not in same.extra
    (own,) = parse(frame)
    assert own.meter_id == "7359992890497997"
    assert "frame_meter_id" not in own.extra


def test_context_meter_id_overrides_a_positional_lists_id() -> None:
    body: list[AxdrValue] = [
        b"KFM_001", b"6970631403275928", b"MA304H3E",
        4097, 0, 195, 0, 12056, 5754, 13412, 2392, 0, 2397,
    ]  # fmt: skip
    (reading,) = parse(han_frame(notification(body)), meter_id="HAN-7")
    assert reading.meter_id == "HAN-7"
    assert reading.extra["frame_meter_id"] == "6970631403275928"


def test_frame_meter_id_that_is_no_valid_id() -> None:
    frame = han_frame(notification(aidon_body(meter_id="not an id")))
    assert refused(frame) == "bad_meter_id"
    # With an id given, the frame's is not needed: kept as sent, like DSMR's 0-0:96.1.1.
    (reading,) = parse(frame, meter_id="HAN-7")
    assert (reading.meter_id, reading.extra["frame_meter_id"]) == ("HAN-7", "not an id")


def test_context_meter_id_that_is_no_valid_id_is_refused() -> None:
    assert refused(han_frame(notification(aidon_body())), meter_id="a b") == "bad_meter_id"


def test_time_without_deviation_is_read_in_the_context_zone() -> None:
    stamp = date_time(2021, 12, 10, 16, 57, 0)
    (reading,) = parse(han_frame(notification(aidon_body(), stamp)), timezone=OSLO)
    assert reading.ts == datetime(2021, 12, 10, 15, 57, tzinfo=UTC)  # Oslo is +01:00 in December


def test_time_with_deviation_ignores_the_context_zone() -> None:
    # DLMS deviation is UTC minus local time: CEST is -120.
    stamp = date_time(2021, 7, 1, 12, 0, 0, deviation=-120, status=0x80)
    (reading,) = parse(han_frame(notification(aidon_body(), stamp)), timezone=ZoneInfo("UTC"))
    assert reading.ts == datetime(2021, 7, 1, 10, 0, tzinfo=UTC)


def test_daylight_saving_bit_picks_the_hour_in_autumn() -> None:
    # 02:30 on 2021-10-31 happens twice in Oslo: first in CEST (+02), then in CET (+01).
    summer = date_time(2021, 10, 31, 2, 30, 0, status=0x80)
    winter = date_time(2021, 10, 31, 2, 30, 0, status=0x00)
    (first,) = parse(han_frame(notification(aidon_body(), summer)), timezone=OSLO)
    (second,) = parse(han_frame(notification(aidon_body(), winter)), timezone=OSLO)
    assert first.ts == datetime(2021, 10, 31, 0, 30, tzinfo=UTC)
    assert second.ts == datetime(2021, 10, 31, 1, 30, tzinfo=UTC)


def test_clock_element_is_used_when_the_apdu_has_no_time() -> None:
    body: list[AxdrValue] = [
        [obis("0.0.1.0.0.255"), date_time(2025, 12, 14, 16, 0, 0)],
        *aidon_body(),
    ]
    (reading,) = parse(han_frame(notification(body)))
    assert reading.ts == datetime(2025, 12, 14, 16, 0, tzinfo=UTC)


def test_no_time_at_all_uses_now() -> None:
    (reading,) = parse(han_frame(notification(aidon_body())))
    assert reading.ts == NOW


def test_invalid_date_is_refused() -> None:
    stamp = date_time(2021, 2, 30, 12, 0, 0)
    assert refused(han_frame(notification(aidon_body(), stamp))) == "bad_timestamp"


def test_hex_text_with_whitespace_equals_binary() -> None:
    raw = han_frame(notification(aidon_body()))
    text = raw.hex().upper()
    spaced = ("\n".join(text[i : i + 32] for i in range(0, len(text), 32)) + "\n").encode()
    assert parse(spaced) == parse(raw)


def test_several_frames_give_one_reading_each() -> None:
    stream = han_frame(notification(aidon_body(import_w=1))) + han_frame(
        notification(aidon_body(import_w=2))
    )
    assert [r.power_w for r in parse(stream)] == [1.0, 2.0]


def test_segmented_frames_are_joined() -> None:
    information = b"\xe6\xe7\x00" + notification(aidon_body())
    half = len(information) // 2
    stream = encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, information[:half], True))
    stream += encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, information[half:], False))
    (reading,) = parse(stream)
    assert reading.import_kwh == 109552.25


def test_bad_checksum() -> None:
    raw = bytearray(han_frame(notification(aidon_body())))
    raw[20] ^= 0xFF
    assert refused(bytes(raw)) == "bad_crc"


def test_truncated_stream() -> None:
    raw = han_frame(notification(aidon_body()))
    assert refused(raw[: len(raw) // 2]) == "truncated_frame"


def test_text_that_is_not_hex_is_refused() -> None:
    assert refused(b"hello meter") == "bad_frame"


def test_float_values_decode() -> None:
    # float64 (tag 0x18) is 8 bytes: encode_data writes Python floats that way.
    apdu = notification([[obis("1.0.32.7.0.255"), 231.5, [0, V]], [obis("1.0.31.7.0.255"), 2.5]])
    (reading,) = parse(han_frame(apdu), meter_id="M-1")
    assert (reading.voltage_v, reading.current_a) == (231.5, 2.5)


def test_non_numeric_value_for_a_register_is_refused() -> None:
    apdu = notification([[obis("1.0.1.8.0.255"), "lots", [0, WH]]])
    assert refused(han_frame(apdu), meter_id="M-1") == "bad_value"


# --- impossible values --------------------------------------------------------------------------


def with_entry(code: str, value: AxdrValue, scaler_unit: list[AxdrValue] | None) -> bytes:
    entry: list[AxdrValue] = [obis(code), value] + ([scaler_unit] if scaler_unit else [])
    return han_frame(notification([*aidon_body(), entry]))


@pytest.mark.parametrize(
    ("code", "value", "scaler_unit"),
    [
        ("1.0.1.8.0.255", -4426, [0, WH]),  # a signed 1.8.0 (double-long)
        ("1.0.2.8.0.255", -1, [1, WH]),
        ("1.0.3.8.0.255", -10, [0, 32]),  # reactive energy, varh: kept in extra only
        ("1.0.1.8.0.7", -5, [0, WH]),  # a billing period's 1.8.0: no field in the table
        ("1.0.1.8.5.255", -5, None),  # tariff 5, no scaler: no field in the table either
    ],
)
def test_a_negative_cumulative_register_is_refused(
    code: str, value: int, scaler_unit: list[AxdrValue] | None
) -> None:
    assert refused(with_entry(code, value, scaler_unit)) == "negative_register"


def test_a_kamstrup_channel_1_register_below_zero_is_refused() -> None:
    body: list[AxdrValue] = [
        "Kamstrup_V0001",
        obis("1.1.0.0.5.255"), "5706567202753025",
        obis("1.1.1.8.0.255"), -1,
    ]  # fmt: skip
    assert refused(han_frame(notification(body))) == "negative_register"


@pytest.mark.parametrize(
    ("value", "scaler_unit"),
    [
        (float("nan"), [0, V]),  # NaN in the frame (float64)
        (float("inf"), [0, WH]),
        (1e300, [127, WH]),  # finite in the frame, infinite once scaled by 10^127
    ],
)
def test_a_value_that_is_not_finite_is_refused(value: float, scaler_unit: list[AxdrValue]) -> None:
    code = "1.0.1.8.0.255" if scaler_unit[1] == WH else "1.0.32.7.0.255"
    assert refused(with_entry(code, value, scaler_unit)) == "non_finite"


def test_a_non_finite_float_is_refused_in_an_element_the_reading_does_not_use() -> None:
    assert refused(with_entry("1.0.99.7.0.255", float("nan"), None)) == "non_finite"


def test_negative_instantaneous_values_are_accepted() -> None:
    pf: AxdrValue = [obis("1.0.13.7.0.255"), -95, [-2, 255]]  # -0.95
    body: list[AxdrValue] = [*aidon_body(), pf]
    body[2] = [obis("1.0.1.7.0.255"), -300, [0, W]]  # a meter that signs its net power
    (reading,) = parse(han_frame(notification(body)))
    assert (reading.power_w, reading.pf) == (-300.0, -0.95)


# --- AES-GCM: ciphering built here with the cryptography library, independent of the parser ---


def glo_ciphered(
    apdu: bytes, ek: bytes = EK, ak: bytes = AK, security_control: int = 0x30, counter: int = 1
) -> bytes:
    invocation = counter.to_bytes(4, "big")
    iv = SYSTEM_TITLE + invocation
    sealed = AESGCM(ek).encrypt(iv, apdu, bytes([security_control]) + ak)
    # DLMS truncates the GCM tag to 12 bytes; encryption only sends no tag.
    tag = sealed[-16:-4] if security_control == 0x30 else b""
    payload = sealed[:-16] + tag
    content = bytes([security_control]) + invocation + payload
    return b"\xdb\x08" + SYSTEM_TITLE + encode_length(len(content)) + content


def test_encrypted_push_deciphers_to_the_same_reading() -> None:
    plain = notification(aidon_body(), date_time(2021, 12, 10, 16, 57, 0))
    ciphered = han_frame(glo_ciphered(plain))
    assert plain not in ciphered
    keys = {"encryption_key": EK, "authentication_key": AK}
    assert parse(ciphered, **keys) == parse(han_frame(plain))


def test_encryption_only_push() -> None:
    plain = notification(aidon_body())
    ciphered = han_frame(glo_ciphered(plain, security_control=0x20))
    assert parse(ciphered, encryption_key=EK) == parse(han_frame(plain))


def test_wrong_encryption_key_is_refused() -> None:
    ciphered = han_frame(glo_ciphered(notification(aidon_body())))
    wrong = bytes(16)
    assert refused(ciphered, encryption_key=wrong, authentication_key=AK) == "wrong_key"


def test_wrong_authentication_key_is_refused() -> None:
    ciphered = han_frame(glo_ciphered(notification(aidon_body())))
    assert refused(ciphered, encryption_key=EK, authentication_key=bytes(16)) == "auth_failed"


def test_tampered_tag_is_refused() -> None:
    apdu = bytearray(glo_ciphered(notification(aidon_body())))
    apdu[-1] ^= 0x01
    code = refused(han_frame(bytes(apdu)), encryption_key=EK, authentication_key=AK)
    assert code == "auth_failed"


def test_a_flipped_cipher_text_bit_is_auth_failed_not_a_wrong_key() -> None:
    plain = notification(aidon_body(), date_time(2021, 12, 10, 16, 57, 0))
    apdu = glo_ciphered(plain)
    start = len(apdu) - 12 - len(plain)  # the cipher text, then the 12-byte tag
    codes: dict[int, set[str]] = {}
    for position in range(start, len(apdu)):
        for bit in range(8):
            altered = bytearray(apdu)
            altered[position] ^= 1 << bit
            code = refused(han_frame(bytes(altered)), encryption_key=EK, authentication_key=AK)
            codes.setdefault(position - start, set()).add(code)
    wrong_key = {offset for offset, found in codes.items() if "wrong_key" in found}
    # Only the APDU tag (0x0F) and the date-time's length byte: altered, the plaintext neither
    # starts as a notification nor decodes, exactly like noise from a wrong key.
    assert wrong_key <= {0, 5}
    assert set().union(*codes.values()) <= {"auth_failed", "wrong_key"}


def test_ciphered_push_without_keys_is_refused() -> None:
    ciphered = han_frame(glo_ciphered(notification(aidon_body())))
    assert refused(ciphered) == "missing_key"
    assert refused(ciphered, encryption_key=EK) == "missing_key"


# --- robustness ---------------------------------------------------------------------------------

SAMPLE = han_frame(notification(aidon_body(), date_time(2021, 12, 10, 16, 57, 0)))
SAMPLE_INFORMATION = b"\xe6\xe7\x00" + notification(aidon_body())
KEYS = ParseContext(meter_id="M-1", now=NOW, encryption_key=EK, authentication_key=AK)


def never_crashes(data: bytes) -> None:
    try:
        readings = dlms.parse(data, KEYS)
    except ParseError:
        return
    assert all(isinstance(reading, Reading) for reading in readings)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    never_crashes(data)


@given(st.data())
def test_mutated_frames_never_crash(data: st.DataObject) -> None:
    raw = bytearray(SAMPLE)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    never_crashes(bytes(raw))


@given(st.data())
def test_mutated_apdus_in_valid_frames_never_crash(data: st.DataObject) -> None:
    # The checksums are recomputed, so the corruption reaches the A-XDR decoder.
    information = bytearray(SAMPLE_INFORMATION)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        information[data.draw(st.integers(3, len(information) - 1))] = data.draw(
            st.integers(0, 255)
        )
    cut = data.draw(st.integers(3, len(information)), label="cut")
    never_crashes(encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, bytes(information[:cut]))))


@given(st.binary(min_size=1, max_size=200))
def test_random_ciphered_content_never_crashes(content: bytes) -> None:
    apdu = b"\xdb\x08" + SYSTEM_TITLE + encode_length(len(content)) + content
    never_crashes(han_frame(apdu))
