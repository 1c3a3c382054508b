"""Shelly energy meters: Gen1 EM / 3EM ``/status`` and Gen2 Pro 3EM / Pro EM status documents.

Accepted shapes (Shelly API docs):

* Gen1 HTTP ``GET /status`` of the Shelly EM and 3EM: ``emeters[]`` with ``power`` (W),
  ``reactive``, ``pf``, ``current``, ``voltage``, ``total`` and ``total_returned`` (both **Wh**),
  ``total_power`` (3EM), ``unixtime`` and ``mac``;
* Gen2 RPC results: ``Shelly.GetStatus`` (``em:0``, ``emdata:0``, ``em1:N``, ``em1data:N``,
  ``sys``), or the bare result of ``EM.GetStatus``, ``EMData.GetStatus``, ``EM1.GetStatus``,
  ``EM1Data.GetStatus``; also wrapped in an RPC response frame ``{"id", "src", "result"}``;
* Gen2 notifications (MQTT ``<prefix>/events/rpc``, WebSocket): ``NotifyStatus`` and
  ``NotifyFullStatus``, ``{"src", "dst", "method", "params": {"ts": <float s>, ...}}``.
  ``NotifyStatus`` carries only what changed: a field it leaves out is ``None`` in the reading,
  and a ``NotifyStatus`` without any meter component (a Wi-Fi RSSI change, say) gives no reading.

Mapping (energy registers in Wh on every Shelly; the reading wants kWh):

===============  ===========================  ===========================  ====================
reading          Gen1 ``emeters[]``           Gen2 ``em:0`` / ``emdata:0``  Gen2 ``em1:N`` / data
===============  ===========================  ===========================  ====================
``import_kwh``   sum of ``total`` / 1000      ``total_act`` / 1000         sum ``total_act_energy``
``export_kwh``   sum ``total_returned``/1000  ``total_act_ret`` / 1000     sum ``..._ret_energy``
``power_w``      ``total_power`` or sum       ``total_act_power``          sum ``act_power``
``voltage_v``    ``emeters[0].voltage``       ``a_voltage``                ``em1:<first>.voltage``
``current_a``    ``emeters[0].current``       ``a_current``                ``.current``
``pf``           ``emeters[0].pf``            ``a_pf``                     ``.pf``
``freq_hz``      --                           ``a_freq``                   ``.freq``
===============  ===========================  ===========================  ====================

A sum is taken only when every channel has the field; otherwise the field is ``None`` (a sum over
some channels would be a wrong register). The meter components are kept whole under ``extra``
(``{"em:0": {...}, "emdata:0": {...}}`` or ``{"emeters": [...], "total_power": ...}``): they are
per-phase structures, and every phase stays readable there.

Meter id, first that applies: ``context.meter_id`` (the device's own id, when the message names
one and it differs, is then kept in ``extra["frame_meter_id"]``); the notification's ``src`` (the
Gen2 device id, e.g. ``shellypro3em-0cb815fcaff4``), every character outside the meter id alphabet
replaced by ``_``; ``"shelly-" + mac`` in lower case from ``mac`` (Gen1) or ``sys.mac`` (Gen2).
The same Gen2 device is therefore ``shellypro3em-<mac>`` on MQTT and ``shelly-<mac>`` over HTTP:
give ``--meter-id`` when mixing the two.

Impossible values refuse the message (``protocols.checks``): a sum over channels that overflows
(``non_finite``; JSON itself cannot carry NaN or infinity), and an energy register below zero
(``negative_register``): ``total`` and ``total_returned`` of every Gen1 channel, every ``*total*``
field of a Gen2 ``emdata``/``em1data`` component, the ones kept only in ``extra`` included. The
message is one snapshot of one device, so nothing of it is kept.

Timestamp, first that applies: ``params.ts`` (Gen2 notification), ``sys.unixtime`` (Gen2),
``unixtime`` (Gen1), else ``context.now``. A Gen1 device reports ``unixtime`` 0 and a Gen2 device
``null`` until it has synchronised its clock: both mean "no time".
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from meterhub.protocols.base import FRAME_METER_ID, ParseContext, ParseError
from meterhub.protocols.checks import checked_reading, register
from meterhub.protocols.native import parse_json
from meterhub.readings.model import METER_ID_PATTERN, Reading
from meterhub.readings.vee import NON_FINITE

MAX_PAYLOAD_BYTES = 256 * 1024
_NOTIFICATIONS = frozenset({"NotifyStatus", "NotifyFullStatus"})
_GEN2_COMPONENT = re.compile(r"^(em|emdata|em1|em1data):(\d{1,3})\Z")
_GEN2_REGISTERS = ("emdata:", "em1data:")  # components whose "*total*" fields are registers
_GEN1_REGISTERS = ("total", "total_returned")
_NOT_METER_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")
# Epoch seconds outside 2000-01-01 .. 2100-01-01 are garbage, as in the native format.
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 4_102_444_800


def _number(where: str, value: Any) -> float | None:
    if value is None:
        return None
    # bool is an int subclass: "power": true is a type error, not 1 W.
    if type(value) is not int and type(value) is not float:
        raise ParseError("wrong_type", f"{where} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ParseError(NON_FINITE, f"{where} is not a finite number")
    return number


def _object(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError("wrong_shape", f"{where} must be a JSON object")
    return value


def _sum_all(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    try:
        total = math.fsum(v for v in values if v is not None)
    except OverflowError:
        total = math.inf
    if not math.isfinite(total):
        raise ParseError(NON_FINITE, "a sum over channels overflows")
    return total


def _kwh(watt_hours: float | None) -> float | None:
    # Shelly counts Wh with at most two decimals; rounding the kWh to 9 decimals (1 uWh) loses
    # nothing and keeps 6328.3 Wh from printing as 6.3283000000000005 kWh.
    return None if watt_hours is None else round(watt_hours / 1000, 9)


def _epoch(where: str, value: Any) -> datetime | None:
    seconds = _number(where, value)
    if seconds is None or seconds == 0:
        return None
    if not _EPOCH_MIN <= seconds <= _EPOCH_MAX:
        raise ParseError("bad_timestamp", f"{where} {seconds!r} is not a plausible epoch time")
    return datetime.fromtimestamp(seconds, UTC)


def _sanitised(device_id: str) -> str | None:
    meter_id = _NOT_METER_ID_CHARS.sub("_", device_id)[:64]
    return meter_id or None


def _meter_id(context: ParseContext, src: Any, status: dict[str, Any]) -> tuple[str, str | None]:
    """The reading's meter id, and the device's own id when ``context.meter_id`` overrides it."""
    candidate: str | None = None
    if isinstance(src, str):
        candidate = _sanitised(src)
    if candidate is None:
        system = status.get("sys")
        mac = system.get("mac") if isinstance(system, dict) else status.get("mac")
        if isinstance(mac, str) and mac:
            candidate = _sanitised("shelly-" + mac.lower())
    if context.meter_id is not None:
        if not METER_ID_PATTERN.match(context.meter_id):
            raise ParseError("bad_meter_id", "a meter id is 1-64 ASCII letters, digits, - or _")
        return context.meter_id, candidate if candidate != context.meter_id else None
    if candidate is None:
        raise ParseError(
            "missing_meter_id", "the message names no device (src or mac): give --meter-id"
        )
    return candidate, None


def _check_registers(status: dict[str, Any], components: dict[str, dict[str, Any]]) -> None:
    emeters = status.get("emeters")
    for index, channel in enumerate(emeters if isinstance(emeters, list) else []):
        if isinstance(channel, dict):
            for key in _GEN1_REGISTERS:
                value = channel.get(key)
                if not _plain_register(value):
                    _register(f"emeters[{index}].{key}", value)
    for name, component in components.items():
        if name.startswith(_GEN2_REGISTERS):
            for key, value in component.items():
                if "total" in key and not _plain_register(value):
                    _register(f"{name}.{key}", value)


def _plain_register(value: Any) -> bool:
    """The usual register value: a number not below zero (JSON carries no NaN or infinity)."""
    return (type(value) is float or type(value) is int) and value >= 0


def _register(where: str, value: Any) -> None:
    number = _number(where, value)
    if number is not None:
        register(number, where)


def _unwrap(document: dict[str, Any]) -> tuple[dict[str, Any], Any, Any, bool]:
    """(status, src, notification ts, is a delta) of a notification, RPC frame or bare status."""
    if "method" in document:
        method = document["method"]
        if not isinstance(method, str) or method not in _NOTIFICATIONS:
            raise ParseError(
                "unsupported_message", f"{str(method)[:40]!r} is not NotifyStatus/NotifyFullStatus"
            )
        params = _object("params", document.get("params"))
        return params, document.get("src"), params.get("ts"), method == "NotifyStatus"
    if "error" in document and "src" in document:
        error = document["error"]
        detail = error.get("message") if isinstance(error, dict) else error
        raise ParseError("device_error", f"the device answered an error: {str(detail)[:80]!r}")
    if "result" in document and "src" in document:
        return _object("result", document["result"]), document["src"], None, False
    return document, None, None, False


def _bare_component(status: dict[str, Any]) -> dict[str, Any]:
    """A bare EM/EMData/EM1/EM1Data.GetStatus result, keyed as Shelly.GetStatus would key it."""
    index = status.get("id", 0)
    if type(index) is not int or not 0 <= index <= 999:
        raise ParseError("wrong_type", "id must be a small integer")
    if "a_act_power" in status or "total_act_power" in status:
        return {f"em:{index}": status}
    if "total_act" in status or "a_total_act_energy" in status:
        return {f"emdata:{index}": status}
    if "act_power" in status:
        return {f"em1:{index}": status}
    if "total_act_energy" in status:
        return {f"em1data:{index}": status}
    return {}


def _gen1(meter_id: str, ts: datetime, status: dict[str, Any]) -> Reading:
    emeters = status["emeters"]
    if not isinstance(emeters, list) or not emeters:
        raise ParseError("wrong_shape", "emeters must be a non-empty list")
    channels = [_object(f"emeters[{i}]", channel) for i, channel in enumerate(emeters)]

    def column(key: str) -> list[float | None]:
        return [_number(f"emeters[{i}].{key}", c.get(key)) for i, c in enumerate(channels)]

    total_power = _number("total_power", status.get("total_power"))
    extra: dict[str, Any] = {"emeters": emeters}
    for key in ("total_power", "emeter_n"):
        if key in status:
            extra[key] = status[key]
    first = channels[0]
    return Reading(
        meter_id,
        ts,
        import_kwh=_kwh(_sum_all(column("total"))),
        export_kwh=_kwh(_sum_all(column("total_returned"))),
        power_w=total_power if total_power is not None else _sum_all(column("power")),
        voltage_v=_number("emeters[0].voltage", first.get("voltage")),
        current_a=_number("emeters[0].current", first.get("current")),
        pf=_number("emeters[0].pf", first.get("pf")),
        extra=extra,
    )


def _gen2(meter_id: str, ts: datetime, components: dict[str, dict[str, Any]]) -> Reading:
    em = components.get("em:0", {})
    emdata = components.get("emdata:0", {})
    em1 = sorted(
        (int(key.split(":")[1]), value) for key, value in components.items() if key[:4] == "em1:"
    )
    em1data = [v for k, v in components.items() if k.startswith("em1data:")]

    def field(component: dict[str, Any], name: str, key: str) -> float | None:
        return _number(f"{name}.{key}", component.get(key))

    if em or not em1:
        phases = [field(em, "em:0", f"{p}_act_power") for p in "abc"]
        power = field(em, "em:0", "total_act_power")
        import_kwh = field(emdata, "emdata:0", "total_act")
        export_kwh = field(emdata, "emdata:0", "total_act_ret")
        first, first_name, prefix = em, "em:0", "a_"
        if power is None:
            power = _sum_all(phases)
    else:
        power = _sum_all([field(c, f"em1:{i}", "act_power") for i, c in em1])
        import_kwh = export_kwh = None
        first_name = f"em1:{em1[0][0]}"
        first, prefix = em1[0][1], ""
    if import_kwh is None and em1data:
        import_kwh = _sum_all([field(c, "em1data", "total_act_energy") for c in em1data])
        export_kwh = _sum_all([field(c, "em1data", "total_act_ret_energy") for c in em1data])
    if import_kwh is None and emdata:
        import_kwh = _sum_all([field(emdata, "emdata:0", f"{p}_total_act_energy") for p in "abc"])
    if export_kwh is None and emdata:
        export_kwh = _sum_all(
            [field(emdata, "emdata:0", f"{p}_total_act_ret_energy") for p in "abc"]
        )
    return Reading(
        meter_id,
        ts,
        import_kwh=_kwh(import_kwh),
        export_kwh=_kwh(export_kwh),
        power_w=power,
        voltage_v=field(first, first_name, prefix + "voltage"),
        current_a=field(first, first_name, prefix + "current"),
        pf=field(first, first_name, prefix + "pf"),
        freq_hz=field(first, first_name, prefix + "freq"),
        extra=dict(components),
    )


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    document, problem = parse_json(data, MAX_PAYLOAD_BYTES)
    if problem is not None:
        raise ParseError(problem.code, problem.message)
    status, src, notified_ts, delta = _unwrap(_object("a Shelly message", document))
    system = status.get("sys")
    system_time = system.get("unixtime") if isinstance(system, dict) else None
    if "emeters" in status:
        components: dict[str, dict[str, Any]] = {}
    else:
        components = {
            key: _object(key, value) for key, value in status.items() if _GEN2_COMPONENT.match(key)
        } or _bare_component(status)
        if not components:
            if delta:
                return []
            raise ParseError(
                "no_meter_data", "no emeters, em, emdata, em1 or em1data: not a Shelly energy meter"
            )
    ts = (
        _epoch("params.ts", notified_ts)
        or _epoch("sys.unixtime", system_time)
        or _epoch("unixtime", status.get("unixtime"))
        or context.now
    )
    meter_id, device_id = _meter_id(context, src, status)
    _check_registers(status, components)
    if "emeters" in status:
        reading = _gen1(meter_id, ts, status)
    else:
        reading = _gen2(meter_id, ts, components)
    if device_id is not None:
        reading.extra[FRAME_METER_ID] = device_id
    return [checked_reading(reading)]
