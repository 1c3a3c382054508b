"""Split a meter's byte stream into frames, one frame per ``parse`` call (pure, incremental).

Each framer is fed chunks as they come off the wire (``feed``) and returns every frame that is
complete so far, keeping the partial rest; ``flush`` at end of stream returns a last frame whose
end is only known because the stream ended. Where a frame ends depends only on its bytes, never on
how the stream was chunked, so a serial port that returns 1 byte or 4 KiB at a time yields the same
frames. Bytes between frames (line noise, a gateway's padding) are skipped and counted in
``skipped_bytes``; a frame longer than ``max_frame_bytes`` is dropped and counted in ``oversize``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from meterhub.protocols.crc import crc16_x25

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


# -- DSMR P1 and IEC 62056-21: '/' identification line ... -----------------------------------
#
# A telegram that is cut short (a reset, a lost byte, a bridge that reconnects) must cost only
# itself. So a frame never runs across the start of another: every '/' that opens an
# identification line ends whatever frame came before it (a restart point), however that frame
# would otherwise have ended. The CRC stays the parser's job; the cut-short piece goes to the
# parser too, which refuses it with its reason ("no '!' end of telegram (truncated?)").

# An identification line: '/', up to 128 bytes, LF, none of them '(' ')' '/' '!'. A '/' inside a
# data line always sits inside a parenthesised value (a ')' follows it on its line), so only a
# '/' that opens a telegram matches; neither does a '/' in line noise unless a line of plausible
# header text follows it. "/\r\n" is no header.
_IDENT_LINE = re.compile(rb"/[^()/!\r\n][^()/!\n]{0,127}\n")
_IDENT_SO_FAR = re.compile(rb"/(?:[^()/!\r\n][^()/!\n]{0,127})?\Z")
_WAIT = -1  # ``_first_restart``: a '/' that cannot be told yet, more bytes are needed
_NOISE = -2  # an ``end_of`` function: this byte does not start a frame


def _opens_telegram(buffer: bytes, position: int, final: bool) -> bool | None:
    """Whether the '/' at ``position`` opens an identification line; None until its line ends."""
    if _IDENT_LINE.match(buffer, position):
        return True
    if not final and _IDENT_SO_FAR.match(buffer, position):
        return None
    return False


def _first_restart(
    buffer: bytes, low: int, high: int, final: bool, stx_from: int | None = None
) -> int | None:
    """The first restart point in [low, high): a '/' that opens an identification line, or
    (with ``stx_from``) an STX at or after ``stx_from``, which opens a mode C data block.
    ``_WAIT`` when a '/' cannot be told yet; None when there is none."""
    stx = -1
    if stx_from is not None:
        stx = buffer.find(b"\x02", max(low, stx_from), high)
        if stx >= 0:
            high = stx
    slash = buffer.find(b"/", low, high)
    while slash >= 0:
        opens = _opens_telegram(buffer, slash, final)
        if opens:
            return slash
        if opens is None:
            return _WAIT
        slash = buffer.find(b"/", slash + 1, high)
    return stx if stx >= 0 else None


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


def _cut(natural: int | None, restart: int | None) -> int | None:
    """A frame ends at its own end or at the first restart point before it, whichever is first."""
    if restart == _WAIT:
        return None
    return restart if restart is not None else natural


def _end_of_dsmr_frame(buffer: bytes, start: int, final: bool) -> int | None:
    opens = _opens_telegram(buffer, start, final)
    if not opens:
        return None if opens is None else _NOISE
    natural = _end_of_bang_frame(buffer, start, final)
    high = len(buffer) if natural is None else natural
    return _cut(natural, _first_restart(buffer, start + 1, high, final))


def _block_end(buffer: bytes, data_start: int) -> tuple[int | None, int]:
    """A mode C data block that starts at ``data_start`` (its STX): (end, where restarts stop).

    The block ends with ETX and one BCC byte, which may be any byte, so it is taken as the BCC
    even when it is '/' or STX, unless it is not the right BCC: then the readout was cut short
    after its ETX and that byte may open the next frame. (Cut after ETX and followed by a byte
    that happens to be its BCC, a readout cannot be told from a complete one.)
    """
    etx = buffer.find(b"\x03", data_start + 1)
    if etx < 0:
        return None, len(buffer)
    if etx + 1 >= len(buffer):
        return None, etx
    after = buffer[etx + 1]
    if after in (ord("/"), STX) and after != _xor(buffer[data_start + 1 : etx + 1]):
        return etx + 1, etx
    return etx + 2, etx


def _xor(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _end_of_iec_frame(buffer: bytes, start: int, final: bool) -> int | None:
    if buffer[start] == STX:
        natural, high = _block_end(buffer, start)
        return _cut(natural, _first_restart(buffer, start + 1, high, final, stx_from=start + 1))
    opens = _opens_telegram(buffer, start, final)
    if not opens:
        return None if opens is None else _NOISE
    id_end = buffer.find(b"\n", start)
    if id_end + 1 >= len(buffer):
        return None  # the byte after the identification line tells mode C from mode D
    if buffer[id_end + 1] == STX:
        natural, high = _block_end(buffer, id_end + 1)
        stx_from = id_end + 2
    else:
        natural = _end_of_bang_frame(buffer, start, final)
        high = len(buffer) if natural is None else natural
        stx_from = id_end + 1  # an STX may sit in the identification line (Iskra IE)
    return _cut(natural, _first_restart(buffer, start + 1, high, final, stx_from))


def _scan_from_starts(
    buffer: bytes,
    final: bool,
    max_frame: int,
    starts: bytes,
    end_of: Callable[[bytes, int, bool], int | None],
) -> Scanned:
    """Frames that begin at any byte of ``starts`` and end where ``end_of`` says.

    A start that ``end_of`` calls noise is skipped. A start whose end is not in sight within
    ``max_frame`` bytes (or at end of stream) was noise or the tail of a frame that began before
    we listened: skip that byte and look again. The same happens to a complete frame longer than
    ``max_frame``, so chunking changes nothing.
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
        if end == _NOISE:
            found.skipped += 1
            position = start + 1
            continue
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
    return _scan_from_starts(buffer, final, max_frame, b"/", _end_of_dsmr_frame)


def scan_iec62056_21(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    """Mode D push ('/'...'!' like DSMR) and mode C readout ('/' id CRLF STX ... ETX BCC).

    A mode C readout is recognised by the STX right after the identification line; it ends with
    the byte after ETX (the BCC). A bare STX..ETX BCC block (the identification line read
    separately) is a frame too. An STX inside a data block, like a '/' that opens an
    identification line anywhere, starts a new frame.
    """
    return _scan_from_starts(buffer, final, max_frame, b"/\x02", _end_of_iec_frame)


# -- DLMS/COSEM push over HDLC (HAN): 7E, frame format with length, ..., FCS, 7E ----------------


def _header_checked(buffer: bytes, start: int, length: int) -> bool | None:
    """Whether a candidate frame's header has a matching check sequence; None until its bytes are
    in. The HCS follows format (2 bytes), two addresses of 1 to 4 bytes each and control (1), so
    it sits at one of 7 places; a frame without information field has its FCS there, which is
    the same CRC. Checking it early lets noise that looks like a frame start (7E A?, and a
    length up to 2047 bytes) be skipped at once instead of holding back the frames behind it
    until that many bytes have arrived."""
    for header in range(5, 12):  # format + addresses + control
        if header + 2 > length:
            break
        check = start + 1 + header
        if check + 2 > len(buffer):
            return None
        if crc16_x25(buffer[start + 1 : check]) == int.from_bytes(
            buffer[check : check + 2], "little"
        ):
            return True
    return length < 7  # too short for a header: the FCS check alone decides


def scan_hdlc(buffer: bytes, final: bool, max_frame: int) -> Scanned:
    """HDLC frames of type 3 (format field 0xA...): the 11-bit length counts every byte between
    the flags. HAN meters do not byte-stuff, so a 0x7E may sit inside the information field: the
    length, not the next flag, says where the frame ends. A candidate whose header check, closing
    flag or FCS does not match is noise or a frame cut short: skip one byte and look again, so the
    next good frame is found whatever came before it, also at the end of the stream."""
    found = Scanned()
    position = 0
    closing_flag = -1  # index of the last frame's closing flag: part of that frame, not skipped
    while True:
        start = buffer.find(b"\x7e", position)
        if start < 0:
            found.skipped += len(buffer) - position
            return found
        found.skipped += start - position
        if start + 3 > len(buffer) and not final:
            found.rest = buffer[start:]
            return found
        format_hi = buffer[start + 1] if start + 1 < len(buffer) else 0
        length = ((format_hi & 0x07) << 8) | (buffer[start + 2] if start + 2 < len(buffer) else 0)
        end = start + length + 2  # exclusive, closing flag included
        plausible = format_hi & 0xF0 == 0xA0 and length >= 4
        header = _header_checked(buffer, start, length) if plausible else False
        if plausible and header is not False and end > len(buffer) and not final:
            found.rest = buffer[start:]
            return found
        valid = (
            plausible
            and header is True
            and end <= len(buffer)
            and buffer[end - 1] == FLAG
            and crc16_x25(buffer[start + 1 : end - 3])
            == int.from_bytes(buffer[end - 3 : end - 1], "little")
        )
        if not valid:
            # An inter-frame flag, noise that looked like a frame start, or a frame cut short.
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
