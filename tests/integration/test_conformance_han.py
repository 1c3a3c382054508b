"""HAN DLMS/COSEM conformance: every frame in ../shared/conformance/han against its expected values.

Only values whose provenance is the source project (its README, value table or golden decode) are
asserted; values the corpus collector decoded alone are not. The corpus is read where it lies.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from conftest import service_missing
from meterhub.protocols import base, hdlc
from meterhub.readings.model import Reading

HAN = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "han"
CONTEXT_METER_ID = "HAN-CONTEXT"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def samples() -> list[Path]:
    return sorted(HAN.glob("*.expected.json")) if HAN.is_dir() else []


@pytest.fixture(autouse=True)
def corpus() -> None:
    if not samples():
        service_missing(f"the conformance corpus at {HAN}")


def parse(raw: bytes, meter_id: str | None = CONTEXT_METER_ID) -> list[Reading]:
    # UTC: the corpus states the meter's wall clock, and these frames carry no deviation
    # (or deviation 0), so wall clock and UTC coincide.
    context = base.ParseContext(meter_id=meter_id, now=NOW, timezone=ZoneInfo("UTC"))
    return base.parse("dlms", raw, context)


def from_source(provenance: dict[str, str], key: str) -> bool:
    note = provenance.get(key)
    if note is None:
        patterns = [p for p in provenance if p not in ("*", "others") and fnmatch.fnmatch(key, p)]
        note = (
            provenance[patterns[0]] if patterns else provenance.get("*", provenance.get("others"))
        )
    return note is not None and note.startswith("source")


def obis_value(reading: Reading, cde: str) -> Any:
    """An extra value by C.D.E, whatever channel B the make uses (Kamstrup 1-1:, others 1-0:)."""
    for code, entry in reading.extra.get("obis", {}).items():
        if code.split(":")[1] == cde:
            return entry["value"]
    return None


EXTRA_CODES = {
    "voltage_l2_v": "52.7.0", "voltage_l3_v": "72.7.0",
    "current_l2_a": "51.7.0", "current_l3_a": "71.7.0",
    "reactive_power_import_var": "3.7.0", "reactive_power_export_var": "4.7.0",
    "reactive_energy_import_kvarh": "3.8.0", "reactive_energy_export_kvarh": "4.8.0",
    "active_power_import_l1_w": "21.7.0", "active_power_import_l2_w": "41.7.0",
    "active_power_import_l3_w": "61.7.0",
}  # fmt: skip


def actual(reading: Reading, key: str, expected: dict[str, Any], raw: bytes) -> Any:
    if key == "meter_id":
        # The context's id overrides the frame's, which the reading keeps beside it.
        assert reading.meter_id == CONTEXT_METER_ID
        return reading.extra.get("frame_meter_id")
    if key in ("active_power_import_w", "active_power_export_w"):
        assert reading.power_w is not None
        if key == "active_power_export_w":
            return expected["active_power_import_w"] - reading.power_w
        # power_w is net import: add back the export the source states (0 when the list has none).
        return reading.power_w + (expected.get("active_power_export_w") or 0)
    if key == "timestamp":
        return reading.ts.replace(tzinfo=None).isoformat() if reading.ts != NOW else None
    if key in ("voltage_l1_v", "current_l1_a"):
        return reading.voltage_v if key == "voltage_l1_v" else reading.current_a
    if key == "active_energy_import_kwh":
        return reading.import_kwh
    if key == "active_energy_export_kwh":
        return reading.export_kwh
    if key == "meter_type":
        return obis_value(reading, "96.1.7") or obis_value(reading, "96.1.1")
    if key == "list_version":
        return reading.extra.get("list_version")
    if key == "hdlc_information_field_hex":
        return hdlc.split_frames(bytes.fromhex(raw.decode()))[0].information.hex().upper()
    if key in ("fcs_valid", "frame_count"):
        return True if key == "fcs_valid" else len(hdlc.split_frames(bytes.fromhex(raw.decode())))
    return obis_value(reading, EXTRA_CODES[key])


@pytest.mark.parametrize("expected_file", samples(), ids=lambda p: p.name.split(".")[0])
def test_han_sample(expected_file: Path) -> None:
    document = json.loads(expected_file.read_text())
    raw = (HAN / document["file"]).read_bytes()
    (reading,) = parse(raw)
    checked = []
    for key, value in document["expected"].items():
        if not from_source(document["provenance"], key):
            continue
        got = actual(reading, key, document["expected"], raw)
        if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
            # Energy: the golden float32 109552.248 is 109552.25 in the frame (README note).
            assert got == pytest.approx(value, abs=0.011), key
        else:
            assert got == value, key
        checked.append(key)
    assert checked, "no value of this sample has a source provenance"
    if "meter_id" in checked and document["expected"]["meter_id"] is not None:
        # No meter id given: the reading is the frame's own meter.
        (own,) = parse(raw, meter_id=None)
        assert own.meter_id == document["expected"]["meter_id"]
        assert "frame_meter_id" not in own.extra


def test_binary_and_hex_text_agree() -> None:
    for expected_file in samples():
        text = (HAN / json.loads(expected_file.read_text())["file"]).read_bytes()
        assert parse(bytes.fromhex(text.decode())) == parse(text)


def test_all_frames_in_one_stream() -> None:
    paths = sorted(HAN.glob("*.hex"))
    stream = b"".join(bytes.fromhex(path.read_text()) for path in paths)
    assert parse(stream) == [reading for path in paths for reading in parse(path.read_bytes())]


def test_cli_parses_a_corpus_frame() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "meterhub.cli", "parse", "--format", "dlms",
            "--meter-id", CONTEXT_METER_ID, "--timezone", "Europe/Oslo",
            str(HAN / "kaifa_ma304h3e_list1_roarfred.hex"),
        ],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    (line,) = result.stdout.splitlines()
    document = orjson.loads(line)
    # roarfred/AmsToMqttBridge Samples/Kaifa/readme.md: 2017-09-12 23:18:42, 1320 W; Oslo is
    # +02:00 in September, and list 1 names no meter.
    assert document == {
        "meter_id": CONTEXT_METER_ID,
        "ts": "2017-09-12T21:18:42+00:00",
        "power_w": 1320.0,
    }


def test_cli_refuses_a_corrupted_corpus_frame(tmp_path: Path) -> None:
    raw = bytearray(bytes.fromhex((HAN / "kamstrup_list2_gh862.hex").read_text()))
    raw[40] ^= 0x01
    corrupted = tmp_path / "corrupted.bin"
    corrupted.write_bytes(bytes(raw))
    result = subprocess.run(
        [sys.executable, "-m", "meterhub.cli", "parse", "--format", "dlms", str(corrupted)],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(b"bad_crc")


def test_corpus_apdu_enciphered_with_a_test_key_decodes_the_same() -> None:
    # No encrypted sample in the corpus: encipher a real plaintext APDU with AES-GCM
    # (security control 0x30, 12-byte tag) and check the reading does not change.
    raw = bytes.fromhex((HAN / "kamstrup_list3_hourly_em001.hex").read_text())
    frame = hdlc.split_frames(raw)[0]
    apdu = frame.information[3:]  # after the LLC header E6 E7 00
    ek, ak = bytes(range(16)), bytes(range(16, 32))
    system_title, counter = b"KAM\x00\x00\x00\x00\x01", (1234).to_bytes(4, "big")
    sealed = AESGCM(ek).encrypt(system_title + counter, apdu, b"\x30" + ak)
    content = b"\x30" + counter + sealed[:-4]  # tag truncated to 12 bytes
    ciphered = b"\xdb\x08" + system_title + b"\x82" + len(content).to_bytes(2, "big") + content
    frames = hdlc.encode_frame(
        hdlc.HdlcFrame(frame.destination, frame.source, frame.control, b"\xe6\xe7\x00" + ciphered)
    )
    context = base.ParseContext(
        meter_id=CONTEXT_METER_ID,
        now=NOW,
        timezone=ZoneInfo("UTC"),
        encryption_key=ek,
        authentication_key=ak,
    )
    assert base.parse("dlms", frames, context) == parse(raw)
    with pytest.raises(base.ParseError) as error:
        base.parse("dlms", frames, base.ParseContext(encryption_key=ak, authentication_key=ak))
    assert error.value.code == "wrong_key"
