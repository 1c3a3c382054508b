"""Framing: frames come out whole whatever the chunking of the byte stream."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.edge.framing import crc16_x25, framer_for

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"


def crc16_arc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def dsmr_telegram(power_kw: float) -> bytes:
    body = (
        b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(170102192002W)\r\n"
        + f"1-0:1.7.0({power_kw:06.3f}*kW)\r\n".encode()
        + b"!"
    )
    return body + f"{crc16_arc(body):04X}\r\n".encode()


def hdlc_frame(payload: bytes) -> bytes:
    """A type-3 HDLC frame with HCS and FCS, not byte-stuffed (as HAN meters send)."""
    length = 2 + 2 + 1 + 2 + len(payload) + 2  # format, addresses, control, HCS, info, FCS
    header = bytes([0xA0 | (length >> 8), length & 0xFF, 0x01, 0x02, 0x10])
    hcs = crc16_x25(header).to_bytes(2, "little")
    body = header + hcs + payload
    return b"\x7e" + body + crc16_x25(body).to_bytes(2, "little") + b"\x7e"


def frames_of(format_name: str, chunks: list[bytes]) -> list[bytes]:
    framer = framer_for(format_name)
    out: list[bytes] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.flush()


SAMPLES = {
    "native": b'{"ts": 1}\r\n\n{"ts": 2}\n  \n{"ts": 3}',
    "dsmr": b"noise" + dsmr_telegram(0.244) + b"\xff\xff" + dsmr_telegram(1.5),
    "iec62056-21": (
        b"/ISk5MT174-0001\r\n\x020.0.0(1)\r\n1.8.0(8048.375*kWh)\r\n!\r\n\x03/" + dsmr_telegram(2.0)
    ),
    "dlms": b"\x7e" + hdlc_frame(b"\xe6\xe7\x00\x7e\x7e\x7e") + hdlc_frame(b"\x7d\x00") + b"\x00",
}
EXPECTED = {
    "native": [b'{"ts": 1}', b'{"ts": 2}', b'{"ts": 3}'],
    "dsmr": [dsmr_telegram(0.244), dsmr_telegram(1.5)],
    "iec62056-21": [
        b"/ISk5MT174-0001\r\n\x020.0.0(1)\r\n1.8.0(8048.375*kWh)\r\n!\r\n\x03/",
        dsmr_telegram(2.0),
    ],
    "dlms": [hdlc_frame(b"\xe6\xe7\x00\x7e\x7e\x7e"), hdlc_frame(b"\x7d\x00")],
}


@pytest.mark.parametrize("format_name", sorted(SAMPLES))
def test_frames_whole_stream(format_name: str) -> None:
    assert frames_of(format_name, [SAMPLES[format_name]]) == EXPECTED[format_name]


@pytest.mark.parametrize("format_name", sorted(SAMPLES))
def test_split_at_every_byte_boundary(format_name: str) -> None:
    data = SAMPLES[format_name]
    for cut in range(len(data) + 1):
        assert frames_of(format_name, [data[:cut], data[cut:]]) == EXPECTED[format_name], cut
    assert frames_of(format_name, [bytes([b]) for b in data]) == EXPECTED[format_name]


@given(
    format_name=st.sampled_from(sorted(SAMPLES)),
    noise=st.binary(max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_chunking_never_changes_the_frames(format_name: str, noise: bytes, cuts: list[int]) -> None:
    # Arbitrary noise in the stream too: whatever the framer makes of it, it makes the same of
    # it however the bytes arrive.
    data = noise + SAMPLES[format_name] + noise
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert frames_of(format_name, chunks) == frames_of(format_name, [data])


def test_hdlc_with_flag_bytes_inside_the_payload_is_one_frame() -> None:
    # 5502 W = 0x0000157E: a raw 0x7E inside the information field, not byte-stuffed.
    path = CONFORMANCE / "han" / "edge_kaifa_list1_7e_in_payload.hex"
    if not path.exists():
        pytest.skip("shared conformance data not present")
    frame = bytes.fromhex(path.read_text().strip())
    assert frames_of("dlms", [frame[:10], frame[10:]]) == [frame]


def test_conformance_files_frame_one_by_one_and_concatenated() -> None:
    if not CONFORMANCE.exists():
        pytest.skip("shared conformance data not present")
    cases = [
        ("dsmr", sorted((CONFORMANCE / "dsmr").glob("*.txt")), False),
        ("iec62056-21", sorted((CONFORMANCE / "iec62056-21").glob("*.txt")), False),
        ("dlms", sorted((CONFORMANCE / "han").glob("*.hex")), True),
    ]
    for format_name, paths, is_hex in cases:
        datas = [bytes.fromhex(p.read_text().strip()) if is_hex else p.read_bytes() for p in paths]
        singles = [frames_of(format_name, [d]) for d in datas]
        assert all(len(s) == 1 and s[0] in d for s, d in zip(singles, datas, strict=True))
        stream = b"".join(datas)
        assert frames_of(format_name, [bytes([b]) for b in stream]) == [s[0] for s in singles]


def test_oversize_frames_are_dropped_and_counted() -> None:
    framer = framer_for("native", max_frame_bytes=16)
    frames = framer.feed(b'{"ts": 1}\n' + b"x" * 100)
    frames += framer.feed(b"x" * 100 + b'\n{"ts": 2}\n')
    assert frames == [b'{"ts": 1}', b'{"ts": 2}']
    assert framer.oversize == 1
    assert len(framer._buffer) == 0


def test_dsmr_frame_without_final_crlf_ends_at_end_of_stream() -> None:
    telegram = dsmr_telegram(0.5).rstrip(b"\r\n")
    assert frames_of("dsmr", [telegram]) == [telegram]
