"""The native v1 JSON reading object: what is accepted, what is refused and why."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols import native
from meterhub.protocols.base import ParseContext, ParseError


def decode(payload: bytes | str, meter_id: str = "M-1") -> native.Decoded:
    if isinstance(payload, str):
        payload = payload.encode()
    return native.decode(meter_id, payload)


def only_code(decoded: native.Decoded) -> str:
    assert not decoded.readings
    assert len(decoded.rejections) == 1
    return decoded.rejections[0].rejection.code


def test_single_reading_with_offset_is_stored_in_utc() -> None:
    decoded = decode('{"ts": "2026-11-24T10:15:00+05:45", "import_kwh": 1234.567}')
    (reading,) = decoded.readings
    # 10:15 at +05:45 is 04:30 UTC
    assert reading.ts == datetime(2026, 11, 24, 4, 30, tzinfo=UTC)
    assert reading.import_kwh == 1234.567
    assert reading.meter_id == "M-1"


def test_epoch_seconds_are_accepted() -> None:
    (reading,) = decode('{"ts": 1764000000, "power_w": 5}').readings
    assert reading.ts == datetime.fromtimestamp(1764000000, UTC)


def test_unknown_fields_are_kept_not_rejected() -> None:
    (reading,) = decode('{"ts": 1764000000, "import_kwh": 1, "rssi": -71, "fw": "2"}').readings
    assert reading.extra == {"rssi": -71, "fw": "2"}


def test_batch_keeps_good_items_and_rejects_bad_ones() -> None:
    payload = {
        "readings": [
            {"ts": 1764000000, "import_kwh": 1.0},
            {"ts": "yesterday", "import_kwh": 2.0},
            {"ts": 1764000900, "import_kwh": "3"},
            {"ts": 1764001800, "import_kwh": 4.0},
        ]
    }
    decoded = decode(orjson.dumps(payload))
    assert [r.import_kwh for r in decoded.readings] == [1.0, 4.0]
    assert [(x.index, x.rejection.code) for x in decoded.rejections] == [
        (1, native.BAD_TIMESTAMP),
        (2, native.WRONG_TYPE),
    ]
    # the rejected item's own bytes are kept, so nothing of it is lost
    assert orjson.loads(decoded.rejections[1].raw) == {"ts": 1764000900, "import_kwh": "3"}


def test_payload_naming_another_meter_is_rejected() -> None:
    decoded = decode('{"meter_id": "M-2", "ts": 1764000000, "import_kwh": 1}', meter_id="M-1")
    assert only_code(decoded) == native.METER_MISMATCH


def test_payload_naming_its_own_meter_is_fine() -> None:
    assert decode('{"meter_id": "M-1", "ts": 1764000000, "import_kwh": 1}').readings


def test_local_time_without_offset_is_rejected() -> None:
    assert (
        only_code(decode('{"ts": "2026-11-24T10:15:00", "import_kwh": 1}')) == native.BAD_TIMESTAMP
    )


def test_epoch_milliseconds_are_rejected_as_out_of_range() -> None:
    assert only_code(decode('{"ts": 1764000000000, "import_kwh": 1}')) == native.BAD_TIMESTAMP


def test_missing_ts_is_rejected() -> None:
    assert only_code(decode('{"import_kwh": 1}')) == native.MISSING_FIELD


def test_boolean_is_not_a_number() -> None:
    assert only_code(decode('{"ts": 1764000000, "import_kwh": true}')) == native.WRONG_TYPE


def test_nan_literal_is_malformed_json() -> None:
    assert only_code(decode('{"ts": 1764000000, "import_kwh": NaN}')) == native.MALFORMED_JSON


def test_number_overflowing_a_double_is_malformed() -> None:
    assert only_code(decode('{"ts": 1764000000, "import_kwh": 1e400}')) == native.MALFORMED_JSON


def test_binary_garbage_is_malformed_json() -> None:
    assert only_code(decode(bytes(range(256)))) == native.MALFORMED_JSON


def test_deeply_nested_json_is_malformed_not_a_crash() -> None:
    assert only_code(decode("[" * 100_000 + "]" * 100_000)) in (
        native.MALFORMED_JSON,
        native.PAYLOAD_TOO_LARGE,
    )


def test_oversized_payload_is_refused_before_parsing() -> None:
    decoded = native.decode("M-1", b" " * 300_000, max_bytes=256 * 1024)
    assert only_code(decoded) == native.PAYLOAD_TOO_LARGE


def test_json_that_is_not_an_object_is_wrong_shape() -> None:
    assert only_code(decode("[1, 2, 3]")) == native.WRONG_SHAPE


def test_readings_must_be_a_list() -> None:
    assert only_code(decode('{"readings": {"ts": 1}}')) == native.WRONG_SHAPE


def test_parse_refuses_a_negative_register_as_validation_would() -> None:
    context = ParseContext(meter_id="M-1")
    payload = b'{"ts": "2026-11-24T10:15:00Z", "power_w": -5, "import_kwh": 1.5}'
    [reading] = native.parse(payload, context)  # negative power: net metering, accepted
    assert reading.power_w == -5.0
    for field in ("import_kwh", "export_kwh"):
        with pytest.raises(ParseError) as refused:
            native.parse(f'{{"ts": "2026-11-24T10:15:00Z", "{field}": -0.5}}'.encode(), context)
        assert refused.value.code == "negative_register"
    tariff = b'{"ts": "2026-11-24T10:15:00Z", "import_kwh_by_tariff": {"peak": -1}}'
    with pytest.raises(ParseError) as refused:
        native.parse(tariff, context)
    assert refused.value.code == "negative_register"


def test_tariff_registers_must_be_numbers() -> None:
    payload = '{"ts": 1764000000, "import_kwh": 1, "import_kwh_by_tariff": {"1": "x"}}'
    assert only_code(decode(payload)) == native.WRONG_TYPE


@given(st.binary(max_size=2048))
def test_no_bytes_crash_the_decoder(payload: bytes) -> None:
    decoded = native.decode("M-1", payload)
    assert len(decoded.readings) + len(decoded.rejections) >= 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.dictionaries(
        st.sampled_from(["ts", "import_kwh", "seq", "power_w", "meter_id", "x"]), json_values
    )
)
def test_any_json_object_is_either_a_reading_or_a_reasoned_rejection(
    item: dict[str, object],
) -> None:
    decoded = native.decode("M-1", orjson.dumps(item))
    assert len(decoded.readings) + len(decoded.rejections) == 1
    for rejected in decoded.rejections:
        assert rejected.rejection.code and rejected.rejection.message


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1_600_000_000, max_value=1_900_000_000),
            st.floats(min_value=0, max_value=1e9, allow_nan=False),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_batch_round_trip_keeps_every_value(items: list[tuple[int, float]]) -> None:
    payload = orjson.dumps({"readings": [{"ts": ts, "import_kwh": kwh} for ts, kwh in items]})
    decoded = native.decode("M-1", payload)
    assert [(int(r.ts.timestamp()), r.import_kwh) for r in decoded.readings] == items
