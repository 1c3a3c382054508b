"""Hypothesis strategies for what a hostile or broken meter can send: the payload grammar of
docs/mqtt-contract.md with every limit pushed past its edge.

Payloads are rendered as bytes by hand, not by a JSON library, so that they can hold what no
encoder writes: NaN and Infinity tokens, numbers that overflow a double, integers past 64 bits,
arrays 1,000 levels deep, escaped NUL characters, truncations and flipped bytes. Used by the fuzz
tests (a few thousand examples in CI), by scripts/fuzz.py (for hours) and by the broker fault tests
(hostile messages between good readings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

MEASUREMENTS = ("import_kwh", "export_kwh", "power_w", "voltage_v", "current_a", "pf", "freq_hz")


@dataclass(frozen=True)
class Raw:
    """JSON text inserted as is (a token no encoder writes)."""

    text: bytes


def render(value: Any) -> bytes:
    """JSON bytes of ``value``; ``Raw`` goes in verbatim; no recursion (1,000 levels deep)."""
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Raw):
            out.append(item.text)
        elif item is None:
            out.append(b"null")
        elif item is True:
            out.append(b"true")
        elif item is False:
            out.append(b"false")
        elif isinstance(item, int):
            out.append(str(item).encode())
        elif isinstance(item, float):
            out.append(repr(item).encode() if math.isfinite(item) else b"null")
        elif isinstance(item, str):
            out.append(_string(item))
        elif isinstance(item, list):
            out.append(b"[")
            stack.append(Raw(b"]"))
            for index, child in enumerate(reversed(item)):
                stack.append(child)
                if index < len(item) - 1:
                    stack.append(Raw(b","))
        elif isinstance(item, dict):
            out.append(b"{")
            stack.append(Raw(b"}"))
            pairs = list(item.items())
            for index, (key, child) in enumerate(reversed(pairs)):
                stack.append(child)
                stack.append(Raw(_string(key) + b":"))
                if index < len(pairs) - 1:
                    stack.append(Raw(b","))
        else:
            raise TypeError(type(item))
    return b"".join(out)


def _string(text: str) -> bytes:
    pieces = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            pieces.append("\\" + char)
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            pieces.append(f"\\u{code:04x}")
        else:
            pieces.append(char)
    return ('"' + "".join(pieces) + '"').encode("utf-8", "surrogatepass")


def nested(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


ugly_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]),
    max_size=20,
) | st.sampled_from(["\x00", "a\x00b", "\u202e", "\ufeff", "\x7f", "\\u0000", "é" * 50])

huge_numbers = st.sampled_from(
    [
        Raw(b"NaN"),
        Raw(b"Infinity"),
        Raw(b"-Infinity"),
        Raw(b"1e999"),
        Raw(b"-1e999"),
        Raw(b"1" * 400),
        Raw(b"1e308"),
        Raw(b"-0.0"),
        Raw(b"0.0000000000000000000000001"),
        2**63,
        2**63 - 1,
        -(2**63),
        -(2**63) - 1,
        2**64 - 1,
        2**64,
        2**100,
    ]
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    huge_numbers,
)

extreme_timestamps = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "9999-12-31T23:59:59.999999-23:59",
            "0001-01-01T00:00:00-23:59",
            "1999-12-31T23:59:59Z",
            "2100-01-01T00:00:00Z",
            "2026-11-24T10:00:00",
            "2026-02-30T10:00:00Z",
            "2026-11-24T10:00:00+25:00",
            "2026-11-24",
            "",
            "now",
        ]
    ),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    huge_numbers,
    st.datetimes().map(lambda d: d.isoformat()),
)

leaves: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), numbers, ugly_text, st.just(Raw(b'"' + b"x" * 70_000 + b'"'))
)
structures = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(ugly_text, children, max_size=3)
    ),
    max_leaves=12,
) | st.integers(min_value=30, max_value=1100).map(nested)


@st.composite
def reading_documents(draw: st.DrawFn, ts: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if draw(st.booleans()) or ts is not None:
        document["ts"] = ts if ts is not None else draw(extreme_timestamps)
    for name in draw(st.lists(st.sampled_from(MEASUREMENTS), max_size=4, unique=True)):
        document[name] = draw(st.one_of(numbers, leaves, structures))
    if draw(st.booleans()):
        document["seq"] = draw(st.one_of(numbers, ugly_text))
    if draw(st.booleans()):
        document["import_kwh_by_tariff"] = draw(
            st.one_of(st.dictionaries(ugly_text, numbers, max_size=3), structures)
        )
    for key in draw(st.lists(ugly_text, max_size=3)):
        document[key] = draw(structures)
    if draw(st.integers(0, 9)) == 0:
        document["meter_id"] = draw(st.one_of(ugly_text, structures))
    return document


@st.composite
def reading_payloads(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return render(draw(reading_documents()))
    items = draw(st.lists(st.one_of(reading_documents(), structures), max_size=6))
    envelope: dict[str, Any] = {"readings": items}
    if draw(st.integers(0, 5)) == 0:
        envelope["meter_id"] = draw(ugly_text)
    return render(envelope)


@st.composite
def event_payloads(draw: st.DrawFn) -> bytes:
    document: dict[str, Any] = {}
    if draw(st.integers(0, 5)):
        document["ts"] = draw(extreme_timestamps)
    if draw(st.integers(0, 5)):
        document["type"] = draw(st.one_of(ugly_text, st.text(min_size=40, max_size=60), leaves))
    for key in draw(st.lists(ugly_text, max_size=3)):
        document[key] = draw(structures)
    return render(document if draw(st.integers(0, 9)) else draw(structures))


@st.composite
def status_payloads(draw: st.DrawFn) -> bytes:
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["online"] = draw(st.one_of(st.booleans(), leaves))
    if draw(st.booleans()):
        document["fw"] = draw(st.one_of(ugly_text, leaves))
    for key in draw(st.lists(ugly_text, max_size=3)):
        document[key] = draw(structures)
    return render(document if draw(st.integers(0, 9)) else draw(structures))


@st.composite
def mangled(draw: st.DrawFn, payloads: st.SearchStrategy[bytes]) -> bytes:
    """A payload cut short or with bytes flipped, as a bad serial line or a buggy encoder."""
    payload = bytearray(draw(payloads))
    if payload and draw(st.booleans()):
        return bytes(payload[: draw(st.integers(0, len(payload) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        if payload:
            payload[draw(st.integers(0, len(payload) - 1))] = draw(st.integers(0, 255))
    return bytes(payload)


KINDS = ("readings", "events", "status")
_BY_KIND = {"readings": reading_payloads(), "events": event_payloads(), "status": status_payloads()}


@st.composite
def hostile_messages(draw: st.DrawFn, prefix: str, meter_id: str) -> tuple[str, bytes]:
    """(topic, payload): mostly the meter's own topics with hostile payloads, sometimes a hostile
    topic, raw bytes or a mangled payload."""
    kind = draw(st.sampled_from(KINDS))
    topic = f"{prefix}/{meter_id}/{kind}"
    roll = draw(st.integers(0, 19))
    if roll == 0:
        topic = draw(
            st.sampled_from(
                [
                    f"{prefix}/{meter_id}/{kind}/extra",
                    f"{prefix}/{meter_id}",
                    f"{prefix}/M 1/{kind}",
                    f"{prefix}/{'x' * 65}/{kind}",
                    f"{prefix}/UNKNOWN-{meter_id}/{kind}",
                ]
            )
        )
    if roll == 1:
        return topic, draw(st.binary(max_size=300))
    if roll in (2, 3):
        return topic, draw(mangled(_BY_KIND[kind]))
    return topic, draw(_BY_KIND[kind])
