"""DSMR P1 telegrams: Dutch DSMR 2.2 to 5.x, Belgian Fluvius e-MUCS, Luxembourg Smarty
(plaintext), E.ON Hungary, Sagemcom T210-D-r (Austria), Iskra IE and EasyMeter Q3D.

A P1 telegram is an IEC 62056-21 mode D data message, so framing, CRC, data lines and the OBIS
mapping are shared with ``protocols.iec62056_21``; what is DSMR's own is here:

- Meter id: 0-0:96.1.1, sent as hex-encoded ASCII ("4B38..." = "K8EG..."), decoded when the
  decoded text is printable and a valid meter id, else used as sent. ``context.meter_id``
  overrides it and stands in when the telegram has none (E.ON Hungary, Iskra IE, Sagemcom,
  EasyMeter: their other identifiers stay in ``extra["obis"]``).
- Timestamp: 0-0:1.0.0 YYMMDDhhmmss with S (summer) or W (winter) is local time in
  ``context.timezone`` (Europe/Amsterdam for the Netherlands); the flag resolves the hour that
  repeats when the clocks go back. DSMR 2.2/3 telegrams have no clock: ``context.now``.
- Version: 1-3:0.2.8 (DSMR 4+), 0-0:96.1.4 (Fluvius), kept in ``extra["dsmr_version"]``.
- M-Bus channels 0-n (gas 24.2.1, Belgian gas 24.2.3, water, heat, the DSMR 2.2/3 two-line gas
  24.3.0) go to ``extra["mbus"]`` with their channel, device type and timestamp.

dsmr-parser (ndokter) was evaluated and not used: it needs the telegram variant chosen up front
(no version detection), silently drops lines it has no pattern for (we keep every code), logs
and skips values it cannot parse, lets other exception types escape (its Sagemcom T210-D-r spec
raises binascii.Error on a plaintext telegram), pins timestamps to Europe/Amsterdam, and pulls in
dlms_cosem, cryptography, serialx and Tailer for what is a line-based text format.
"""

from __future__ import annotations

from meterhub.protocols import obis
from meterhub.protocols.base import ParseContext
from meterhub.protocols.iec62056_21 import checked_meter_id, hex_to_ascii, parse_frames
from meterhub.readings.model import METER_ID_PATTERN, Reading


def dsmr_meter_id(groups_by_code: dict[str, list[str]]) -> str | None:
    groups = groups_by_code.get(obis.EQUIPMENT_ID)
    if not groups or not groups[0]:
        return None
    raw = groups[0]
    decoded = hex_to_ascii(raw)
    if decoded is not None and METER_ID_PATTERN.match(decoded):
        return decoded
    return checked_meter_id(raw, obis.EQUIPMENT_ID)


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    readings = parse_frames(data, context, dsmr_meter_id, "dsmr")
    for reading in readings:
        found = reading.extra["obis"]
        for code in ("1-3:0.2.8", "0-0:96.1.4"):
            if code in found:
                reading.extra["dsmr_version"] = found[code].get("raw", found[code].get("value"))
                break
    return readings
