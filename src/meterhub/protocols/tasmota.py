"""Tasmota energy telemetry: the ``ENERGY`` object of a ``tele/<topic>/SENSOR`` message.

Accepted shapes (Tasmota docs, "Energy" and "Commands: Status"):

* ``SENSOR`` telemetry: ``{"Time": "2019-11-03T19:34:28", "ENERGY": {...}}``;
* the ``Status 10`` / ``Status 8`` answer: ``{"StatusSNS": {"Time": ..., "ENERGY": {...}}}``.

Mapping to the reading (units as Tasmota sends them):

=================  =============  ==================================================
reading            ENERGY key     note
=================  =============  ==================================================
``import_kwh``     Total          kWh; summed when a list (one register per channel)
``export_kwh``     ExportActive   kWh; summed when a list
``power_w``        Power          W; summed over channels when a list
``voltage_v``      Voltage        V; first channel when a list
``current_a``      Current        A; first channel when a list
``pf``             Factor         first channel when a list
``freq_hz``        Frequency      Hz; first channel when a list
=================  =============  ==================================================

Every other ENERGY key (Yesterday, Today, Period, ApparentPower, ReactivePower, TotalStartTime,
...) is kept verbatim under ``extra``, and so is every mapped key sent as a list, so that no
channel is lost.

The payload names no device (the device is the MQTT topic), so ``context.meter_id`` is required.
``Time`` is the device's local wall clock without an offset (unless ``SetOption52`` adds one): it
is read in ``context.timezone`` (UTC when the context gives none). Without ``Time`` the reading is
stamped ``context.now``.

Impossible values refuse the message (``protocols.checks``): a sum over channels that overflows
(``non_finite``; JSON itself cannot carry NaN or infinity), and a ``Total`` or ``ExportActive``
register, or one channel of it, below zero (``negative_register``). The message is one snapshot
of one device, so nothing of it is kept.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from meterhub.protocols.base import ParseContext, ParseError
from meterhub.protocols.checks import checked_reading, register
from meterhub.protocols.native import parse_json
from meterhub.readings.model import METER_ID_PATTERN, Reading
from meterhub.readings.vee import NON_FINITE

MAX_PAYLOAD_BYTES = 64 * 1024

# reading field -> (ENERGY key, how a per-channel list becomes one value)
_SUMMED = {"import_kwh": "Total", "export_kwh": "ExportActive", "power_w": "Power"}
_FIRST = {"voltage_v": "Voltage", "current_a": "Current", "pf": "Factor", "freq_hz": "Frequency"}
_MAPPED_KEYS = frozenset({*_SUMMED.values(), *_FIRST.values()})
_REGISTERS = frozenset({"Total", "ExportActive"})


def _number(key: str, value: Any) -> float:
    # bool is an int subclass: "Power": true is a type error, not 1 W.
    if type(value) is not int and type(value) is not float:
        raise ParseError("wrong_type", f"ENERGY.{key} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ParseError(NON_FINITE, f"ENERGY.{key} is not a finite number")
    return number


def _channels(key: str, value: Any) -> list[float]:
    if isinstance(value, list):
        if not value:
            raise ParseError("wrong_type", f"ENERGY.{key} is an empty list")
        numbers = [_number(key, item) for item in value]
    else:
        numbers = [_number(key, value)]
    if key in _REGISTERS:
        for channel, number in enumerate(numbers):
            if number < 0.0:  # finite already (_number)
                where = f"ENERGY.{key}" if len(numbers) == 1 else f"ENERGY.{key}[{channel}]"
                register(number, where)
    return numbers


def _sum(key: str, channels: list[float]) -> float:
    try:
        total = math.fsum(channels)  # exact: a register must not drift with the channel order
    except OverflowError:
        total = math.inf
    if not math.isfinite(total):
        raise ParseError(NON_FINITE, f"the sum of ENERGY.{key} overflows")
    return total


def _local_time(value: Any, context: ParseContext) -> datetime:
    if not isinstance(value, str):
        raise ParseError("bad_timestamp", "Time must be an ISO 8601 string")
    try:
        ts = datetime.fromisoformat(value)
        if ts.tzinfo is None:
            # Tasmota's clock is local time (its Timezone/TimeDst settings), sent without offset.
            ts = ts.replace(tzinfo=context.zone())
        return ts.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ParseError("bad_timestamp", f"Time {value[:40]!r} is not ISO 8601") from None


def meter_id_from(context: ParseContext) -> str:
    if context.meter_id is None:
        raise ParseError(
            "missing_meter_id", "Tasmota payloads name no device: give the meter id (--meter-id)"
        )
    if not METER_ID_PATTERN.match(context.meter_id):
        raise ParseError("bad_meter_id", "a meter id is 1-64 ASCII letters, digits, - or _")
    return context.meter_id


def reading_from_sensor(meter_id: str, sensor: dict[str, Any], context: ParseContext) -> Reading:
    """One reading from a SENSOR (or StatusSNS) object."""
    energy = sensor.get("ENERGY")
    if energy is None:
        raise ParseError("missing_energy", "no ENERGY object: not a Tasmota energy-meter message")
    if not isinstance(energy, dict):
        raise ParseError("wrong_shape", "ENERGY must be a JSON object")
    ts = _local_time(sensor["Time"], context) if "Time" in sensor else context.now
    values: dict[str, float | None] = {}
    for field_name, key in _SUMMED.items():
        raw = energy.get(key)
        values[field_name] = None if raw is None else _sum(key, _channels(key, raw))
    for field_name, key in _FIRST.items():
        raw = energy.get(key)
        values[field_name] = None if raw is None else _channels(key, raw)[0]
    extra = {
        key: value
        for key, value in energy.items()
        if key not in _MAPPED_KEYS or isinstance(value, list)
    }
    reading = Reading(
        meter_id,
        ts,
        import_kwh=values["import_kwh"],
        export_kwh=values["export_kwh"],
        power_w=values["power_w"],
        voltage_v=values["voltage_v"],
        current_a=values["current_a"],
        pf=values["pf"],
        freq_hz=values["freq_hz"],
        extra=extra,
    )
    return checked_reading(reading)


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    meter_id = meter_id_from(context)
    document, problem = parse_json(data, MAX_PAYLOAD_BYTES)
    if problem is not None:
        raise ParseError(problem.code, problem.message)
    if not isinstance(document, dict):
        raise ParseError("wrong_shape", "a Tasmota message is a JSON object")
    sensor = document.get("StatusSNS", document)
    if not isinstance(sensor, dict):
        raise ParseError("wrong_shape", "StatusSNS must be a JSON object")
    return [reading_from_sensor(meter_id, sensor, context)]
