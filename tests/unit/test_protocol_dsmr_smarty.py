"""Luxembourg Smarty P1: DSMR telegrams inside DLMS general-glo-ciphering frames.

Frames are built here, independently of the parser: the telegram's CRC-16/ARC with a bitwise
implementation, the AES-128-GCM with the cryptography library's ``AESGCM``. Layout (Smarty P1
port specification, as summarised in the protocols issue): ``DB 08 <system title> 82 <length>
30 <frame counter> <cipher text> <12-byte tag>``; IV = system title + frame counter; AAD =
security control byte + authentication key (Smarty's published 00112233...EEFF by default).
The telegram is synthetic (Smarty-style header and codes, made-up values).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols.base import ParseContext, ParseError, parse
from meterhub.readings.model import Reading

LUXEMBOURG = ZoneInfo("Europe/Luxembourg")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEY = bytes.fromhex("AD9A6B2C3E4F50617283940516273849")  # made up, as a utility would hand out
SMARTY_AAD_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SYSTEM_TITLE = b"SAG" + bytes.fromhex("1030004D26")  # "SAG" + 5 bytes, 8 in all
CONTEXT = ParseContext(timezone=LUXEMBOURG, now=NOW, encryption_key=KEY)


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC, bit by bit (poly 0x8005 reflected, init 0, no final XOR)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_crc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the catalogue's check value for CRC-16/ARC


def telegram(*lines: str, crc: int | None = None) -> bytes:
    body = ("/Lux5\\253833833_D\r\n\r\n" + "".join(f"{line}\r\n" for line in lines) + "!").encode()
    return body + f"{crc16_arc(body) if crc is None else crc:04X}\r\n".encode()


LINES = (
    "1-3:0.2.8(42)",
    "0-0:1.0.0(260704101530S)",
    f"0-0:42.0.0({b'SAG1030004D26'.hex().upper()})",
    f"0-0:96.1.1({b'SAG1030004D26'.hex().upper()})",
    "1-0:1.8.0(001234.567*kWh)",
    "1-0:2.8.0(000089.012*kWh)",
    "1-0:3.8.0(000111.222*kvarh)",
    "1-0:1.7.0(01.234*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:32.7.0(231.4*V)",
    "1-0:31.7.0(005*A)",
)
PLAINTEXT = telegram(*LINES)


def smarty_frame(
    plaintext: bytes = PLAINTEXT,
    key: bytes = KEY,
    aad_key: bytes = SMARTY_AAD_KEY,
    counter: int = 7,
) -> bytes:
    frame_counter = counter.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(SYSTEM_TITLE + frame_counter, plaintext, b"\x30" + aad_key)
    cipher_text, tag = sealed[:-16], sealed[-16:-4]  # DLMS sends the first 12 tag bytes
    content = b"\x30" + frame_counter + cipher_text + tag
    return b"\xdb\x08" + SYSTEM_TITLE + b"\x82" + len(content).to_bytes(2, "big") + content


def parse_one(data: bytes, context: ParseContext = CONTEXT) -> Reading:
    [reading] = parse("dsmr", data, context)
    return reading


def refused(data: bytes, context: ParseContext = CONTEXT) -> str:
    with pytest.raises(ParseError) as error:
        parse("dsmr", data, context)
    return error.value.code


def test_frame_layout() -> None:
    frame = smarty_frame()
    assert frame[:10] == b"\xdb\x08" + SYSTEM_TITLE
    assert frame[10] == 0x82 and int.from_bytes(frame[11:13], "big") == len(frame) - 13
    assert frame[13] == 0x30 and frame[14:18] == b"\x00\x00\x00\x07"
    assert len(frame) == 18 + len(PLAINTEXT) + 12
    assert b"kWh" not in frame


def test_deciphered_telegram_gives_the_plaintexts_readings() -> None:
    reading = parse_one(smarty_frame())
    assert reading == parse_one(PLAINTEXT)
    assert reading.meter_id == "SAG1030004D26"
    assert reading.ts == datetime(2026, 7, 4, 8, 15, 30, tzinfo=UTC)  # CEST
    assert (reading.import_kwh, reading.export_kwh) == (1234.567, 89.012)
    assert (reading.power_w, reading.voltage_v, reading.current_a) == (1234.0, 231.4, 5.0)
    assert reading.extra["dsmr_version"] == "42"
    assert reading.extra["obis"]["1-0:3.8.0"] == {"value": 111.222, "unit": "kvarh"}


def test_authentication_key_other_than_smarty_default() -> None:
    own_aad = bytes(range(16))
    frame = smarty_frame(aad_key=own_aad)
    assert refused(frame) == "auth_failed"  # the default AAD key does not fit this frame
    keyed = ParseContext(timezone=LUXEMBOURG, encryption_key=KEY, authentication_key=own_aad)
    assert parse_one(frame, keyed).import_kwh == 1234.567


def test_wrong_key_is_refused() -> None:
    wrong = ParseContext(timezone=LUXEMBOURG, encryption_key=bytes(16))
    assert refused(smarty_frame(), wrong) == "wrong_key"


def test_tampered_tag_is_refused() -> None:
    frame = bytearray(smarty_frame())
    frame[-1] ^= 0x01
    assert refused(bytes(frame)) == "auth_failed"


CIPHER_TEXT_START = 18  # DB 08 <8-byte system title> 82 <2-byte length> 30 <4-byte counter>


def flipped(frame: bytes, position: int, bit: int) -> bytes:
    altered = bytearray(frame)
    altered[position] ^= 1 << bit
    return bytes(altered)


def test_every_flipped_bit_of_the_cipher_text_or_tag_is_auth_failed() -> None:
    # AES-GCM's cipher text is AES-CTR: a flipped bit flips the same plaintext bit, so the
    # telegram still deciphers to text (with a bad CRC or a garbled line); a wrong key does not.
    frame = smarty_frame()
    codes = {
        (position, bit): refused(flipped(frame, position, bit))
        for position in range(CIPHER_TEXT_START, len(frame))
        for bit in range(8)
    }
    assert set(codes.values()) == {"auth_failed"}
    assert len(codes) == 8 * (len(PLAINTEXT) + 12)


def test_a_flipped_security_control_bit_that_keeps_it_authenticated_is_auth_failed() -> None:
    frame = smarty_frame()
    # 0x30 = authenticated and encrypted; 0x01..0x08 (key set, suite) change only the AAD.
    assert {refused(flipped(frame, 13, bit)) for bit in range(4)} == {"auth_failed"}


@pytest.mark.parametrize("position", [*range(2, 10), *range(14, 18)])
def test_a_flipped_system_title_or_counter_reads_as_a_wrong_key(position: int) -> None:
    # The IV changes, so the plaintext turns to noise, exactly as with a wrong key: the bytes do
    # not tell the two apart (protocols/dsmr.py says so).
    assert refused(flipped(smarty_frame(), position, 0)) == "wrong_key"


@given(st.binary(min_size=16, max_size=16).filter(lambda key: key != KEY))
def test_any_wrong_key_is_wrong_key(key: bytes) -> None:
    wrong = ParseContext(timezone=LUXEMBOURG, encryption_key=key)
    assert refused(smarty_frame(), wrong) == "wrong_key"


def test_no_zone_given_reads_the_clock_as_central_european_time() -> None:
    # Luxembourg keeps the same clock as the Netherlands: DSMR's default zone fits.
    reading = parse_one(smarty_frame(), ParseContext(encryption_key=KEY))
    assert reading.ts == datetime(2026, 7, 4, 8, 15, 30, tzinfo=UTC)  # 10:15:30 CEST


def test_missing_key_is_refused() -> None:
    assert refused(smarty_frame(), ParseContext(timezone=LUXEMBOURG)) == "missing_key"


def test_plaintext_crc_is_still_checked() -> None:
    bad = telegram(*LINES, crc=crc16_arc(PLAINTEXT[: PLAINTEXT.rindex(b"!") + 1]) ^ 1)
    # The GCM tag is right, so this is no key problem: the telegram itself is damaged.
    assert refused(smarty_frame(bad)) == "bad_crc"


def test_frames_back_to_back_give_one_reading_each() -> None:
    second = telegram(*LINES[:4], "1-0:1.8.0(001235.000*kWh)")
    readings = parse("dsmr", smarty_frame() + smarty_frame(second, counter=8) + b"\r\n", CONTEXT)
    assert [r.import_kwh for r in readings] == [1234.567, 1235.0]


def test_truncated_frame_is_refused() -> None:
    frame = smarty_frame()
    assert refused(frame[:-5]) == "truncated_frame"


def test_bad_system_title_length_is_malformed() -> None:
    frame = smarty_frame()
    assert refused(frame[:1] + b"\x07" + frame[2:]) == "malformed_frame"


@given(st.binary(max_size=300))
def test_random_ciphered_content_never_crashes(content: bytes) -> None:
    frame = b"\xdb\x08" + SYSTEM_TITLE + b"\x82" + len(content).to_bytes(2, "big") + content
    with contextlib.suppress(ParseError):
        parse("dsmr", frame, CONTEXT)


def test_cli_deciphers_with_key(tmp_path: Path) -> None:
    path = tmp_path / "smarty.bin"
    path.write_bytes(smarty_frame())
    command = [sys.executable, "-m", "meterhub.cli", "parse", "--format", "dsmr"]
    command += ["--timezone", "Europe/Luxembourg", "--key", KEY.hex().upper(), str(path)]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (document,) = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert document["meter_id"] == "SAG1030004D26"
    assert document["ts"] == "2026-07-04T08:15:30+00:00"
    assert (document["import_kwh"], document["power_w"]) == (1234.567, 1234.0)

    command = [*command[:-3], str(path)]  # no --key
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr.startswith(b"missing_key:")
