"""The surface every meter protocol shares: ``parse(data, context) -> list[Reading]``.

Adding a protocol is one module with a ``parse`` function and its fixtures, plus one line in
``FORMATS``. Parsers are pure (bytes in, readings out); reading a serial port or a socket is the
edge gateway's job.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from meterhub.readings.model import Reading


class ParseError(ValueError):
    """Input that is not a valid frame of the format: a reason code and a human sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


UTC_ZONE = ZoneInfo("UTC")
# The key under ``Reading.extra`` that keeps the meter id a frame names when ``meter_id`` is given
# and differs from it.
FRAME_METER_ID = "frame_meter_id"


@dataclass(frozen=True, slots=True)
class ParseContext:
    # The meterhub meter id (the MQTT topic's id) of every reading. It overrides the id the frame
    # names (kept in extra["frame_meter_id"] when it differs) and stands in when the frame names
    # none (HAN list 1, Tasmota, native). None: the frame's own id.
    meter_id: str | None = None
    # Clock used for frames that carry no timestamp.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Zone of meters that send local wall-clock time (DSMR, IEC 62056-21, HAN, Tasmota). None:
    # the format's own default (``zone``), Europe/Amsterdam for DSMR and UTC for the others.
    timezone: ZoneInfo | None = None
    # DLMS/COSEM security: global unicast encryption key and authentication key (16 bytes each).
    encryption_key: bytes | None = None
    authentication_key: bytes | None = None

    def zone(self, default: ZoneInfo = UTC_ZONE) -> ZoneInfo:
        """The zone given, else the format's ``default``."""
        return default if self.timezone is None else self.timezone


# DLMS/COSEM (AES-128-GCM) keys are 16 bytes.
KEY_BYTES = 16


def hex_key(value: str | None, name: str) -> bytes | None:
    """A DLMS key as an operator types it (32 hex digits); ``name`` is how the message calls
    it. None stays None (no key); anything else that is not 16 bytes raises ``bad_key``."""
    if value is None:
        return None
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise ParseError("bad_key", f"{name} must be hexadecimal") from None
    if len(key) != KEY_BYTES:
        raise ParseError(
            "bad_key", f"{name} must be {KEY_BYTES} bytes ({2 * KEY_BYTES} hex digits)"
        )
    return key


Parser = Callable[[bytes, ParseContext], list[Reading]]

# format name -> "module:function"; imported on first use so that one format's dependency
# never slows down or breaks another.
FORMATS: dict[str, str] = {
    "native": "meterhub.protocols.native:parse",
    "dsmr": "meterhub.protocols.dsmr:parse",
    "dlms": "meterhub.protocols.dlms:parse",
    "iec62056-21": "meterhub.protocols.iec62056_21:parse",
    "tasmota": "meterhub.protocols.tasmota:parse",
    "shelly": "meterhub.protocols.shelly:parse",
}


def parser_for(name: str) -> Parser:
    target = FORMATS.get(name)
    if target is None:
        known = ", ".join(sorted(FORMATS))
        raise ParseError("unknown_format", f"unknown format {name!r}; known formats: {known}")
    module_name, function_name = target.split(":")
    parser: Parser = getattr(importlib.import_module(module_name), function_name)
    return parser


def parse(name: str, data: bytes, context: ParseContext | None = None) -> list[Reading]:
    return parser_for(name)(data, context or ParseContext())
