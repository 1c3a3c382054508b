"""Spans of time as operators write them: 900s, 15m, 1h, 30d (pure)."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_SPAN = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*\Z")


def parse_span(text: str, default_unit: str = "s") -> int:
    """'15m' -> 900, '1h' -> 3600, '900s' -> 900, '30d' -> 2592000, '0' -> 0; a bare number is
    in ``default_unit``. Raises ValueError for anything else."""
    match = _SPAN.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a span like 900s, 15m, 1h or 30d")
    return int(match.group(1)) * _UNITS[match.group(2) or default_unit]
