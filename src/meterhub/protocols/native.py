"""The native v1 JSON reading object of the MQTT device contract (docs/mqtt-contract.md).

``decode`` turns one message body into readings and per-item rejections. It never raises on bad
input: every problem comes back as a ``Rejection`` with a reason code, and the good items of a
batch are kept even when some of its items are bad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import repeat
from operator import is_not
from typing import Any, cast

import orjson

from meterhub.protocols import json_limits
from meterhub.protocols.base import ParseContext, ParseError
from meterhub.protocols.checks import checked_reading
from meterhub.readings.model import MEASUREMENT_FIELDS, Reading, ReadingBlock, Rejection

# Reason codes (also listed in docs/mqtt-contract.md)
PAYLOAD_TOO_LARGE = "payload_too_large"
MALFORMED_JSON = "malformed_json"
WRONG_SHAPE = "wrong_shape"
BATCH_TOO_LARGE = "batch_too_large"
METER_MISMATCH = "meter_mismatch"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
BAD_TIMESTAMP = "bad_timestamp"
NESTING_TOO_DEEP = "nesting_too_deep"
FORBIDDEN_CHARACTER = "forbidden_character"
VALUE_OUT_OF_RANGE = "value_out_of_range"

MAX_BATCH_ITEMS = 10_000
_KNOWN_KEYS = frozenset({"ts", "seq", "import_kwh_by_tariff", "meter_id", *MEASUREMENT_FIELDS})
_PLAIN_KEYS = frozenset({"ts", "seq", *MEASUREMENT_FIELDS})
_NUMBER_TYPES = frozenset({float, int, type(None)})
_SEQ_TYPES = frozenset({int, type(None)})
# Epoch seconds outside 2000-01-01 .. 2100-01-01 are almost surely milliseconds or garbage.
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 4_102_444_800
_NOT_NONE = partial(is_not, None)
_LOW_YEAR_TEXT, _HIGH_YEAR_TEXT = f"{json_limits.MIN_YEAR:04d}", f"{json_limits.MAX_YEAR:04d}"


@dataclass(slots=True)
class ItemRejection:
    index: int | None  # position in a batch; None when the whole message is refused
    rejection: Rejection
    raw: bytes


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[ItemRejection] = field(default_factory=list)
    batch: bool = False  # the payload was {"readings": [...]}
    # Set for a clean batch: its readings column by column, so that validation checks columns
    # and the store copies them without building an object per reading.
    block: ReadingBlock | None = None


def parse_json(payload: bytes, max_bytes: int) -> tuple[Any, Rejection | None]:
    if len(payload) > max_bytes:
        return None, Rejection(
            PAYLOAD_TOO_LARGE, f"payload of {len(payload)} bytes exceeds the {max_bytes} limit"
        )
    try:
        return orjson.loads(payload), None
    except orjson.JSONDecodeError as exc:
        return None, Rejection(MALFORMED_JSON, f"not valid UTF-8 JSON: {exc}")


def parse_ts(value: Any) -> datetime | Rejection:
    """ISO 8601 with an offset, or epoch seconds, between 2000 and 2100; always returned in UTC."""
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return Rejection(BAD_TIMESTAMP, f"ts {value[:40]!r} is not ISO 8601", "ts")
        if ts.tzinfo is None:
            # A local time without an offset is ambiguous across DST changes: refuse it.
            return Rejection(BAD_TIMESTAMP, "ts has no UTC offset", "ts")
        # Before any arithmetic: converting 0001-01-01+01:00 or 9999-12-31-01:00 overflows.
        if not json_limits.MIN_YEAR <= ts.year <= json_limits.MAX_YEAR:
            return Rejection(BAD_TIMESTAMP, f"ts {value[:40]!r} is outside 2000-2099", "ts")
        return ts.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not _EPOCH_MIN <= value <= _EPOCH_MAX:
            return Rejection(BAD_TIMESTAMP, f"epoch ts {value!r} is out of range", "ts")
        return datetime.fromtimestamp(value, UTC)
    return Rejection(BAD_TIMESTAMP, "ts must be an ISO 8601 string or epoch seconds", "ts")


def reading_from_item(meter_id: str, item: Any) -> Reading | Rejection:
    if not isinstance(item, dict):
        return Rejection(WRONG_SHAPE, "a reading must be a JSON object")
    named = item.get("meter_id")
    if named is not None and named != meter_id:
        # A device may speak only for itself: the topic, which the broker's ACL ties to the
        # credential, is authoritative.
        return Rejection(METER_MISMATCH, f"payload names meter {_shown(named)}", "meter_id")
    if "ts" not in item:
        return Rejection(MISSING_FIELD, "ts is required", "ts")
    ts = parse_ts(item["ts"])
    if isinstance(ts, Rejection):
        return ts
    seq = item.get("seq")
    if seq is not None:
        if type(seq) is not int:
            return Rejection(WRONG_TYPE, "seq must be an integer", "seq")
        if not json_limits.INT64_MIN <= seq <= json_limits.INT64_MAX:
            return Rejection(VALUE_OUT_OF_RANGE, "seq must fit in a signed 64-bit integer", "seq")
    # Unrolled on purpose: this runs for every reading on the ingest hot path. ``type(x) is``
    # keeps booleans out (bool is a subclass of int).
    values: list[float | None] = []
    for name in MEASUREMENT_FIELDS:
        value = item.get(name)
        if value is None or type(value) is float:
            values.append(value)
        elif type(value) is int:
            values.append(float(value))
        else:
            return Rejection(
                WRONG_TYPE, f"{name} must be a number, got {type(value).__name__}", name
            )
    by_tariff = item.get("import_kwh_by_tariff")
    if by_tariff is not None:
        if not isinstance(by_tariff, dict) or not all(
            type(v) is int or type(v) is float for v in by_tariff.values()
        ):
            return Rejection(
                WRONG_TYPE,
                "import_kwh_by_tariff must map tariff names to numbers",
                "import_kwh_by_tariff",
            )
        by_tariff = {str(k): float(v) for k, v in by_tariff.items()}
    extra_keys = item.keys() - _KNOWN_KEYS
    # Only unknown fields are stored as they came (the others are typed scalars above), so only
    # they can nest: check them alone, and only when there are any.
    if extra_keys and json_limits.exceeds_depth(
        [item[k] for k in extra_keys], json_limits.MAX_NESTING - 1
    ):
        return Rejection(NESTING_TOO_DEEP, f"more than {json_limits.MAX_NESTING} levels of nesting")
    import_kwh, export_kwh, power_w, voltage_v, current_a, pf, freq_hz = values
    return Reading(
        meter_id,
        ts,
        seq,
        import_kwh,
        export_kwh,
        by_tariff,
        power_w,
        voltage_v,
        current_a,
        pf,
        freq_hz,
        {k: item[k] for k in extra_keys} if extra_keys else {},
    )


def _plain_batch(meter_id: str, items: list[Any], decoded: Decoded, materialize: bool) -> bool:
    """Fill ``decoded`` from a batch whose every item is well-formed; False to go item by item.

    Column at a time: one type check per field per batch instead of per reading, which is what
    lets one worker keep up with batched meters. Anything unusual (extra fields, a bad value, a
    naive timestamp) falls back to ``reading_from_item``, which says exactly what is wrong.
    """
    # map() with unbound methods keeps these per-item loops in C.
    if set(map(type, items)) != {dict} or not all(map(_PLAIN_KEYS.issuperset, items)):
        return False
    texts = list(map(dict.get, items, repeat("ts")))
    if set(map(type, texts)) != {str}:
        return False
    # Every ISO 8601 form fromisoformat reads starts with the four-digit year, so the smallest
    # and largest strings give the years' range in two C-level passes, before any conversion
    # can overflow (0001-01-01T00:00:00+01:00).
    strings = cast("list[str]", texts)
    if min(strings)[:4] < _LOW_YEAR_TEXT or max(strings)[:4] > _HIGH_YEAR_TEXT:
        return False
    stamps: list[datetime] = []
    for value in strings:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            return False
        if ts.tzinfo is None:
            return False
        stamps.append(ts if ts.tzinfo is UTC else ts.astimezone(UTC))
    seqs = list(map(dict.get, items, repeat("seq")))
    seq_types = set(map(type, seqs))
    if not seq_types <= _SEQ_TYPES:
        return False
    if int in seq_types:
        present = cast("list[int]", seqs if len(seq_types) == 1 else list(filter(_NOT_NONE, seqs)))
        if min(present) < json_limits.INT64_MIN or max(present) > json_limits.INT64_MAX:
            return False
    columns: dict[str, list[Any]] = {}
    for name in MEASUREMENT_FIELDS:
        column = list(map(dict.get, items, repeat(name)))
        kinds = set(map(type, column))
        if not kinds <= _NUMBER_TYPES:
            return False
        if int in kinds:
            column = [float(v) if type(v) is int else v for v in column]
        columns[name] = column
    decoded.block = ReadingBlock(meter_id, stamps, seqs, columns)
    if materialize:
        decoded.readings = decoded.block.readings()
    return True


def decode(
    meter_id: str, payload: bytes, *, max_bytes: int = 256 * 1024, materialize: bool = True
) -> Decoded:
    """``materialize=False``: a clean batch comes back only as ``Decoded.block`` (ingest's fast
    path); otherwise ``Decoded.readings`` always holds every reading."""
    decoded = Decoded()
    document, problem = parse_json(payload, max_bytes)
    if problem is None and json_limits.may_hold_nul(payload):
        problem = forbidden_content(payload, document)
    if problem is not None:
        decoded.rejections.append(ItemRejection(None, problem, payload))
        return decoded
    if isinstance(document, dict) and "readings" in document:
        items = document["readings"]
        if not isinstance(items, list):
            decoded.rejections.append(
                ItemRejection(None, Rejection(WRONG_SHAPE, "readings must be a list"), payload)
            )
            return decoded
        if len(items) > MAX_BATCH_ITEMS:
            decoded.rejections.append(
                ItemRejection(
                    None,
                    Rejection(BATCH_TOO_LARGE, f"{len(items)} readings exceed {MAX_BATCH_ITEMS}"),
                    payload,
                )
            )
            return decoded
        batch = decoded.batch = True
    else:
        items = [document]
        batch = False
    if batch:
        named = document.get("meter_id")
        if named is not None and named != meter_id:
            rejection = Rejection(METER_MISMATCH, f"batch names meter {_shown(named)}", "meter_id")
            decoded.rejections.append(ItemRejection(None, rejection, payload))
            return decoded
        if _plain_batch(meter_id, items, decoded, materialize):
            return decoded
    for index, item in enumerate(items):
        result = reading_from_item(meter_id, item)
        if isinstance(result, Rejection):
            raw = item_bytes(item, payload) if batch else payload
            decoded.rejections.append(ItemRejection(index if batch else None, result, raw))
        else:
            decoded.readings.append(result)
    return decoded


def forbidden_content(payload: bytes, document: Any) -> Rejection | None:
    """What no part of a meter's message may hold, whatever the kind of message: U+0000
    (PostgreSQL cannot store it in text or jsonb)."""
    if json_limits.may_hold_nul(payload) and json_limits.contains_nul(document):
        return Rejection(FORBIDDEN_CHARACTER, "a string holds U+0000 (NUL)")
    return None


def item_bytes(item: Any, payload: bytes) -> bytes:
    """One batch item as JSON for its dead letter; the whole message where it cannot be
    re-encoded (orjson stops at 254 levels), so that nothing refused is lost."""
    try:
        return orjson.dumps(item)
    except (orjson.JSONEncodeError, TypeError):
        return payload


def _shown(value: Any) -> str:
    """A value quoted in a message, never expanded: repr of a deep list would recurse."""
    return repr(value[:64]) if isinstance(value, str) else f"of type {type(value).__name__}"


def parse(data: bytes, context: ParseContext) -> list[Reading]:
    """The native format through the common protocol surface (``meterhub parse``): the meter id
    comes from the context, as it comes from the topic on the broker."""
    if context.meter_id is None:
        raise ParseError("missing_meter_id", "the native format needs --meter-id")
    decoded = decode(context.meter_id, data)
    if decoded.rejections:
        first = decoded.rejections[0]
        where = "" if first.index is None else f"item {first.index}: "
        raise ParseError(first.rejection.code, where + first.rejection.message)
    # Ingest refuses impossible registers at validation (readings.vee); a parser refuses them
    # itself, with the same codes, as every other format does.
    return [checked_reading(reading) for reading in decoded.readings]
