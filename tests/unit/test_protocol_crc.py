"""The CRC-16 variants of protocols/crc.py: catalogue check values and the bitwise definitions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols.crc import crc16_arc, crc16_x25


def bitwise(data: bytes, poly: int, init: int, final_xor: int) -> int:
    """A reflected CRC-16 as its definition states it, one bit at a time."""
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ final_xor


def test_crc16_arc_check_value() -> None:
    assert crc16_arc(b"123456789") == 0xBB3D  # the CRC catalogue's check value


def test_crc16_x25_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E


def test_the_crc_of_nothing_is_the_initial_value_finished() -> None:
    assert (crc16_arc(b""), crc16_x25(b"")) == (0, 0)


@given(st.binary(max_size=300))
def test_crc16_arc_is_the_bitwise_definition(data: bytes) -> None:
    # Table-driven two bytes a step: odd and even lengths alike.
    assert crc16_arc(data) == bitwise(data, 0xA001, 0, 0)


@given(st.binary(max_size=300))
def test_crc16_x25_is_the_bitwise_definition(data: bytes) -> None:
    assert crc16_x25(data) == bitwise(data, 0x8408, 0xFFFF, 0xFFFF)
