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


@dataclass(frozen=True, slots=True)
class ParseContext:
    # The meter id to use when the frame carries none (HAN list 1, Tasmota) or to override it.
    meter_id: str | None = None
    # Clock used for frames that carry no timestamp.
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Zone for meters that send local wall-clock time (DSMR, IEC 62056-21, HAN).
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    # DLMS/COSEM security: global unicast encryption key and authentication key (16 bytes each).
    encryption_key: bytes | None = None
    authentication_key: bytes | None = None


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
