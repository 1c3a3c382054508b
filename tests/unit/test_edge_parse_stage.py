"""The gateway's parse stage: a bad frame is counted by reason and never stops anything."""

from __future__ import annotations

from pathlib import Path

from meterhub.edge.gateway import Gateway, GatewayOptions


def gateway(tmp_path: Path) -> Gateway:
    options = GatewayOptions(
        format_name="native",
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
