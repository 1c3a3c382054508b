"""HDLC framing of HAN ports: checksums, length-delimited frames, no byte stuffing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.protocols.base import ParseError
from meterhub.protocols.crc import crc16_x25
from meterhub.protocols.hdlc import HdlcFrame, decode_frame, encode_frame, split_frames

INFO = bytes.fromhex("E6E7000F40000000000101020309060100010700FF060000067D02020F00161B")


def frame(information: bytes = INFO, **changes: object) -> HdlcFrame:
    fields: dict[str, object] = {
        "destination": b"\x41",
        "source": b"\x08\x83",
        "control": 0x13,
        "information": information,
    }
    fields.update(changes)
    return HdlcFrame(**fields)  # type: ignore[arg-type]


def test_crc16_x25_check_value() -> None:
    # The catalogue check value of CRC-16/X-25 over ASCII "123456789" is 0x906E.
    assert crc16_x25(b"123456789") == 0x906E


def test_encoded_frame_matches_a_real_aidon_frame() -> None:
    # toreamun/amshan tests/test_hdlc.py FRAME_WITH_ESCAPE_CHARACTER_IN_INFO, wrapped in flags.
    real = bytes.fromhex("7EA02A410883130413" + INFO.hex() + "1C057E")
    assert encode_frame(frame()) == real


def test_checksums_are_little_endian() -> None:
    raw = encode_frame(frame())
    body = raw[1:-1]
    assert body[-2:] == crc16_x25(body[:-2]).to_bytes(2, "little")


def test_0x7e_and_0x7d_inside_the_information_field_are_data() -> None:
    information = b"\xe6\xe7\x00\x7e\x7d\x7e\x7e"
    (decoded,) = split_frames(encode_frame(frame(information)))
    assert decoded.information == information


def test_frames_may_share_a_flag() -> None:
    first, second = encode_frame(frame(b"\x01")), encode_frame(frame(b"\x02"))
    shared = first + second[1:]
    assert [f.information for f in split_frames(shared)] == [b"\x01", b"\x02"]
    assert [f.information for f in split_frames(first + second)] == [b"\x01", b"\x02"]


def test_bad_header_checksum() -> None:
    raw = bytearray(encode_frame(frame()))
    raw[7] ^= 0x01  # HCS low byte
    with pytest.raises(ParseError) as error:
        split_frames(bytes(raw))
    assert error.value.code == "bad_crc"


def test_bad_frame_checksum() -> None:
    raw = bytearray(encode_frame(frame()))
    raw[-2] ^= 0x01
    with pytest.raises(ParseError) as error:
        split_frames(bytes(raw))
    assert error.value.code == "bad_crc"


def test_truncated_frame() -> None:
    raw = encode_frame(frame())
    with pytest.raises(ParseError) as error:
        split_frames(raw[:-5])
    assert error.value.code == "truncated_frame"


def test_segmentation_bit_round_trips() -> None:
    (decoded,) = split_frames(encode_frame(frame(segmented=True)))
    assert decoded.segmented


def test_frame_without_information_has_one_checksum() -> None:
    raw = encode_frame(frame(b""))
    assert len(raw) == 1 + 2 + 1 + 2 + 1 + 2 + 1
    assert decode_frame(raw[1:-1]).information == b""


addresses = st.sampled_from([b"\x01", b"\x03", b"\x02\x01", b"\x00\x02\x00\x21", b"\x41"])
frames = st.builds(
    HdlcFrame,
    destination=addresses,
    source=addresses,
    control=st.integers(0, 255),
    information=st.binary(max_size=300),
    segmented=st.booleans(),
)


@given(frames)
def test_encode_decode_round_trip(original: HdlcFrame) -> None:
    assert split_frames(encode_frame(original)) == [original]


@given(frames.filter(lambda f: bool(f.information)), st.data())
def test_any_single_byte_corruption_is_refused(original: HdlcFrame, data: st.DataObject) -> None:
    raw = bytearray(encode_frame(original))
    index = data.draw(st.integers(1, len(raw) - 2), label="index")  # not the flags
    raw[index] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(ParseError) as error:
        split_frames(bytes(raw))
    assert error.value.code in {"bad_crc", "bad_frame", "truncated_frame"}


@given(st.binary(max_size=400))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        split_frames(data)
