"""DSMR P1 telegrams: Dutch DSMR 2.2 to 5.x, Belgian Fluvius e-MUCS, Luxembourg Smarty
(plaintext and encrypted), E.ON Hungary, Sagemcom T210-D-r (Austria), Iskra IE and EasyMeter Q3D.

A P1 telegram is an IEC 62056-21 mode D data message, so framing, CRC, data lines and the OBIS
mapping are shared with ``protocols.iec62056_21``; what is DSMR's own is here:

- Meter id: 0-0:96.1.1, sent as hex-encoded ASCII ("4B38..." = "K8EG..."), decoded when the
  decoded text is printable and a valid meter id, else used as sent. ``context.meter_id``
  (``--meter-id``, the meterhub meter id) replaces it in every reading, and the telegram's own
  id, when it differs, is kept in ``extra["frame_meter_id"]``; it is required when the telegram
  has none (E.ON Hungary, Iskra IE, Sagemcom, EasyMeter: their other identifiers stay in
  ``extra["obis"]``).
- Timestamp: 0-0:1.0.0 YYMMDDhhmmss with S (summer) or W (winter) is Dutch/Belgian local time:
  read in ``context.timezone``, and in Europe/Amsterdam when the context gives no zone
  (``DSMR_TIMEZONE``; Belgium, Luxembourg, Austria and Hungary keep the same clock). The flag
  picks the hour that repeats when the clocks go back; a flag that contradicts the zone
  elsewhere is kept and marked (``iec62056_21``'s docstring says why). An Irish meter needs
  ``Europe/Dublin``. DSMR 2.2/3 telegrams have no clock: ``context.now``.
- Version: 1-3:0.2.8 (DSMR 4+), 0-0:96.1.4 (Fluvius), kept in ``extra["dsmr_version"]``.
- M-Bus channels 0-n (gas 24.2.1, Belgian gas 24.2.3, water, heat, the DSMR 2.2/3 two-line gas
  24.3.0) go to ``extra["mbus"]`` with their channel, device type and timestamp.
- Encrypted telegrams (Luxembourg Smarty): the P1 port sends each telegram inside a DLMS
  general-glo-ciphering frame, ``DB 08 <system title> 82 <length> 30 <frame counter> <cipher>
  <12-byte GCM tag>`` (AES-128-GCM, IV = system title + frame counter, AAD = security control
  byte + authentication key). Input that starts with 0xDB is read as such frames (one or more,
  back to back) and deciphered by the DLMS parser's ``decipher`` with ``context.encryption_key``
  (the key the utility hands out) and ``context.authentication_key``, which defaults to the AAD
  key Smarty publishes (``SMARTY_AUTHENTICATION_KEY``). The plaintext is a telegram like any
  other, CRC checked. No key: ``missing_key``; wrong key: ``wrong_key``; wrong authentication key
  or a frame altered on the way: ``auth_failed``. The two are told apart by what the cipher text
  deciphers to without its tag: with a wrong key, noise; with the right key and altered cipher
  text, tag or security control byte, the telegram itself, with at most the altered bits wrong
  (``_looks_like_telegram``). An altered system title or frame counter changes the IV, which
  turns the plaintext into noise just as a wrong key does: nothing in the bytes tells those two
  apart, and they read as ``wrong_key``.

dsmr-parser (ndokter) was evaluated and not used: it needs the telegram variant chosen up front
(no version detection), silently drops lines it has no pattern for (we keep every code), logs
and skips values it cannot parse, lets other exception types escape (its Sagemcom T210-D-r spec
raises binascii.Error on a plaintext telegram), pins timestamps to Europe/Amsterdam, and pulls in
dlms_cosem, cryptography, serialx and Tailer for what is a line-based text format.
"""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from meterhub.protocols import obis
from meterhub.protocols.axdr import Reader
from meterhub.protocols.base import ParseContext, ParseError
from meterhub.protocols.iec62056_21 import (
    MAX_FRAME_BYTES,
    hex_to_ascii,
    parse_frames,
    split_mode_d,
    telegrams,
)
from meterhub.readings.model import METER_ID_PATTERN, Reading

# Luxembourg Smarty: the authentication key (GCM additional data after the security control
# byte) is the same for every meter, published in the Smarty P1 port specification; utilities
# hand out only the encryption key. ``context.authentication_key`` overrides it.
SMARTY_AUTHENTICATION_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
GENERAL_GLO_CIPHERING = 0xDB  # the DLMS APDU tag (as in ``dlms``, imported only when needed)
_SYSTEM_TITLE_BYTES = 8
# DSMR clocks are Dutch (and Belgian) local time: the zone when the context names none.
DSMR_TIMEZONE = ZoneInfo("Europe/Amsterdam")
# Deciphered bytes that are at least this long and at most this share of non-text bytes are a
# telegram with some bits altered. Noise (a wrong key) is text at 97 bytes in 256: the chance that
# 32 bytes of it pass is about 3e-9, and a telegram has hundreds of bytes.
_MIN_TELEGRAM_BYTES = 32
_MAX_NON_TEXT_SHARE = 0.1
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\r\n"


def dsmr_meter_id(groups_by_code: dict[str, list[str]]) -> tuple[str, str] | None:
    groups = groups_by_code.get(obis.EQUIPMENT_ID)
    if not groups or not groups[0]:
        return None
    raw = groups[0]
    decoded = hex_to_ascii(raw)
    if decoded is not None and METER_ID_PATTERN.match(decoded):
        return decoded, obis.EQUIPMENT_ID
    return raw, obis.EQUIPMENT_ID


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    if data[:1] != bytes([GENERAL_GLO_CIPHERING]):
        return _parse_plaintext(data, context)
    if len(data) > MAX_FRAME_BYTES:
        raise ParseError("frame_too_large", f"{len(data)} bytes; at most {MAX_FRAME_BYTES}")
    frames = _ciphered_frames(data)  # framing first: a damaged '/' is malformed, not keyless
    # Imported here: plaintext telegrams never load the DLMS parser and its AES dependency.
    from meterhub.protocols.dlms import decipher

    keys = replace(
        context, authentication_key=context.authentication_key or SMARTY_AUTHENTICATION_KEY
    )
    readings: list[Reading] = []
    for frame in frames:
        deciphered = decipher(frame, keys, _telegram_plaintext, _looks_like_telegram)
        readings += _parse_plaintext(deciphered, context)
    return readings


def _ciphered_frames(data: bytes) -> list[bytes]:
    """Back-to-back general-glo-ciphering frames, each cut by its own length field."""
    frames: list[bytes] = []
    position = 0
    while data[position:].strip(b"\r\n\t \x00"):
        if data[position] != GENERAL_GLO_CIPHERING:
            raise ParseError("malformed_frame", f"byte {position}: expected 0xDB or the end")
        reader = Reader(data, position + 1)
        if reader.byte() != _SYSTEM_TITLE_BYTES:
            raise ParseError("malformed_frame", "a ciphered telegram has an 8-byte system title")
        reader.take(_SYSTEM_TITLE_BYTES)
        reader.take(reader.length())  # security control, frame counter, cipher text, tag
        frames.append(data[position : reader.position])
        position = reader.position
    return frames


def _telegram_plaintext(plaintext: bytes) -> bytes:
    """The deciphered bytes when they are telegrams (with valid CRCs where sent); raises
    otherwise, which is how ``decipher`` tells a wrong key from a tampered frame."""
    try:
        found = [split_mode_d(telegram) for telegram in telegrams(plaintext)]
    except ParseError:
        raise
    except (ValueError, ArithmeticError, IndexError, KeyError) as exc:
        raise ParseError("malformed_frame", f"cannot decode: {exc}") from None
    if not found:
        raise ParseError("malformed_frame", "the deciphered frame holds no telegram")
    return plaintext


def _looks_like_telegram(plaintext: bytes) -> bool:
    """Whether bytes deciphered without a valid tag are a telegram with a few bits altered
    (text), rather than the noise that a wrong key gives."""
    if len(plaintext) < _MIN_TELEGRAM_BYTES:
        return False
    non_text = len(plaintext.translate(None, _TEXT_BYTES))
    return non_text <= _MAX_NON_TEXT_SHARE * len(plaintext)


def _parse_plaintext(data: bytes, context: ParseContext) -> list[Reading]:
    readings = parse_frames(data, context, dsmr_meter_id, "dsmr", DSMR_TIMEZONE)
    for reading in readings:
        found = reading.extra["obis"]
        for code in ("1-3:0.2.8", "0-0:96.1.4"):
            if code in found:
                reading.extra["dsmr_version"] = found[code].get("raw", found[code].get("value"))
                break
    return readings
