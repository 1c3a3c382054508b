"""HDLC frames as HAN ports send them (IEC 62056-46, frame format type 3).

``7E | format (2) | destination address | source address | control | HCS (2) | information |
FCS (2) | 7E``. The format field is ``1010 S LLL LLLLLLLL``: type 3, the segmentation bit S and an
11-bit length that counts every byte between the flags. HCS covers format..control, FCS covers
format..end of information; both are CRC-16/X-25, little-endian. A frame without information has
one checksum only.

HAN ports do NOT byte-stuff: 0x7E and 0x7D occur raw inside the information field (a power of
5502 W is ``00 00 15 7E``). Frames are therefore cut by their length field, never by scanning for
flags. Consecutive frames may share one flag (``7E ... 7E ... 7E``) or each bring their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterhub.protocols.base import ParseError
from meterhub.protocols.crc import crc16_x25

FLAG = 0x7E
_FORMAT_TYPE_3 = 0xA0
_MAX_ADDRESS_BYTES = 4  # IEC 62056-46: an HDLC address is 1, 2 or 4 bytes


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    destination: bytes  # address bytes as sent (the last one has its low bit set)
    source: bytes
    control: int
    information: bytes
    segmented: bool = False  # S bit: more segments of the same information field follow


def encode_frame(frame: HdlcFrame) -> bytes:
    """The frame with flags, length and checksums (for tests and simulators)."""
    for address in (frame.destination, frame.source):
        _check_address(address)
    header_length = 2 + len(frame.destination) + len(frame.source) + 1
    length = header_length + 2 + (len(frame.information) + 2 if frame.information else 0)
    if length > 0x7FF:
        raise ParseError("frame_too_long", f"an HDLC frame holds at most 2047 bytes, not {length}")
    format_field = (_FORMAT_TYPE_3 << 8) | (0x0800 if frame.segmented else 0) | length
    header = format_field.to_bytes(2, "big") + frame.destination + frame.source
    header += bytes([frame.control])
    body = header + crc16_x25(header).to_bytes(2, "little")
    if frame.information:
        body += frame.information
        body += crc16_x25(body).to_bytes(2, "little")
    return bytes([FLAG]) + body + bytes([FLAG])


def _check_address(address: bytes) -> None:
    ends = [i for i, byte in enumerate(address) if byte & 1]
    if len(address) not in (1, 2, 4) or ends != [len(address) - 1]:
        raise ParseError("bad_frame", f"bad HDLC address {address.hex()}")


def _address(body: bytes, start: int, end: int) -> int:
    """Index just past the address that starts at ``start`` (its last byte has bit 0 set)."""
    for index in range(start, min(end, start + _MAX_ADDRESS_BYTES)):
        if body[index] & 1:
            if index - start + 1 == 3:
                break  # 3-byte addresses do not exist
            return index + 1
    raise ParseError("bad_frame", f"no valid HDLC address at byte {start}")


def decode_frame(body: bytes) -> HdlcFrame:
    """One frame from the bytes between its flags (format field .. FCS), checksums verified."""
    if len(body) < 2:
        raise ParseError("truncated_frame", "HDLC frame shorter than its format field")
    format_field = int.from_bytes(body[:2], "big")
    if format_field & 0xF000 != _FORMAT_TYPE_3 << 8:
        raise ParseError("bad_frame", f"HDLC format type is not 3 (format {format_field:04X})")
    if len(body) != format_field & 0x7FF:
        raise ParseError("bad_frame", "HDLC length field does not match the frame")
    destination_end = _address(body, 2, len(body))
    source_end = _address(body, destination_end, len(body))
    header_end = source_end + 1  # control
    if header_end + 2 > len(body):
        raise ParseError("truncated_frame", "HDLC header longer than the frame")
    stored_hcs = int.from_bytes(body[header_end : header_end + 2], "little")
    if crc16_x25(body[:header_end]) != stored_hcs:
        raise ParseError("bad_crc", "HDLC header checksum (HCS) does not match")
    information = b""
    if header_end + 2 < len(body):
        if len(body) < header_end + 2 + 2:
            raise ParseError("truncated_frame", "HDLC frame too short for its FCS")
        stored_fcs = int.from_bytes(body[-2:], "little")
        if crc16_x25(body[:-2]) != stored_fcs:
            raise ParseError("bad_crc", "HDLC frame checksum (FCS) does not match")
        information = body[header_end + 2 : -2]
    return HdlcFrame(
        destination=body[2:destination_end],
        source=body[destination_end:source_end],
        control=body[source_end],
        information=information,
        segmented=bool(format_field & 0x0800),
    )


def split_frames(stream: bytes) -> list[HdlcFrame]:
    """Every frame of a stream of flag-delimited frames, in order.

    The stream must start with a flag; between frames only flags may occur. A frame cut short
    is ``truncated_frame``; anything else out of place is ``bad_frame``.
    """
    frames: list[HdlcFrame] = []
    position = 0
    if not stream:
        raise ParseError("truncated_frame", "no data")
    while position < len(stream):
        if stream[position] != FLAG:
            raise ParseError("bad_frame", f"expected an HDLC flag (7E) at byte {position}")
        # Skip repeated flags: frames may share one or bring their own.
        while position < len(stream) and stream[position] == FLAG:
            position += 1
        if position == len(stream):
            break
        if position + 2 > len(stream):
            raise ParseError("truncated_frame", "stream ends inside an HDLC format field")
        length = int.from_bytes(stream[position : position + 2], "big") & 0x7FF
        end = position + length
        if end >= len(stream):
            raise ParseError(
                "truncated_frame",
                f"HDLC frame at byte {position - 1} announces {length} bytes, "
                f"{len(stream) - position} follow",
            )
        frames.append(decode_frame(stream[position:end]))
        position = end  # the closing flag, possibly shared with the next frame
    if not frames:
        raise ParseError("truncated_frame", "no HDLC frame in the data")
    return frames
