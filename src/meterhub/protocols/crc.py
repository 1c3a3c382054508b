"""The CRC-16 variants meters use, table-driven (pure).

- CRC-16/ARC (poly 0x8005 reflected, init 0, no final XOR): the CRC after '!' of an IEC 62056-21
  mode D / DSMR telegram.
- CRC-16/X-25 (poly 0x1021 reflected, init 0xFFFF, final XOR 0xFFFF): HDLC's HCS and FCS
  (IEC 62056-46), little-endian on the wire.

Both are checked on every frame a gateway reads and every telegram ingest decodes: the tables
are built once, at import.
"""

from __future__ import annotations

import struct
from functools import cache


def _reflected_byte_table(poly: int) -> tuple[int, ...]:
    """The CRC of each byte value, for a reflected 16-bit polynomial."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_ARC_TABLE = _reflected_byte_table(0xA001)
_X25_TABLE = _reflected_byte_table(0x8408)


@cache
def _arc_word_table() -> tuple[int, ...]:
    """The CRC after two bytes, indexed by ``crc ^ (first | second << 8)``: a 16-bit reflected
    CRC shifts its whole register out in 16 bits, so two byte steps depend on that XOR alone.
    Built from the byte table on first use (65,536 entries, some 20 ms)."""
    t = _ARC_TABLE
    return tuple((t[v & 0xFF] >> 8) ^ t[((v >> 8) ^ t[v & 0xFF]) & 0xFF] for v in range(1 << 16))


def crc16_arc(data: bytes) -> int:
    """CRC-16/ARC, two bytes a step (telegrams run to kilobytes)."""
    words = _arc_word_table()
    even = len(data) & ~1
    crc = 0
    for word in struct.unpack(f"<{even // 2}H", data[:even]):
        crc = words[crc ^ word]
    if even != len(data):
        crc = (crc >> 8) ^ _ARC_TABLE[(crc ^ data[-1]) & 0xFF]
    return crc


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25, a byte a step (HDLC frames are short)."""
    table = _X25_TABLE
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF
