"""Damaged payloads of the kinds real fleets send: pure functions of a reading and a random source.

- garbage: bytes that are not a reading (line noise, a truncated frame, a firmware debug line);
- nan: a field written as the bare JSON-invalid token ``NaN`` (what ``json.dumps`` emits);
- impossible: well-formed but physically impossible values;
- wrong_id: the payload names another meter than the topic's (a device may speak only for itself);
- duplicate and out_of_order are about delivery, not content: the engine repeats or reorders.
"""

from __future__ import annotations

from random import Random
from typing import Any

import orjson

NAN_MARK = "__sim_NaN__"
_NAN_BYTES = orjson.dumps(NAN_MARK)
NAN_FIELDS = ("power_w", "voltage_v", "current_a", "import_kwh")


def encode(obj: Any) -> bytes:
    """JSON bytes of a reading, a batch or an event; NaN marks become the bare token NaN."""
    data = orjson.dumps(obj)
    if _NAN_BYTES in data:
        data = data.replace(_NAN_BYTES, b"NaN")
    return data


def garbage(reading: dict[str, Any], rng: Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        whole = orjson.dumps(reading)
        return whole[: rng.randrange(1, len(whole) - 1)]  # a frame cut short
    if choice == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(8, 64)))
    return b"DBG rtc drift=+3s heap=18232\r\n"


def make_nan(reading: dict[str, Any], rng: Random) -> None:
    reading[NAN_FIELDS[rng.randrange(len(NAN_FIELDS))]] = NAN_MARK


def make_impossible(reading: dict[str, Any], rng: Random) -> None:
    choice = rng.randrange(5)
    if choice == 0:
        reading["voltage_v"] = 9999.0
    elif choice == 1:
        reading["pf"] = 1.7
    elif choice == 2:
        reading["import_kwh"] = -abs(reading["import_kwh"])
    elif choice == 3:
        reading["power_w"] = 2.5e9
    else:
        reading["freq_hz"] = 0.0


def name_other_meter(reading: dict[str, Any], other_meter_id: str) -> dict[str, Any]:
    return {**reading, "meter_id": other_meter_id}
