"""The limits on a meter's JSON, and the byte-level gates that let clean payloads skip the walks."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols import json_limits

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_depth_at_the_limit_passes_and_one_more_level_fails() -> None:
    assert not json_limits.exceeds_depth(nested(json_limits.MAX_NESTING))
    assert json_limits.exceeds_depth(nested(json_limits.MAX_NESTING + 1))


def test_a_thousand_levels_are_walked_without_recursion() -> None:
    assert json_limits.exceeds_depth(nested(1000))


@given(documents, st.integers(min_value=1, max_value=6))
def test_exceeds_depth_agrees_with_the_recursive_definition(value: Any, limit: int) -> None:
    assert json_limits.exceeds_depth(value, limit) == (depth(value) > limit)


@given(documents)
def test_no_brackets_to_spare_proves_the_depth(value: Any) -> None:
    payload = orjson.dumps(value) if depth(value) < 250 else b"[]"
    if not json_limits.may_nest_deeper(payload, 3):
        assert not json_limits.exceeds_depth(orjson.loads(payload), 3)


@given(documents)
def test_no_escaped_nul_in_the_bytes_proves_no_nul_in_the_document(value: Any) -> None:
    payload = orjson.dumps(value)
    if not json_limits.may_hold_nul(payload):
        assert not json_limits.contains_nul(orjson.loads(payload))
    else:
        # The gate may over-report (an escaped backslash before "u0000"), never under-report.
        assert json_limits.contains_nul(value) or b"\\\\u0000" in payload


@given(documents)
def test_no_long_digit_run_proves_every_integer_fits_64_bits(value: Any) -> None:
    payload = orjson.dumps(value)
    if not json_limits.may_hold_big_integer(payload):
        assert not json_limits.out_of_int64(orjson.loads(payload))


def test_nul_is_found_in_keys_as_well_as_values() -> None:
    assert json_limits.contains_nul({"a\x00": 1})
    assert json_limits.contains_nul([{"k": ["x\x00y"]}])
    assert not json_limits.contains_nul({"a": ["b", 1, None]})


def test_int64_bounds_are_inclusive() -> None:
    assert not json_limits.out_of_int64([json_limits.INT64_MIN, json_limits.INT64_MAX])
    assert json_limits.out_of_int64({"seq": json_limits.INT64_MAX + 1})
    assert json_limits.out_of_int64([json_limits.INT64_MIN - 1])
