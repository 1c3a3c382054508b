"""The gateway's parse stage: a bad frame is counted by reason and never stops anything."""

from __future__ import annotations

from pathlib import Path

from meterhub.edge.gateway import Gateway, GatewayOptions
from meterhub.protocols.axdr import AxdrValue, encode_data
from meterhub.protocols.hdlc import HdlcFrame, encode_frame


def gateway(tmp_path: Path, format_name: str = "native") -> Gateway:
    options = GatewayOptions(
        format_name=format_name,
        meter_id="M1",
        mqtt_url="mqtt://M1:secret@127.0.0.1:1",  # never connected in this test
        spool_path=tmp_path / "spool.db",
    )

    async def source():
        yield b""

    return Gateway(options, source())


def test_bad_frames_are_counted_by_reason(tmp_path: Path) -> None:
    g = gateway(tmp_path)
    assert g._parse_frame(b"{not json") == []
    assert g._parse_frame(b'{"power_w": 1}') == []
    [good] = g._parse_frame(b'{"ts": "2026-11-24T10:00:00Z", "import_kwh": 1.5}')
    assert good.meter_id == "M1"
    assert dict(g.counters.parse_errors) == {"malformed_json": 1, "missing_field": 1}
    g.spool.close()


def test_readings_are_the_gateways_meter_with_the_frames_id_kept(tmp_path: Path) -> None:
    # A HAN list that names its own meter (Aidon 0-0:96.1.0): the parser takes --meter-id.
    body: list[AxdrValue] = [
        [bytes([0, 0, 96, 1, 0, 255]), "7359992890497997"],
        [bytes([1, 0, 1, 7, 0, 255]), 5],
    ]
    apdu = b"\x0f\x40\x00\x00\x00\x00" + encode_data(body)
    frame = encode_frame(HdlcFrame(b"\x41", b"\x08\x83", 0x13, b"\xe6\xe7\x00" + apdu))
    g = gateway(tmp_path, "dlms")
    [reading] = g._parse_frame(frame)
    assert reading.meter_id == "M1"
    assert reading.extra["frame_meter_id"] == "7359992890497997"
    assert reading.power_w == 5.0
    g.spool.close()
