"""Times typed on the command line: ISO 8601, read in the utility's zone when no offset is given."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def local_instant(text: str, option: str, zone: ZoneInfo) -> datetime:
    """``text`` as an aware datetime; without an offset it is a local time in ``zone``.
    ``ValueError`` names the option and the text."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not an ISO 8601 date and time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone)
