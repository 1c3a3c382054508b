"""Limits a JSON document from a meter must keep before anything else looks at it.

Each limit exists because something downstream cannot take what JSON allows: orjson encodes at
most 254 levels of nesting (and ingest re-encodes unknown fields and refused batch items), Python
recurses on nested values, PostgreSQL's text and jsonb cannot hold U+0000, its ``int8`` ends at
2**63 - 1, and ``datetime`` arithmetic overflows near years 1 and 9999. A document that breaks
one is refused with a reason code instead of failing later, where it would take its whole batch
with it. Iterative walks: a 1,000-deep array must not hit Python's recursion limit here either.
"""

from __future__ import annotations

import re
from typing import Any

# JSON levels anywhere in a message: a batch uses three (envelope, list, item), leaving room for
# structured unknown fields. orjson's encoder stops at 254.
MAX_NESTING = 32
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Instants meterhub accepts at all (readings, events): 2000-01-01 up to 2100-01-01, the same
# window as epoch seconds. Narrower limits (late data, clock ahead) are VEE's business.
MIN_YEAR = 2000
MAX_YEAR = 2099

# Cheap byte-level gates: only a payload that contains these can need the walks below.
_ESCAPED_NUL = b"\\u0000"
_LONG_DIGITS = re.compile(rb"\d{19}")


def may_hold_nul(payload: bytes) -> bool:
    """False proves the decoded document holds no U+0000 (JSON can carry it only escaped)."""
    return _ESCAPED_NUL in payload


def may_hold_big_integer(payload: bytes) -> bool:
    """False proves every integer in the document fits in 64 bits (19 digits or fewer)."""
    return _LONG_DIGITS.search(payload) is not None


def may_nest_deeper(payload: bytes, limit: int = MAX_NESTING) -> bool:
    """False proves the document has at most ``limit`` levels: fewer brackets than that."""
    return payload.count(b"[") + payload.count(b"{") > limit


def exceeds_depth(value: Any, limit: int = MAX_NESTING) -> bool:
    """True when ``value`` nests lists or objects more than ``limit`` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` (keys included) holds U+0000."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def out_of_int64(value: Any) -> bool:
    """True when an integer anywhere in ``value`` does not fit PostgreSQL's int8."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
