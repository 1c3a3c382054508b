"""A-XDR decoding of DLMS/COSEM ``Data`` (IEC 62056-6-2 / DLMS UA Green Book, "Data" CHOICE).

Only what push messages carry: no compact arrays. Values come back as plain Python:

=====================================  ====================================================
tag                                    value
=====================================  ====================================================
0 null-data                            None
1 array, 2 structure                   list
3 boolean                              bool
4 bit-string                           bytes (the bits, padded to whole bytes)
5, 6, 15, 16, 17, 18, 20, 21, 22 ints  int (enum 22 as int: units are enums)
9 octet-string, 25/26/27 date/time     bytes (OBIS codes and date-times are octet strings)
10 visible-string, 12 utf8-string      str
13 bcd                                 int (the raw byte)
23 float32, 24 float64                 float (finite only)
=====================================  ====================================================
"""

from __future__ import annotations

import math
import struct

from meterhub.protocols.base import ParseError
from meterhub.readings.vee import NON_FINITE

AxdrValue = None | bool | int | float | bytes | str | list["AxdrValue"]

MAX_DEPTH = 16  # push lists nest two or three levels; deeper input is garbage, not data

# tag -> (size in bytes, signed)
_INTEGERS: dict[int, tuple[int, bool]] = {
    0x05: (4, True),  # double-long
    0x06: (4, False),  # double-long-unsigned
    0x0D: (1, False),  # bcd
    0x0F: (1, True),  # integer
    0x10: (2, True),  # long
    0x11: (1, False),  # unsigned
    0x12: (2, False),  # long-unsigned
    0x14: (8, True),  # long64
    0x15: (8, False),  # long64-unsigned
    0x16: (1, False),  # enum
}
_FIXED_OCTETS = {0x19: 12, 0x1A: 5, 0x1B: 4}  # date-time, date, time


class Reader:
    """A cursor over bytes that raises ``truncated_frame`` instead of reading past the end."""

    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    @property
    def remaining(self) -> int:
        return len(self.data) - self.position

    def take(self, count: int) -> bytes:
        if count > self.remaining:
            raise ParseError(
                "truncated_frame", f"APDU needs {count} more bytes at {self.position}, has fewer"
            )
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> int:
        """A-XDR length: one byte below 0x80, else 0x8N followed by N big-endian bytes."""
        first = self.byte()
        if first < 0x80:
            return first
        size = first & 0x7F
        if not 1 <= size <= 4:
            raise ParseError("bad_apdu", f"A-XDR length with {size} length bytes")
        return int.from_bytes(self.take(size), "big")


def decode_data(reader: Reader, depth: int = 0) -> AxdrValue:
    """One ``Data`` value at the reader's position."""
    if depth > MAX_DEPTH:
        raise ParseError("bad_apdu", f"A-XDR data nested deeper than {MAX_DEPTH} levels")
    tag = reader.byte()
    if tag in (0x01, 0x02):
        count = reader.length()
        if count > reader.remaining:  # every element takes at least its tag byte
            raise ParseError("truncated_frame", f"A-XDR list of {count} elements is cut short")
        return [decode_data(reader, depth + 1) for _ in range(count)]
    if tag in _INTEGERS:
        size, signed = _INTEGERS[tag]
        return int.from_bytes(reader.take(size), "big", signed=signed)
    if tag == 0x00:
        return None
    if tag == 0x03:
        return reader.byte() != 0
    if tag == 0x04:
        bits = reader.length()
        return reader.take((bits + 7) // 8)
    if tag == 0x09:
        return reader.take(reader.length())
    if tag in (0x0A, 0x0C):
        raw = reader.take(reader.length())
        try:
            return raw.decode("ascii" if tag == 0x0A else "utf-8")
        except UnicodeDecodeError:
            raise ParseError("bad_apdu", "A-XDR string is not valid text") from None
    if tag in (0x17, 0x18):
        layout, size = (">f", 4) if tag == 0x17 else (">d", 8)  # float32, float64
        number: float = struct.unpack(layout, reader.take(size))[0]
        if not math.isfinite(number):
            raise ParseError(NON_FINITE, "A-XDR float is not a finite number")
        return number
    if tag in _FIXED_OCTETS:
        return reader.take(_FIXED_OCTETS[tag])
    raise ParseError("bad_apdu", f"unsupported A-XDR data tag 0x{tag:02X}")


def encode_data(value: AxdrValue) -> bytes:
    """The A-XDR encoding of a value, with the tag the decoder would read it back from.

    For tests and the simulator: int is double-long-unsigned (or double-long when negative),
    list a structure, bytes an octet-string, str a visible-string.
    """
    if value is None:
        return b"\x00"
    if isinstance(value, bool):
        return bytes([0x03, int(value)])
    if isinstance(value, int):
        if value < 0:
            return b"\x05" + value.to_bytes(4, "big", signed=True)
        return b"\x06" + value.to_bytes(4, "big")
    if isinstance(value, float):
        return b"\x18" + struct.pack(">d", value)
    if isinstance(value, bytes):
        return b"\x09" + encode_length(len(value)) + value
    if isinstance(value, str):
        raw = value.encode("ascii")
        return b"\x0a" + encode_length(len(raw)) + raw
    return b"\x02" + encode_length(len(value)) + b"".join(encode_data(item) for item in value)


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")
