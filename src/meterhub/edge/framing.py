"""Split a meter's byte stream into frames, one frame per ``parse`` call (pure, incremental).

Each framer is fed chunks as they come off the wire (``feed``) and returns every frame that is
complete so far, keeping the partial rest; ``flush`` at end of stream returns a last frame whose
end is only known because the stream ended. Where a frame ends depends only on its bytes, never on
how the stream was chunked, so a serial port that returns 1 byte or 4 KiB at a time yields the same
frames. Bytes between frames (line noise, a gateway's padding) are skipped and counted in
``skipped_bytes``; a frame longer than ``max_frame_bytes`` is dropped and counted in ``oversize``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

STX, ETX, FLAG = 0x02, 0x03, 0x7E
# A mode C readout with 15 billing periods is about 10 KB; DSMR telegrams are 1-3 KB.
DEFAULT_MAX_FRAME_BYTES = 64 * 1024

# Scanner: (buffer, final, max frame bytes) -> what it found. The framer keeps ``rest`` and
# prepends it to the next chunk; at end of stream (``final``) whatever is left over is skipped.


@dataclass(slots=True)
class Scanned:
    frames: list[bytes] = field(default_factory=list)
    rest: bytes = b""
    skipped: int = 0
    oversize: int = 0


Scan = Callable[[bytes, bool, int], Scanned]


class Framer:
    """Incremental framing for one format: ``feed(chunk) -> frames``; ``flush() -> frames``."""

    def __init__(self, scan: Scan, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._scan = scan
        self._buffer = b""
        self.max_frame_bytes = max_frame_bytes
        self.skipped_bytes = 0
        self.oversize = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        return self._run(self._buffer + chunk, final=False)

    def flush(self) -> list[bytes]:
        return self._run(self._buffer, final=True)

    def _run(self, buffer: bytes, *, final: bool) -> list[bytes]:
        scanned = self._scan(buffer, final, self.max_frame_bytes)
        self._buffer = b"" if final else scanned.rest
        self.skipped_bytes += scanned.skipped + (len(scanned.rest) if final else 0)
        self.oversize += scanned.oversize
        return scanned.frames


# -- JSON formats (native, tasmota, shelly): one document per line ----------------------------


def scan_lines(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    found = Scanned()
    start = 0
    while start < len(buffer):
        end = buffer.find(b"\n", start)
        if end < 0:
            if not final:
                tail = buffer[start:]
                if len(tail) > max_frame + 1:
                    # An endless line: keep just enough of its head to know it is too long when
                    # its newline comes, so memory stays bounded and the outcome is the same.
                    found.skipped += len(tail) - (max_frame + 1)
                    tail = tail[: max_frame + 1]
                found.rest = tail
                return found
            end = len(buffer)
        line = buffer[start:end].strip()
        if len(line) > max_frame:
            found.oversize += 1
            found.skipped += end - start
        elif line:
            found.frames.append(line)
        else:
            found.skipped += end - start
        start = end + 1
    return found


# -- DSMR P1 and IEC 62056-21 mode D: '/' header ... '!' CRC CRLF -------------------------------


def _end_of_bang_frame(buffer: bytes, start: int, final: bool) -> int | None:
    """End (exclusive) of a '/'...'!' frame that starts at ``start``, or None while incomplete.

    The '!' opens the last line (after it: up to 4 hex CRC digits, or nothing on DSMR 2.2/3.0);
    the frame ends with that line's LF. A meter that never sends the final CRLF (seen on a
    Landis+Gyr E360) ends its frame when the next telegram's '/' arrives, or at end of stream.
    """
    bang = buffer.find(b"\n!", start)
    if bang < 0:
        return None
    newline = buffer.find(b"\n", bang + 2)
    slash = buffer.find(b"/", bang + 2)
    ends = [i for i in (newline + 1 if newline >= 0 else -1, slash) if i >= 0]
    if ends:
        return min(ends)
    return len(buffer) if final else None


def _end_after_etx(buffer: bytes, position: int) -> int | None:
    """End of a block whose ETX is at or after ``position``: ETX, then one BCC byte."""
    etx = buffer.find(b"\x03", position)
    return etx + 2 if etx >= 0 and etx + 2 <= len(buffer) else None


def _scan_from_starts(
    buffer: bytes,
    final: bool,
    max_frame: int,
    starts: bytes,
    end_of: Callable[[bytes, int, bool], int | None],
) -> Scanned:
    """Frames that begin at any byte of ``starts`` and end where ``end_of`` says.

    A start whose end is not in sight within ``max_frame`` bytes (or at end of stream) was noise
    or the tail of a frame that began before we listened: skip that byte and look again. The
    same happens to a complete frame longer than ``max_frame``, so chunking changes nothing.
    """
    found = Scanned()
    position = 0
    while True:
        candidates = [i for i in (buffer.find(bytes([b]), position) for b in starts) if i >= 0]
        if not candidates:
            found.skipped += len(buffer) - position
            return found
        start = min(candidates)
        found.skipped += start - position
        end = end_of(buffer, start, final)
        too_long = (end is None and len(buffer) - start > max_frame) or (
            end is not None and end - start > max_frame
        )
        if too_long:
            found.oversize += 1
        if too_long or (end is None and final):
            found.skipped += 1
            position = start + 1
            continue
        if end is None:
            found.rest = buffer[start:]
            return found
        found.frames.append(buffer[start:end])
        position = end


def scan_dsmr(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    return _scan_from_starts(buffer, final, max_frame, b"/", _end_of_bang_frame)


def _end_of_iec_frame(buffer: bytes, start: int, final: bool) -> int | None:
    if buffer[start] == STX:
        return _end_after_etx(buffer, start + 1)
    id_end = buffer.find(b"\n", start)
    if id_end < 0 or id_end + 1 >= len(buffer):
        return None  # the byte after the identification line tells mode C from mode D
    if buffer[id_end + 1] == STX:
        return _end_after_etx(buffer, id_end + 2)
    return _end_of_bang_frame(buffer, start, final)


def scan_iec62056_21(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    """Mode D push ('/'...'!' like DSMR) and mode C readout ('/' id CRLF STX ... ETX BCC).

    A mode C readout is recognised by the STX right after the identification line; it ends with
    the byte after ETX (the BCC, which may be any byte, even '/' or LF). A bare STX..ETX BCC block
    (the identification line read separately) is a frame too.
    """
    return _scan_from_starts(buffer, final, max_frame, b"/\x02", _end_of_iec_frame)


# -- DLMS/COSEM push over HDLC (HAN): 7E, frame format with length, ..., FCS, 7E ----------------


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 (HDLC FCS): reflected poly 0x8408, init 0xFFFF, final XOR 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def scan_hdlc(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    """HDLC frames of type 3 (format field 0xA...): the 11-bit length counts every byte between
    the flags. HAN meters do not byte-stuff, so a 0x7E may sit inside the information field: the
    length, not the next flag, says where the frame ends. A candidate whose closing flag or FCS
    does not match is noise: skip one byte and look again."""
    found = Scanned()
    position = 0
    closing_flag = -1  # index of the last frame's closing flag: part of that frame, not skipped
    while True:
        start = buffer.find(b"\x7e", position)
        if start < 0:
            found.skipped += len(buffer) - position
            return found
        found.skipped += start - position
        if start + 3 > len(buffer):
            found.rest = buffer[start:]
            return found
        format_hi = buffer[start + 1]
        length = ((format_hi & 0x07) << 8) | buffer[start + 2]
        end = start + length + 2  # exclusive, closing flag included
        if format_hi & 0xF0 == 0xA0 and length >= 4 and end > len(buffer):
            found.rest = buffer[start:]
            return found
        body = buffer[start + 1 : end - 1]
        valid = (
            format_hi & 0xF0 == 0xA0
            and length >= 4
            and buffer[end - 1] == FLAG
            and crc16_x25(body[:-2]) == int.from_bytes(body[-2:], "little")
        )
        if not valid:
            # An inter-frame flag, or noise that looked like a frame start.
            found.skipped += start != closing_flag
            position = start + 1
            continue
        if end - start > max_frame:
            found.oversize += 1
        else:
            found.frames.append(buffer[start:end])
        # Frames may share a flag (7E ... 7E ... 7E): the closing flag can open the next frame.
        position = closing_flag = end - 1


SCANNERS: dict[str, Scan] = {
    "native": scan_lines,
    "tasmota": scan_lines,
    "shelly": scan_lines,
    "dsmr": scan_dsmr,
    "iec62056-21": scan_iec62056_21,
    "dlms": scan_hdlc,
}


def framer_for(format_name: str, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> Framer:
    scan = SCANNERS.get(format_name)
    if scan is None:
        raise ValueError(f"no framing for format {format_name!r}; known: {sorted(SCANNERS)}")
    return Framer(scan, max_frame_bytes)
