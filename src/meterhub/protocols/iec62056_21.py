"""IEC 62056-21 readouts, and the data-line core that DSMR P1 (a profile of it) shares.

Two framings:

- Mode D push (Nordic HAN P1, DSMR style): ``/XXX5ident`` CRLF, data lines, ``!`` and a CRC-16/ARC
  (poly 0xA001 reflected, init 0) over the bytes from ``/`` through ``!``, as up to 4 upper-case hex
  digits (one warmtelink meter drops the leading zero). Meters that send no clock line (DSMR 2.2/3,
  EasyMeter Q3D) send no CRC either; a frame with a ``0-0:1.0.0`` clock must carry one, so that a
  damaged CRC line cannot pass as "no CRC".
- Mode C readout: optional identification line, STX, data lines, ``!`` CRLF, ETX and a BCC (XOR of
  every byte after STX through ETX).

Data lines are ``OBIS(value*unit)(...)``; a line may start with ``(`` to continue the previous one
(DSMR 2.2/3 gas: ``0-1:24.3.0(...)(m3)`` then ``(00001.001)``). Every value is mapped through the
shared OBIS table (``protocols.obis``); what the reading has no field for is kept in
``extra["obis"]`` and M-Bus channels (gas, water, heat) in ``extra["mbus"]``.

Meter id for IEC 62056-21: ``context.meter_id`` when given (the frame's own id, when it names
another, is kept in ``extra["frame_meter_id"]``), else the device address ``0.0.0`` or the serial
number ``C.1.0`` of the readout; ``ParseError("missing_meter_id")`` when neither.

Clock: ``YYMMDDhhmmss`` with an optional S (summer) or W (winter) flag, the meter's wall clock in
``context.timezone`` (UTC when none is given; DSMR's default is Europe/Amsterdam). The zone
decides the offset; the flag picks the hour that occurs twice when the clocks go back. A flag that
contradicts the zone anywhere else does not refuse the frame: real meters send such flags (in the
conformance corpus a Kamstrup sends W in April and an ELL5 W in October, both in Norway, and an
Iskra IE S in February), so their readings are kept, read in the zone, and marked
``extra["clock_flag_mismatch"] = True``. A wall time the zone skips (02:30 on the spring change)
takes the flag's offset and is marked the same way; without a flag it is ``bad_timestamp``.

Impossible values (``protocols.checks``): a value that is infinite as a float (more than 308
digits) is ``non_finite`` and a negative cumulative electricity register (``1-0:1.8.1``, any
A = 1, D = 8) is ``negative_register``; both refuse the frame, whose lines are one CRC-checked
snapshot of one meter. An M-Bus channel's value (gas, water, heat: another device that the
electricity meter relays) is withheld instead: the channel keeps its raw text and
``"refused": <code>`` and the electricity reading stands.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from meterhub.protocols import obis
from meterhub.protocols.base import FRAME_METER_ID, UTC_ZONE, ParseContext, ParseError
from meterhub.protocols.checks import checked_reading
from meterhub.protocols.crc import crc16_arc
from meterhub.readings.model import METER_ID_PATTERN, Reading
from meterhub.readings.vee import NEGATIVE_REGISTER, NON_FINITE

MAX_FRAME_BYTES = 1 << 20
STX, ETX = 0x02, 0x03

_ITEM = re.compile(r"([^()\s]*)((?:\([^()\r\n]*\))+)")
_LINE = re.compile(r"([^()\s]*)((?:\([^()\r\n]*\))+)\r*")  # a whole line: one item, CRs
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?\Z")
_CLOCK = re.compile(r"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([SW]?)\Z")
_CRC_TEXT = re.compile(rb"^[0-9A-F]{1,4}\Z")
_HEX = re.compile(r"[0-9A-Fa-f]+")
_PRINTABLE = bytes(range(0x20, 0x7F))
# M-Bus device types (EN 13757-3) that DSMR meters relay.
_MBUS_KINDS = {3: "gas", 4: "heat", 6: "warm_water", 7: "water", 12: "heat", 22: "cold_water"}


def bcc(data: bytes) -> int:
    check = 0
    for byte in data:
        check ^= byte
    return check


@dataclass(slots=True)
class DataLine:
    code: str  # normalised OBIS
    groups: list[str]  # the text inside each pair of parentheses


@dataclass(slots=True)
class Frame:
    identification: str  # the "/..." line without the slash, "" when absent
    lines: list[DataLine]
    checksum: str | None  # "crc16", "bcc" or None


def _malformed(message: str) -> ParseError:
    return ParseError("malformed_frame", message)


def parse_lines(text: str) -> list[DataLine]:
    lines: list[DataLine] = []
    for number, line in enumerate(text.split("\n"), start=1):
        # The usual line is one item with a code: one match, no other work. Everything else
        # (blank lines, continuations, several items, errors) goes the long way.
        match = _LINE.fullmatch(line)
        if match is None or not match[1]:
            _parse_line(line, number, lines)
            continue
        try:
            code = obis.normalise_obis(match[1])
        except ParseError:
            raise _malformed(f"line {number}: {match[1][:40]!r} is not an OBIS code") from None
        # "(a)(b)(c)" -> ["a", "b", "c"]: the groups hold no parentheses.
        lines.append(DataLine(code, match[2][1:-1].split(")(")))
    return lines


def _parse_line(line: str, number: int, lines: list[DataLine]) -> None:
    line = line.rstrip("\r")
    if not line.strip():
        return
    position = 0
    for match in _ITEM.finditer(line):
        if match.start() != position:
            break
        position = match.end()
        groups = match[2][1:-1].split(")(")
        if not match[1]:
            if not lines or match.start() != 0:
                raise _malformed(f"line {number} continues nothing")
            lines[-1].groups.extend(groups)
            continue
        lines.append(DataLine(_code(match[1], number), groups))
    if position != len(line):
        raise _malformed(f"line {number} is not OBIS(value): {line[:60]!r}")


def _code(text: str, number: int) -> str:
    try:
        return obis.normalise_obis(text)
    except ParseError:
        raise _malformed(f"line {number}: {text[:40]!r} is not an OBIS code") from None


def split_mode_d(data: bytes) -> tuple[bytes, Frame]:
    """One mode D / DSMR telegram: checks the CRC; returns the protected bytes and the frame."""
    start = data.find(b"/")
    if start < 0 or data[:start].strip(b"\r\n\t \x00"):
        raise _malformed("a telegram starts with '/'")
    end = data.rfind(b"!")
    if end < start:
        raise _malformed("no '!' end of telegram (truncated?)")
    body = data[start : end + 1]
    tail = data[end + 1 :]
    crc_text, _, rest = tail.partition(b"\n")
    crc_text = crc_text.rstrip(b"\r")
    text = body.decode("latin-1")
    header, _, lines_text = text.partition("\n")
    lines = parse_lines(lines_text[:-1])  # without the "!"
    if not lines:
        raise _malformed("a telegram without data lines")
    if crc_text:
        if not _CRC_TEXT.match(crc_text) or rest.strip(b"\r\n\t \x00"):
            raise _malformed(f"bad CRC field after '!': {crc_text[:8]!r}")
        given, computed = int(crc_text, 16), crc16_arc(body)
        if given != computed:
            raise ParseError("bad_crc", f"CRC {given:04X} given, {computed:04X} computed")
        checksum: str | None = "crc16"
    else:
        if any(line.code == obis.CLOCK for line in lines):
            raise _malformed("a telegram with a clock line must end with its CRC")
        checksum = None
    return body, Frame(header.rstrip("\r")[1:], lines, checksum)


def split_mode_c(data: bytes) -> Frame:
    stx = data.find(bytes([STX]))
    etx = data.rfind(bytes([ETX]))
    if stx < 0 or etx < stx or etx + 1 >= len(data):
        raise _malformed("a mode C readout is STX ... ETX BCC")
    if data[etx + 2 :].strip(b"\r\n\t \x00"):
        raise _malformed("bytes after the BCC")
    given, computed = data[etx + 1], bcc(data[stx + 1 : etx + 1])
    if given != computed:
        raise ParseError("bad_crc", f"BCC {given:02X} given, {computed:02X} computed")
    head = data[:stx].decode("latin-1").strip("\r\n\x06 ")
    if head and not head.startswith("/"):
        raise _malformed("text before STX is not an identification line")
    block = data[stx + 1 : etx].decode("latin-1").rstrip("\r\n")
    if not block.endswith("!"):
        raise _malformed("a mode C data block ends with '!'")
    return Frame(head[1:], parse_lines(block[:-1]), "bcc")


def local_time(text: str, zone: ZoneInfo) -> datetime:
    """YYMMDDhhmmss[S|W] in the meter's zone, in UTC (``clock_time`` without the flag check)."""
    return clock_time(text, zone)[0]


@lru_cache(maxsize=256)
def clock_time(text: str, zone: ZoneInfo) -> tuple[datetime, bool]:
    """YYMMDDhhmmss[S|W] in the meter's zone: the UTC time, and whether the S (summer) or W
    (winter) flag agrees with the zone (True without a flag).

    The zone gives the offset; the flag settles what the zone leaves open. In the hour that
    occurs twice when the clocks go back it picks the occurrence (S the first, on summer time);
    in the hour the zone skips in spring (02:30 on the last Sunday of March in Amsterdam, which
    a meter on winter time all year does show) it gives the offset, W the zone's winter one and S
    its summer one, and the flag counts as contradicting the zone. Without a flag such a time is
    ``bad_timestamp``. Summer time is the larger of the zone's two offsets of that year, not
    ``dst() != 0``: Europe/Dublin is on "negative" daylight saving time in winter. A zone without
    summer time that year (UTC) agrees with W only.
    Cached: M-Bus values keep their timestamp for an hour (datetimes are immutable; a refused
    text raises, and exceptions are not cached)."""
    match = _CLOCK.match(text)
    if match is None:
        raise ParseError("bad_timestamp", f"{text[:20]!r} is not YYMMDDhhmmss[S|W]")
    yy, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    try:
        wall = datetime(2000 + yy, month, day, hour, minute, second, tzinfo=zone)
    except ValueError:
        raise ParseError("bad_timestamp", f"{text!r} is not a date") from None
    flag = match[7]
    agrees = True
    if flag:
        summer_offset = _summer_offset(zone, 2000 + yy)
        summer = flag == "S"
        for candidate in (wall, wall.replace(fold=1)):
            if (candidate.utcoffset() == summer_offset) == summer:
                wall = candidate
                break
        else:
            agrees = False  # the zone decides: see the module's docstring
    utc = wall.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
        if not flag:
            raise ParseError("bad_timestamp", f"{text!r} does not exist in {zone.key}")
        # In the skipped hour fold 0 has the offset before the change (winter), fold 1 the one
        # after (summer): the loop above picked the flag's.
        agrees = False
    return utc, agrees


@lru_cache(maxsize=256)
def _summer_offset(zone: ZoneInfo, year: int) -> timedelta | None:
    """The zone's summer-time UTC offset in ``year`` (the larger of its January and July
    offsets), None when it has one offset all year."""
    offsets = {datetime(year, month, 1, 12, tzinfo=zone).utcoffset() for month in (1, 7)}
    known = [offset for offset in offsets if offset is not None]
    return max(known) if len(known) == 2 else None


def _number(text: str) -> tuple[str, str | None] | None:
    """A group's value as checked decimal text (``[+-]digits[.digits]``) and its unit."""
    value, _, unit = text.partition("*")
    if not _NUMBER.match(value):
        return None
    return value, unit or None


def _entries(lines: list[DataLine], zone: ZoneInfo) -> dict[str, dict[str, Any]]:
    """Each line's ``_entry`` by code, checked: an impossible value refuses the frame, or, on an
    M-Bus channel, is withheld (the module's docstring says why)."""
    entries: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            entry = _entry(line, zone)
        except ParseError as error:
            if error.code != NON_FINITE or not _is_mbus(line.code):
                raise
            entry = _withheld(line, NON_FINITE)
        value = entry.get("value")
        if value is not None and value < 0.0:
            if obis.is_register(line.code):
                raise ParseError(
                    NEGATIVE_REGISTER, f"{line.code} {value} is below zero: not a register value"
                )
            if _is_mbus(line.code):
                entry = _withheld(line, NEGATIVE_REGISTER)
        entries[line.code] = entry
    return entries


def _is_mbus(code: str) -> bool:
    """An M-Bus channel's code (0-1:24.2.1): A = 0, B = the channel, 1 to 4 (0 is the meter)."""
    return code[:2] == "0-" and code[:4] != "0-0:"


def _withheld(line: DataLine, code: str) -> dict[str, Any]:
    groups = line.groups
    return {"raw": list(groups) if len(groups) > 1 else groups[0], "refused": code}


def _entry(line: DataLine, zone: ZoneInfo) -> dict[str, Any]:
    """A data line as JSON: value and unit (converted when the OBIS table knows the code), a
    DSMR timestamp when one of the groups is one, and the raw groups when there are several."""
    field = obis.OBIS_FIELDS.get(line.code)
    groups = line.groups
    if len(groups) == 1:  # the usual line, "value*unit": the loop below, unrolled
        group = groups[0]
        text, _, written = group.partition("*")
        if _NUMBER.match(text):
            if field is not None:
                value = obis.convert_text(text, written or None, field)
                return {"value": value, "unit": field.unit} if field.unit else {"value": value}
            if written:
                value, canonical_unit = obis.canonical_text(text, written)
                return {"value": value, "unit": canonical_unit}
        return {"raw": group}
    several = len(groups) > 1
    entry: dict[str, Any] = {}
    for group in groups:
        if several and "ts" not in entry and _CLOCK.match(group):
            entry["ts"] = local_time(group, zone).isoformat()
            continue
        if "value" in entry:
            continue
        parsed = _number(group)
        if parsed is None:
            continue
        number, unit = parsed
        if field is not None:
            entry["value"] = obis.convert_text(number, unit, field)
            if field.unit:
                entry["unit"] = field.unit
        elif unit is not None:
            entry["value"], entry["unit"] = obis.canonical_text(number, unit)
    if several:
        entry["raw"] = list(groups)
    elif "value" not in entry:
        entry["raw"] = groups[0] if groups else ""
    return entry


def _mbus(lines: list[DataLine], entries: dict[str, dict[str, Any]], zone: ZoneInfo) -> list[Any]:
    channels: dict[int, dict[str, Any]] = {}
    for line in lines:
        if not line.code.startswith("0-") or line.code.startswith("0-0:"):
            continue  # not an M-Bus channel: the test below, made cheap for the usual lines
        a_b, _, cde = line.code.partition(":")
        if not a_b.startswith("0-") or a_b == "0-0" or "*" in cde:
            continue
        channel = int(a_b[2:])
        device = channels.setdefault(channel, {"channel": channel})
        first = line.groups[0] if line.groups else ""
        if cde == "24.1.0" and first.isdigit():
            device["device_type"] = int(first)
            device["kind"] = _MBUS_KINDS.get(int(first), "other")
        elif cde in ("96.1.0", "96.1.1") and first:
            device["equipment_id"] = hex_to_ascii(first) or first
        elif cde.startswith("24.2."):
            entry = entries[line.code]
            if "value" in entry:
                device.update({"obis": line.code, **entry})
                device.pop("raw", None)
            elif "refused" in entry:
                device.update({"obis": line.code, "refused": entry["refused"]})
        elif cde == "24.3.0" and len(line.groups) >= 7:
            # DSMR 2.2/3: (ts)(00)(60)(1)(0-1:24.2.1)(m3) then the value on the next line.
            parsed = _number(line.groups[6])
            if parsed is not None:
                device.update({"obis": line.code, **_old_gas_value(float(parsed[0]))})
                device.update(
                    {"unit": line.groups[5], "ts": local_time(line.groups[0], zone).isoformat()}
                )
    return [channels[key] for key in sorted(channels)]


def _old_gas_value(value: float) -> dict[str, Any]:
    if not math.isfinite(value):
        return {"refused": NON_FINITE}
    if value < 0.0:
        return {"refused": NEGATIVE_REGISTER}
    return {"value": value}


def hex_to_ascii(text: str) -> str | None:
    """DSMR sends ids as hex-encoded ASCII: the decoded text when it is printable, else None."""
    if len(text) % 2 or not _HEX.fullmatch(text):
        return None
    decoded = bytes.fromhex(text)
    # Printable ASCII: nothing left once the printable bytes are deleted.
    if decoded.translate(None, _PRINTABLE):
        return None
    return decoded.decode("ascii")


def checked_meter_id(candidate: str, where: str) -> str:
    if not METER_ID_PATTERN.match(candidate):
        raise ParseError(
            "bad_meter_id",
            f"{where} {candidate[:70]!r} is not a valid meter id (letters, digits, - and _, at "
            "most 64); pass --meter-id",
        )
    return candidate


# The meter id a frame names, as sent, and the code it came from; None when it names none.
MeterIdRule = Callable[[dict[str, list[str]]], tuple[str, str] | None]


def build_reading(
    frame: Frame,
    context: ParseContext,
    meter_id_rule: MeterIdRule,
    fmt: str,
    default_zone: ZoneInfo = UTC_ZONE,
) -> Reading:
    groups_by_code = {line.code: line.groups for line in frame.lines}
    found = meter_id_rule(groups_by_code)
    if context.meter_id is not None:
        meter_id = checked_meter_id(context.meter_id, "meter id")
    elif found is None:
        raise ParseError("missing_meter_id", f"the {fmt} frame names no meter: --meter-id")
    else:
        meter_id = checked_meter_id(*found)
    zone = context.zone(default_zone)
    entries = _entries(frame.lines, zone)
    clock = groups_by_code.get(obis.CLOCK)
    flag_agrees = True
    if clock:
        ts, flag_agrees = clock_time(clock[0], zone)
    elif "1-0:0.9.2" in groups_by_code and "1-0:0.9.1" in groups_by_code:
        # Mode C: date (C)YYMMDD and time hhmmss as two lines; no DST flag.
        date = groups_by_code["1-0:0.9.2"][0][-6:]
        ts = local_time(date + groups_by_code["1-0:0.9.1"][0], zone)
    else:
        ts = context.now.astimezone(UTC)
    values = {
        code: obis.ObisValue(entry["value"], entry.get("unit", ""))
        for code, entry in entries.items()
        if code in obis.READING_FIELD_CODES and "value" in entry
    }
    fields = obis.reading_fields(values)
    pf = fields.get("pf")
    if isinstance(pf, float) and not -1.0 <= pf <= 1.0:
        # E.ON Hungary's SAG5 sends 1-0:13.7.0(4.556): not a power factor; kept in extra only.
        del fields["pf"]
        entries["1-0:13.7.0"]["out_of_range"] = True
    extra: dict[str, Any] = {"format": fmt}
    if frame.identification:
        extra["identification"] = frame.identification
    if found is not None and found[0] != meter_id:
        extra[FRAME_METER_ID] = found[0]  # the frame's own id, when meter_id overrides it
    if not flag_agrees:
        extra["clock_flag_mismatch"] = True
    extra["obis"] = {
        code: entry
        for code, entry in entries.items()
        if code not in obis.IN_READING_CODES or "value" not in entry or "out_of_range" in entry
    }
    mbus = _mbus(frame.lines, entries, zone)
    if mbus:
        extra["mbus"] = mbus
    reading = Reading(
        meter_id=meter_id,
        ts=ts,
        import_kwh=_float(fields.get("import_kwh")),
        export_kwh=_float(fields.get("export_kwh")),
        import_kwh_by_tariff=fields.get("import_kwh_by_tariff"),  # type: ignore[arg-type]
        power_w=_float(fields.get("power_w")),
        voltage_v=_float(fields.get("voltage_v")),
        current_a=_float(fields.get("current_a")),
        pf=_float(fields.get("pf")),
        freq_hz=_float(fields.get("freq_hz")),
        extra=extra,
    )
    return checked_reading(reading)


def _float(value: object) -> float | None:
    return value if isinstance(value, float) else None


def telegrams(data: bytes) -> list[bytes]:
    """A capture may hold several telegrams: split before every '/' that starts a line."""
    if len(data) > MAX_FRAME_BYTES:
        raise ParseError("frame_too_large", f"{len(data)} bytes; at most {MAX_FRAME_BYTES}")
    starts = [m.start() + 1 for m in re.finditer(rb"\n/", data)]
    bounds = [0, *starts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds) if data[a:b].strip()]


def _iec_meter_id(groups_by_code: dict[str, list[str]]) -> tuple[str, str] | None:
    for code in ("1-0:0.0.0", "0-0:0.0.0", "0-0:C.1.0", "1-0:C.1.0"):
        value = groups_by_code.get(code)
        if value and value[0]:
            return value[0], code
    return None


def parse_frames(
    data: bytes,
    context: ParseContext,
    meter_id_rule: MeterIdRule,
    fmt: str,
    default_zone: ZoneInfo = UTC_ZONE,
) -> list[Reading]:
    try:
        if bytes([STX]) in data and bytes([ETX]) in data and fmt == "iec62056-21":
            frames = [split_mode_c(data)]
        else:
            frames = [split_mode_d(telegram)[1] for telegram in telegrams(data)]
        if not frames:
            raise _malformed("no telegram in the input")
        return [build_reading(frame, context, meter_id_rule, fmt, default_zone) for frame in frames]
    except ParseError:
        raise
    except (ValueError, ArithmeticError, OverflowError, IndexError, KeyError) as exc:
        # A guard, not a path: each malformed input should already have its own message.
        raise _malformed(f"cannot decode: {exc}") from None


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    return parse_frames(data, context, _iec_meter_id, "iec62056-21")
