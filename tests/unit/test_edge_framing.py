"""Framing: frames come out whole whatever the chunking of the byte stream."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import service_missing
from meterhub.edge.framing import framer_for
from meterhub.protocols.crc import crc16_x25

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


def xor(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def iec_readout(data_lines: bytes, identification: bytes = b"/ISk5MT174-0001\r\n") -> bytes:
    """A mode C readout with its BCC (XOR of everything after STX up to and including ETX)."""
    block = data_lines + b"!\r\n\x03"
    return identification + b"\x02" + block + bytes([xor(block)])


# The 'W' makes this readout's BCC '/': a BCC may be any byte, even one that opens a frame.
READOUT_BCC_SLASH = iec_readout(b"0.0.0(1W)\r\n1.8.0(8048.375*kWh)\r\n")
assert READOUT_BCC_SLASH.endswith(b"\x03/")


def frames_of(format_name: str, chunks: list[bytes]) -> list[bytes]:
    framer = framer_for(format_name)
    out: list[bytes] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out + framer.flush()


SAMPLES = {
    "native": b'{"ts": 1}\r\n\n{"ts": 2}\n  \n{"ts": 3}',
    "dsmr": b"noise" + dsmr_telegram(0.244) + b"\xff\xff" + dsmr_telegram(1.5),
    "iec62056-21": READOUT_BCC_SLASH + dsmr_telegram(2.0),
    "dlms": b"\x7e" + hdlc_frame(b"\xe6\xe7\x00\x7e\x7e\x7e") + hdlc_frame(b"\x7d\x00") + b"\x00",
}
EXPECTED = {
    "native": [b'{"ts": 1}', b'{"ts": 2}', b'{"ts": 3}'],
    "dsmr": [dsmr_telegram(0.244), dsmr_telegram(1.5)],
    "iec62056-21": [READOUT_BCC_SLASH, dsmr_telegram(2.0)],
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
        service_missing(f"the shared conformance corpus at {CONFORMANCE}")
    frame = bytes.fromhex(path.read_text().strip())
    assert frames_of("dlms", [frame[:10], frame[10:]]) == [frame]


def test_conformance_files_frame_one_by_one_and_concatenated() -> None:
    if not CONFORMANCE.exists():
        service_missing(f"the shared conformance corpus at {CONFORMANCE}")
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


# -- a bad frame costs only itself --------------------------------------------------------------


def cuts_of(telegram: bytes) -> range:
    """Every length a telegram can be cut to and still be incomplete: from its '/' alone to its
    '!' line with up to 3 of the 4 CRC digits (with all 4 and no CRLF it is a whole telegram)."""
    return range(1, telegram.index(b"\n!") + 5)


def test_a_telegram_cut_anywhere_costs_only_itself() -> None:
    cut, good, after = dsmr_telegram(0.25), dsmr_telegram(1.5), dsmr_telegram(3.0)
    for length in cuts_of(cut):
        frames = frames_of("dsmr", [cut[:length] + good + after])
        # The cut piece goes to the parser (which refuses it) once it has a header line.
        assert frames[-2:] == [good, after], length
        assert frames[:-2] in ([], [cut[:length]]), length


def test_a_telegram_cut_inside_a_line_followed_at_once_by_the_next() -> None:
    cut, good = dsmr_telegram(0.25), dsmr_telegram(1.5)
    stream = cut[: cut.index(b"1-0:1.7.0(") + 12] + good  # "...1-0:1.7.0(00" + "/ISK5..."
    assert frames_of("dsmr", [stream]) == [stream[: -len(good)], good]


@pytest.mark.parametrize(
    "noise",
    [b"/", b"a/b", b"\xff/\x00", b"/ABC5\r\n", b"//ISK5\r\n", b"x\n!/y", b"\n!", b"/\r\n!"],
)
def test_a_slash_in_line_noise_costs_no_telegram(noise: bytes) -> None:
    good, after = dsmr_telegram(1.5), dsmr_telegram(3.0)
    frames = frames_of("dsmr", [noise + good + noise + after + noise])
    assert [f for f in frames if f in (good, after)] == [good, after]


def test_a_slash_inside_a_value_is_not_a_new_telegram() -> None:
    # A text value holding '/' (and a header-like text) stays inside its telegram.
    body = b"/ISK5\\2M550T-1012\r\n\r\n0-0:96.13.0(/ABC5 v1/2)\r\n1-0:1.7.0(00.244*kW)\r\n!"
    telegram = body + f"{crc16_arc(body):04X}\r\n".encode()
    assert frames_of("dsmr", [telegram]) == [telegram]


def test_iec_readouts_cut_short_cost_only_themselves() -> None:
    readout = iec_readout(b"0.0.0(1)\r\n1.8.0(8048.375*kWh)\r\n")
    good = iec_readout(b"0.0.0(2)\r\n1.8.0(8048.400*kWh)\r\n")
    for length in range(1, readout.index(b"\x03") + 2):  # up to and including ETX, no BCC
        for after in (good, dsmr_telegram(2.0), good[good.index(b"\x02") :]):
            if readout[:length].endswith(b"\n") and after[0] == 0x02:
                continue  # an identification line and a data block: that is a whole readout
            frames = frames_of("iec62056-21", [readout[:length] + after])
            assert frames[-1] == after, (length, after[:5])
            assert len(frames) <= 2


def test_a_bare_data_block_cut_short_costs_only_itself() -> None:
    good = iec_readout(b"1.8.0(0001.000*kWh)\r\n")
    block = good[good.index(b"\x02") :]
    assert frames_of("iec62056-21", [block[:9] + block]) == [block[:9], block]


def test_hdlc_frame_cut_short_at_the_end_of_the_stream_costs_only_itself() -> None:
    cut, good = hdlc_frame(b"\xe6\xe7\x00" + bytes(60)), hdlc_frame(b"\xe6\xe7\x00\x01")
    # The cut frame's length reaches past the end of the stream: the good frame after it is
    # found when the stream ends, not skipped with it.
    assert frames_of("dlms", [cut[:20] + good]) == [good]


def test_hdlc_noise_that_looks_like_a_long_frame_holds_nothing_back() -> None:
    good = hdlc_frame(b"\xe6\xe7\x00\x01")
    framer = framer_for("dlms")
    # 7E A7 FF announces a 2047-byte frame; its header check fails, so the good frame comes out
    # at once instead of after 2 KB more.
    assert framer.feed(b"\x7e\xa7\xff\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b" + good) == [good]


# -- properties: any mix of good frames, cut-short frames and noise, however chunked ------------

GOOD_DSMR = st.builds(dsmr_telegram, st.integers(0, 99_999).map(lambda w: w / 1000))
NOISE = st.lists(
    st.sampled_from([b"/", b"!", b"\n!", b"\r\n", b"\n", b"(", b")", b"A", b"5", b"\x00", b"\xff"])
    | st.binary(max_size=4),
    max_size=8,
).map(b"".join)


@st.composite
def cut_short(draw: st.DrawFn, telegrams: st.SearchStrategy[bytes]) -> bytes:
    telegram = draw(telegrams)
    return telegram[: draw(st.sampled_from(cuts_of(telegram)))]


def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    points = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=12))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@st.composite
def dsmr_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    items = draw(
        st.lists(
            st.tuples(st.just("good"), GOOD_DSMR)
            | st.tuples(st.just("cut"), cut_short(GOOD_DSMR))
            | st.tuples(st.just("noise"), NOISE),
            max_size=10,
        )
    )
    good = [data for kind, data in items if kind == "good"]
    return good, chunked(draw, b"".join(data for _, data in items))


def good_frames(frames: list[bytes], good: list[bytes]) -> list[bytes]:
    return [frame for frame in frames if frame in good]


@settings(max_examples=500)
@given(dsmr_streams())
def test_every_good_dsmr_telegram_comes_out_once(stream: tuple[list[bytes], list[bytes]]) -> None:
    good, chunks = stream
    assert good_frames(frames_of("dsmr", chunks), good) == good


GOOD_READOUT = st.builds(
    lambda kwh, c: iec_readout(f"0.0.0({c})\r\n1.8.0({kwh:011.3f}*kWh)\r\n".encode()),
    st.integers(0, 10**9).map(lambda wh: wh / 1000),
    st.integers(0, 99),
)


@st.composite
def cut_readout(draw: st.DrawFn) -> bytes:
    readout = draw(GOOD_READOUT)
    # Cut before its ETX: a readout cut between ETX and BCC may be followed by a byte that is
    # its BCC, and then it is a whole readout (see framing._block_end).
    return readout[: draw(st.integers(1, readout.index(b"\x03")))]


@st.composite
def iec_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    items = draw(
        st.lists(
            st.tuples(st.just("good"), GOOD_READOUT | GOOD_DSMR)
            | st.tuples(st.just("cut"), cut_readout() | cut_short(GOOD_DSMR))
            | st.tuples(st.just("noise"), NOISE),
            max_size=10,
        )
    )
    good = [data for kind, data in items if kind == "good"]
    return good, chunked(draw, b"".join(data for _, data in items))


@settings(max_examples=500)
@given(iec_streams())
def test_every_good_iec_frame_comes_out_once(stream: tuple[list[bytes], list[bytes]]) -> None:
    good, chunks = stream
    assert good_frames(frames_of("iec62056-21", chunks), good) == good


GOOD_HDLC = st.binary(min_size=1, max_size=80).map(lambda p: hdlc_frame(b"\xe6\xe7\x00" + p))


@st.composite
def hdlc_streams(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    # Cut before the closing flag: frames may share a flag, so one cut just before it is whole.
    cut = GOOD_HDLC.flatmap(lambda f: st.integers(1, len(f) - 2).map(lambda n: f[:n]))
    items = draw(
        st.lists(
            st.tuples(st.just("good"), GOOD_HDLC)
            | st.tuples(st.just("cut"), cut)
            | st.tuples(st.just("noise"), st.binary(max_size=6) | st.just(b"\x7e\xa0")),
            max_size=10,
        )
    )
    good = [data for kind, data in items if kind == "good"]
    return good, chunked(draw, b"".join(data for _, data in items))


@settings(max_examples=500)
@given(hdlc_streams())
def test_every_good_hdlc_frame_comes_out_once(stream: tuple[list[bytes], list[bytes]]) -> None:
    good, chunks = stream
    assert good_frames(frames_of("dlms", chunks), good) == good


def test_real_telegrams_cut_at_every_line_cost_only_themselves() -> None:
    if not CONFORMANCE.exists():
        service_missing(f"the shared conformance corpus at {CONFORMANCE}")
    for format_name, folder in (("dsmr", "dsmr"), ("iec62056-21", "iec62056-21")):
        datas = [p.read_bytes() for p in sorted((CONFORMANCE / folder).glob("*.txt"))]
        wholes = [frames_of(format_name, [d])[0] for d in datas]
        for whole, following in zip(wholes, wholes[1:] + wholes[:1], strict=True):
            ends = [i + 1 for i, byte in enumerate(whole) if byte == 0x0A]
            cut_at = [n for n in ends + [n - 3 for n in ends] if 0 < n < len(whole) - 4]
            for length in cut_at:
                frames = frames_of(format_name, [whole[:length] + following])
                assert frames[-1] == following, (format_name, length, whole[:20])
