"""DLMS/COSEM push messages from HAN ports: HDLC frames carrying a data-notification APDU.

Input is the bytes a HAN port sends (one or more HDLC frames), or the same as hex text (whitespace
and newlines allowed). Frames are cut by their length field (``hdlc``); segmented frames are
joined; the LLC header (E6 E7 00) is dropped; a general-glo-ciphering or general-ded-ciphering
APDU is deciphered with the context's keys (``decipher``, which the DSMR parser shares for
Luxembourg Smarty's encrypted telegrams); the data-notification body is decoded (``axdr``).
One reading per notification.

The body is read in one of two ways:

- OBIS-coded lists. Aidon sends an array of ``{OBIS, value, {scaler, unit}}`` structures;
  Kamstrup a flat structure ``list version, OBIS, value, OBIS, value, ...`` without scalers;
  Landis+Gyr and others send one of these shapes. Both are read by pairing every 6-byte octet
  string with the value after it (and the scaler/unit structure after that, when there is one).
- Positional lists (Kaifa): values only, in an order fixed per list; see ``KAIFA_LISTS``.

Values become reading fields through the shared table in ``obis`` (import_kwh 1.8.0, export_kwh
2.8.0, power_w = 1.7.0 - 2.7.0, voltage_v / current_a from L1); everything else, every phase
included, stays under ``extra["obis"]`` keyed by its code as sent, with value and unit.
Kamstrup numbers its electricity channel B = 1 (``1-1:1.7.0``): it feeds the same fields as B = 0.

Meter id: ``context.meter_id`` when given (it overrides the frame's, as for DSMR and IEC 62056-21;
the frame's own id, when it differs, is kept in ``extra["frame_meter_id"]``), else the list's
0-0:96.1.0 (Aidon, Kaifa) or 1-1:0.0.5 (Kamstrup); ``missing_meter_id`` when neither (list 1).

Time: the APDU's date-time, else the list's clock element (0-x:1.0.0), else ``context.now``. A
DLMS date-time without a deviation is the meter's wall clock, read in ``context.timezone`` (UTC
when the context gives none).

Impossible values refuse the notification (``protocols.checks``): a float that is not finite
(``non_finite``, in any element, already in ``axdr``) or becomes infinite once scaled, and a
cumulative electricity register below zero (``negative_register``: a signed 1.8.0, any A = 1,
D = 8 code, with or without a field in the OBIS table). A notification is one snapshot of one
meter: nothing in it is kept when one of its registers is impossible.
"""

from __future__ import annotations

import binascii
import hmac
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meterhub.protocols import hdlc
from meterhub.protocols.axdr import AxdrValue, Reader, decode_data
from meterhub.protocols.base import FRAME_METER_ID, ParseContext, ParseError
from meterhub.protocols.checks import checked_reading, register
from meterhub.protocols.obis import (
    CLOCK,
    IN_READING_CODES,
    OBIS_FIELDS,
    ObisValue,
    canonical,
    convert,
    is_register,
    obis_from_bytes,
    reading_fields,
)
from meterhub.readings.model import METER_ID_PATTERN, Reading

MAX_INPUT_BYTES = 1 << 20

DATA_NOTIFICATION = 0x0F
GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC
_LLC_HEADERS = (b"\xe6\xe7\x00", b"\xe6\xe6\x00")  # response / command LSAPs, quality 0
_GCM_TAG_BYTES = 12  # DLMS security suite 0/1: 96-bit authentication tag
_DATE_TIME_STARTS = (b"\x00", b"\x0c", b"\x09")  # a date-time: none, 12 bytes, tagged
_T = TypeVar("_T")

# DLMS unit enumeration (Blue Book, "Register" class, unit) -> unit as obis.convert spells it.
DLMS_UNITS: dict[int, str] = {
    27: "W", 28: "VA", 29: "var", 30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz",
    255: "",
}  # fmt: skip

# Codes that name the meter (as text): Aidon and Kaifa 0-0:96.1.0, Kamstrup its GS1 number.
METER_ID_CODES = frozenset({"0-0:96.1.0", "1-1:0.0.5", "1-0:0.0.5"})
_LIST_VERSION_CDE = "0.2.129"  # 1-1:0.2.129, OBIS list version identifier (NVE lists)
_CLOCK_CDE = CLOCK.split(":")[1]  # 0-0:1.0.0 (Aidon, Kaifa), 0-1:1.0.0 (Kamstrup)

# Lists without scalers: (C, D) of the code -> (scaler, unit) that the maker documents.
Scaling = Mapping[tuple[int, int], tuple[int, str]]


def _scaling(power: int, current: int, voltage: int, energy: int) -> Scaling:
    table: dict[tuple[int, int], tuple[int, str]] = {}
    for c in (1, 2, 21, 22, 41, 42, 61, 62):
        table[(c, 7)] = (power, "W")
    for c in (3, 4, 23, 24, 43, 44, 63, 64):
        table[(c, 7)] = (power, "var")
    for c in (31, 51, 71):
        table[(c, 7)] = (current, "A")
    for c in (32, 52, 72):
        table[(c, 7)] = (voltage, "V")
    table[(1, 8)] = table[(2, 8)] = (energy, "Wh")
    table[(3, 8)] = table[(4, 8)] = (energy, "varh")
    return table


# Kamstrup, Norway: "HAN NVE information sheet" (documentation.kamstrup.com): power W, current
# 0.01 A, voltage 1 V, energy 10 Wh. Checked against roarfred/AmsToMqttBridge
# Samples/Kamstrup/obisdata.md (564 -> 5.64 A) and the amsreader-firmware golden decodes.
KAMSTRUP_SCALING = _scaling(power=0, current=-2, voltage=0, energy=1)
# Kaifa KFM_001 ("Kaifa HAN OBIS codes KFM_001"): power W, current mA, voltage 0.1 V, energy Wh.
KAIFA_SCALING = _scaling(power=0, current=-3, voltage=-1, energy=0)

_KAIFA_IDS = ("1-1:0.2.129", "0-0:96.1.0", "0-0:96.1.7")
_POWERS = ("1-0:1.7.0", "1-0:2.7.0", "1-0:3.7.0", "1-0:4.7.0")
_ENERGY = ("0-0:1.0.0", "1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0")
_THREE_PHASE = ("1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0", "1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0")
# Kaifa sends values without OBIS codes, in a fixed order per list; the list is known by its
# element count. Source: Kaifa "HAN OBIS codes KFM_001" (S1001), as broken down in
# roarfred/AmsToMqttBridge Samples/Kaifa/obisdata.md (lists 0x01, 0x0D, 0x12 of an MA304H3E)
# and HanReader/src/Kaifa.h, whose fork stedy6/AmsToMqttBridge adds the single-phase lists 0x09
# and 0x0E. List 1 has no list version; the others start with "KFM_001".
KAIFA_LISTS: dict[int, tuple[str, ...]] = {
    1: ("1-0:1.7.0",),
    9: (*_KAIFA_IDS, *_POWERS, "1-0:31.7.0", "1-0:32.7.0"),
    13: (*_KAIFA_IDS, *_POWERS, *_THREE_PHASE),
    14: (*_KAIFA_IDS, *_POWERS, "1-0:31.7.0", "1-0:32.7.0", *_ENERGY),
    18: (*_KAIFA_IDS, *_POWERS, *_THREE_PHASE, *_ENERGY),
}


@dataclass(slots=True)
class _Entry:
    code: str
    value: AxdrValue
    scaler_unit: tuple[int, int] | None = None


@dataclass(slots=True)
class _Notification:
    date_time: bytes | None
    entries: list[_Entry]
    scaling: Scaling | None
    list_version: str | None = None
    unlabelled: list[AxdrValue] = field(default_factory=list)


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    """Readings from HAN port output (binary HDLC frames or their hex text), one per push."""
    try:
        return [_reading(apdu, context) for apdu in _apdus(_frame_bytes(data))]
    except ParseError:
        raise
    except RecursionError:  # pragma: no cover - the A-XDR depth limit should prevent it
        raise ParseError("bad_apdu", "A-XDR data nested too deeply") from None


def _frame_bytes(data: bytes) -> bytes:
    if len(data) > MAX_INPUT_BYTES:
        raise ParseError("payload_too_large", f"{len(data)} bytes exceed {MAX_INPUT_BYTES}")
    stripped = data.strip()
    if not stripped:
        raise ParseError("truncated_frame", "no data")
    if stripped[0] == hdlc.FLAG:
        return data  # raw frames: 0x7E is "~", never a hex digit
    try:
        text = stripped.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError("bad_frame", "neither HDLC frames nor hex text") from None
    digits = "".join(text.split())
    if any(char not in string.hexdigits for char in digits):
        raise ParseError("bad_frame", "neither HDLC frames (7E ...) nor hex text")
    try:
        return binascii.unhexlify(digits)
    except binascii.Error:
        raise ParseError("truncated_frame", "hex text with an odd number of digits") from None


def _apdus(stream: bytes) -> list[bytes]:
    """The information fields of the stream's frames, segments joined, LLC header dropped."""
    apdus: list[bytes] = []
    pending = b""
    for frame in hdlc.split_frames(stream):
        pending += frame.information
        if frame.segmented:
            continue
        if pending:
            apdus.append(_strip_llc(pending))
        pending = b""
    if pending:
        raise ParseError("truncated_frame", "the last HDLC segment of a message is missing")
    if not apdus:
        raise ParseError("truncated_frame", "HDLC frames without information field")
    return apdus


def _strip_llc(information: bytes) -> bytes:
    for header in _LLC_HEADERS:
        if information.startswith(header):
            return information[len(header) :]
    if information[:1] == b"\xe6":
        raise ParseError("bad_frame", f"unknown LLC header {information[:3].hex()}")
    return information  # some meters send the APDU without LLC header


def _reading(apdu: bytes, context: ParseContext) -> Reading:
    if apdu[:1] in (bytes([GENERAL_GLO_CIPHERING]), bytes([GENERAL_DED_CIPHERING])):
        notification = decipher(apdu, context, _notification, _plausible_notification)
    else:
        notification = _notification(apdu)
    return _to_reading(notification, context)


# --- APDU -------------------------------------------------------------------------------------


def _notification(apdu: bytes) -> _Notification:
    reader = Reader(apdu)
    tag = reader.byte()
    if tag != DATA_NOTIFICATION:
        raise ParseError("unsupported_apdu", f"APDU tag 0x{tag:02X} is not a data-notification")
    reader.take(4)  # long-invoke-id-and-priority
    date_time = _apdu_date_time(reader)
    body = decode_data(reader)
    if reader.remaining:
        raise ParseError("bad_apdu", f"{reader.remaining} bytes after the notification body")
    return _body(body, date_time)


def _apdu_date_time(reader: Reader) -> bytes | None:
    # date-time is an OCTET STRING: 00 when absent, 0C + 12 bytes; old Kamstrup and Kaifa
    # firmware send it as tagged Data (09 0C + 12 bytes).
    first = reader.byte()
    if first == 0x09:
        first = reader.byte()
    if first == 0:
        return None
    if first != 12:
        raise ParseError("bad_apdu", f"APDU date-time of {first} bytes, expected 12")
    return reader.take(12)


def decipher(
    apdu: bytes,
    context: ParseContext,
    decode: Callable[[bytes], _T],
    plausible: Callable[[bytes], bool],
) -> _T:
    """general-glo/ded-ciphering: system title, then SC | invocation counter | cipher | tag.

    Deciphers with ``context.encryption_key`` and ``context.authentication_key`` (AAD = SC || AK)
    and hands the plaintext to ``decode``, which returns what the caller wants from it and raises
    ``ParseError`` when the plaintext is not what it expects (the notification APDU here, a DSMR
    telegram for Luxembourg's Smarty P1).

    After a tag mismatch, ``plausible`` tells the failures apart from the plaintext deciphered
    without the tag (AES-CTR, so an altered cipher-text bit alters the same plaintext bit and no
    other): plaintext that still resembles what the caller expects, a few bits aside, means the
    right encryption key with a wrong authentication key or an altered frame (``auth_failed``);
    noise means a wrong encryption key (``wrong_key``), or an altered system title or invocation
    counter (the IV), which no check on the bytes can tell from a wrong key. Without a tag
    (encryption only) nothing is authenticated: plaintext that does not decode is ``wrong_key``.
    """
    reader = Reader(apdu, 1)
    system_title = reader.take(reader.length())
    content = reader.take(reader.length())
    if reader.remaining:
        raise ParseError("bad_apdu", f"{reader.remaining} bytes after the ciphered APDU")
    if len(system_title) != 8:
        raise ParseError("bad_apdu", f"system title of {len(system_title)} bytes, expected 8")
    if len(content) < 5:
        raise ParseError("truncated_frame", "ciphered content shorter than its security header")
    security_control = content[0]
    iv = system_title + content[1:5]  # system title + invocation counter
    authenticated, encrypted = bool(security_control & 0x10), bool(security_control & 0x20)
    if security_control & 0x80:
        raise ParseError("unsupported_security", "compressed ciphered APDUs are not supported")
    payload = content[5:]
    if not authenticated and not encrypted:
        return decode(payload)
    key = _key(context.encryption_key, "encryption")
    if not authenticated:
        # Encryption only: GCM without tag = AES-CTR from counter 2. No tag, so a wrong key
        # shows as an APDU that does not decode.
        try:
            return decode(_ctr(key, iv, payload))
        except ParseError as exc:
            raise ParseError(
                "wrong_key", f"deciphered APDU does not decode ({exc.code}): wrong key?"
            ) from None
    auth_key = _key(context.authentication_key, "authentication")
    if len(payload) < _GCM_TAG_BYTES:
        raise ParseError("truncated_frame", "ciphered content shorter than its tag")
    body, tag = payload[:-_GCM_TAG_BYTES], payload[-_GCM_TAG_BYTES:]
    aad = bytes([security_control]) + auth_key
    if not encrypted:
        # Authentication only: GMAC over SC || AK || plaintext.
        expected = _gcm(key, iv, aad + body, b"")[1][:_GCM_TAG_BYTES]
        if not hmac.compare_digest(expected, tag):
            raise ParseError("auth_failed", "authentication tag does not match")
        return decode(body)
    try:
        decryptor = Cipher(
            algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=_GCM_TAG_BYTES)
        ).decryptor()
        decryptor.authenticate_additional_data(aad)
        plaintext = decryptor.update(body) + decryptor.finalize()
    except InvalidTag:
        if plausible(_ctr(key, iv, body)):
            raise ParseError(
                "auth_failed",
                "authentication tag does not match: wrong authentication key or altered frame",
            ) from None
        raise ParseError(
            "wrong_key", "the APDU does not decipher with this encryption key"
        ) from None
    return decode(plaintext)


def _plausible_notification(plaintext: bytes) -> bool:
    """Whether bytes deciphered without a valid tag are a data-notification, a few bits aside:
    it decodes, or it starts as one (the tag 0x0F, then after the 4-byte invoke id a date-time
    of 0x00 (none), 0x0C (12 bytes) or 0x09 (tagged)). Noise starts so about once in 22,000."""
    if plaintext[:1] == bytes([DATA_NOTIFICATION]) and plaintext[5:6] in _DATE_TIME_STARTS:
        return True
    try:
        _notification(plaintext)
    except ParseError:
        return False
    return True


def _key(key: bytes | None, name: str) -> bytes:
    if key is None:
        raise ParseError("missing_key", f"the APDU is ciphered and no {name} key is configured")
    if len(key) not in (16, 32):
        raise ParseError("bad_key", f"the {name} key must be 16 or 32 bytes, not {len(key)}")
    return key


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _gcm(key: bytes, iv: bytes, aad: bytes, data: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(data) + encryptor.finalize()
    return ciphertext, encryptor.tag


# --- notification body -------------------------------------------------------------------------


def _body(body: AxdrValue, date_time: bytes | None) -> _Notification:
    if not isinstance(body, list):
        raise ParseError("unknown_list", "notification body is not a structure or array")
    notification = _Notification(date_time, [], None)
    _pair(body, notification)
    if notification.entries:
        if notification.list_version and notification.list_version.startswith("Kamstrup"):
            notification.scaling = KAMSTRUP_SCALING
        return notification
    return _kaifa(body, date_time)


def _pair(items: list[AxdrValue], notification: _Notification) -> None:
    """OBIS-coded lists: each 6-byte octet string names the value after it."""
    index = 0
    while index < len(items):
        item = items[index]
        if isinstance(item, bytes) and len(item) == 6 and index + 1 < len(items):
            entry = _Entry(obis_from_bytes(item), items[index + 1])
            index += 2
            if index < len(items) and (scaler_unit := _scaler_unit(items[index])):
                entry.scaler_unit = scaler_unit
                index += 1
            notification.entries.append(entry)
        elif isinstance(item, list):
            _pair(item, notification)
            index += 1
        else:
            if isinstance(item, str) and notification.list_version is None and index == 0:
                notification.list_version = item  # Kamstrup: "Kamstrup_V0001" leads the list
            else:
                notification.unlabelled.append(item)
            index += 1


def _scaler_unit(item: AxdrValue) -> tuple[int, int] | None:
    if (
        isinstance(item, list)
        and len(item) == 2
        and all(type(part) is int for part in item)
        and -128 <= item[0] <= 127  # type: ignore[operator]
    ):
        return item[0], item[1]  # type: ignore[return-value]
    return None


def _kaifa(body: list[AxdrValue], date_time: bytes | None) -> _Notification:
    layout = KAIFA_LISTS.get(len(body))
    list_version = _text(body[0]) if body and isinstance(body[0], bytes | str) else None
    if layout is None or (len(body) > 1 and list_version != "KFM_001"):
        raise ParseError(
            "unknown_list",
            f"a list of {len(body)} values without OBIS codes (list version {list_version!r}) "
            "matches no known layout",
        )
    entries = [_Entry(code, value) for code, value in zip(layout, body, strict=True)]
    return _Notification(date_time, entries, KAIFA_SCALING)


# --- reading -----------------------------------------------------------------------------------


def _to_reading(notification: _Notification, context: ParseContext) -> Reading:
    values: dict[str, ObisValue] = {}
    extra_obis: dict[str, dict[str, Any]] = {}
    given_id = context.meter_id
    own_id: str | None = None  # the frame's meter id, checked (when no id is given)
    frame_id: AxdrValue = None  # the frame's meter id as sent (when one is given)
    frame_names_meter = False
    clock: datetime | None = None
    list_version = notification.list_version
    for entry in notification.entries:
        code = entry.code
        if code in METER_ID_CODES:
            frame_names_meter = True
            if given_id is None:
                own_id = _meter_id(entry.value)  # refused in list order, where it comes
            else:
                frame_id = entry.value
        elif code.endswith(":" + _LIST_VERSION_CDE):
            list_version = _text(entry.value)
        elif code.startswith("0-") and code.split(":")[1] == _CLOCK_CDE:
            if isinstance(entry.value, bytes):
                clock = _date_time(entry.value, context)
        else:
            _value(entry, notification.scaling, values, extra_obis)
    ts = _date_time(notification.date_time, context) if notification.date_time else None
    ts = ts or clock or context.now.astimezone(UTC)
    extra: dict[str, Any] = {}
    if given_id is not None:
        # The context's id overrides the frame's (as for DSMR and IEC 62056-21); the frame's own
        # id, when it has another one, is kept as it came.
        meter_id = _checked_id(given_id, "the given meter id")
        if frame_names_meter:
            as_sent = _json_value(frame_id)
            if as_sent != meter_id:
                extra[FRAME_METER_ID] = as_sent
    elif own_id is not None:
        meter_id = own_id
    else:
        raise ParseError("missing_meter_id", "the frame names no meter and no meter id was given")
    fields = reading_fields(values)
    if list_version is not None:
        extra["list_version"] = list_version
    if extra_obis:
        extra["obis"] = extra_obis
    if notification.unlabelled:
        extra["unlabelled"] = [_json_value(value) for value in notification.unlabelled]
    by_tariff = fields.get("import_kwh_by_tariff")
    reading = Reading(
        meter_id=meter_id,
        ts=ts,
        import_kwh=_number(fields.get("import_kwh")),
        export_kwh=_number(fields.get("export_kwh")),
        import_kwh_by_tariff=by_tariff if isinstance(by_tariff, dict) else None,
        power_w=_number(fields.get("power_w")),
        voltage_v=_number(fields.get("voltage_v")),
        current_a=_number(fields.get("current_a")),
        pf=_number(fields.get("pf")),
        freq_hz=_number(fields.get("freq_hz")),
        extra=extra,
    )
    return checked_reading(reading)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _field_code(code: str) -> str:
    # Kamstrup numbers its electricity channel 1; the quantities are those of channel 0.
    return "1-0:" + code[4:] if code.startswith("1-1:") else code


def _value(
    entry: _Entry,
    scaling: Scaling | None,
    values: dict[str, ObisValue],
    extra_obis: dict[str, dict[str, Any]],
) -> None:
    key = _field_code(entry.code)
    obis_field = OBIS_FIELDS.get(key)
    scaler, unit = _scale(entry, scaling)
    value = entry.value
    if obis_field is None:
        if type(value) is int and (scaler or unit):
            number, canonical_unit = canonical(Decimal(value).scaleb(scaler), unit or "")
            extra_obis[entry.code] = {"value": number, "unit": canonical_unit}
        else:
            extra_obis[entry.code] = {"value": _json_value(value), "unit": unit or ""}
        number_sent = extra_obis[entry.code]["value"]
        if type(number_sent) in (int, float) and number_sent < 0 and is_register(key):
            register(number_sent, entry.code)  # a register the table has no field for (1.8.0*7)
        return
    if type(value) is not int and type(value) is not float:
        raise ParseError("bad_value", f"{entry.code} carries {type(value).__name__}, not a number")
    if unit is None:
        # No scaler in the frame and none documented: DLMS base units (W, V, A, Wh, varh).
        unit = {"kWh": "Wh", "kvarh": "varh"}.get(obis_field.unit, obis_field.unit)
    converted = convert(Decimal(value).scaleb(scaler), unit, obis_field)  # finite
    if converted < 0.0 and is_register(key):
        register(converted, entry.code)
    values[key] = ObisValue(converted, obis_field.unit)
    if key not in IN_READING_CODES:
        extra_obis[entry.code] = {"value": converted, "unit": obis_field.unit}


def _scale(entry: _Entry, scaling: Scaling | None) -> tuple[int, str | None]:
    if entry.scaler_unit is not None:
        scaler, unit_code = entry.scaler_unit
        return scaler, DLMS_UNITS.get(unit_code, f"unit {unit_code}")
    if scaling is not None:
        c_d = _c_d(entry.code)
        if c_d is not None and c_d in scaling:
            return scaling[c_d]
    return 0, None


@lru_cache(maxsize=1024)
def _c_d(code: str) -> tuple[int, int] | None:
    """Groups C and D of a normalised code, the key of a ``Scaling`` (cached: a list repeats its
    codes in every push)."""
    try:
        c, d = (int(part) for part in code.split(":")[1].split(".")[:2])
    except ValueError:
        return None
    return c, d


def _text(value: AxdrValue) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes) and value.isascii() and value.decode().isprintable():
        return value.decode()
    return None


def _json_value(value: AxdrValue) -> Any:
    if isinstance(value, bytes):
        text = _text(value)
        return text if text is not None else value.hex()
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return value


def _meter_id(value: AxdrValue) -> str:
    text = _text(value)
    if text is None or not METER_ID_PATTERN.match(text):
        raise ParseError("bad_meter_id", f"meter id {_json_value(value)!r} is not a valid id")
    return text


def _checked_id(meter_id: str, where: str) -> str:
    if not METER_ID_PATTERN.match(meter_id):
        raise ParseError("bad_meter_id", f"{where} {meter_id[:70]!r} is not a valid meter id")
    return meter_id


def _date_time(raw: bytes, context: ParseContext) -> datetime | None:
    """A DLMS date-time (12 bytes) in UTC; None when its date or time is not specified.

    Deviation is minutes to add to local time to get UTC (DLMS: CET is -60); 0x8000 means not
    specified: the meter's wall clock, read in ``context.zone()``. Clock status bit 0x80
    (daylight saving active) picks the first of the two 02:00-03:00 hours in autumn.
    """
    if len(raw) != 12:
        raise ParseError("bad_timestamp", f"a DLMS date-time has 12 bytes, not {len(raw)}")
    year = int.from_bytes(raw[0:2], "big")
    month, day, _weekday, hour, minute, second, hundredths = raw[2:9]
    deviation = int.from_bytes(raw[9:11], "big", signed=True)
    status = raw[11]
    if year == 0xFFFF or month > 12 or day > 31 or hour == 0xFF or minute == 0xFF:
        return None  # not specified (0xFF), or DST-begin/-end and last-day wildcards
    second = 0 if second == 0xFF else second
    microsecond = 0 if hundredths == 0xFF else hundredths * 10_000
    try:
        local = datetime(year, month, day, hour, minute, second, microsecond)
        if deviation != -0x8000:
            if not -840 <= deviation <= 840:
                raise ValueError("deviation out of range")
            zone = timezone(timedelta(minutes=-deviation))
            return local.replace(tzinfo=zone).astimezone(UTC)
        fold = 0 if status == 0xFF or status & 0x80 else 1
        return local.replace(tzinfo=context.zone(), fold=fold).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ParseError(
            "bad_timestamp", f"DLMS date-time {raw.hex()} is not a valid time"
        ) from None
