"""Bytes per forwarded reading and the hours the edge gateway's default spool holds.

Run: ``.venv/bin/python benchmarks/edge_spool.py`` (about 30 s; ``--quick`` skips filling real
spool files).

For every DSMR telegram and IEC 62056-21 readout of the conformance corpus at
``../shared/conformance`` and every HAN frame there, the frame is parsed the way ``meterhub edge``
does and the payload it would publish is measured twice: the contract's fields only (the
default) and with ``--forward-extra`` (plus the parser's OBIS map, M-Bus channels, identifiers).
From the payload size and the default bounds (100,000 messages, 64 MiB of payload) follows the
number of messages the spool holds and the hours that covers at one reading per second (DSMR 5)
and per 10 s (DSMR 2.2 to 4, most HAN lists).

Then (without ``--quick``) a real spool file is filled with the DSMR 5 sample's payload, both
ways, past its bound, to count the messages it keeps and the file's size on disk (SQLite pages,
WAL checkpointed). The last line is one JSON object with the figures and the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _machine import machine_info
from meterhub.edge.gateway import reading_payload
from meterhub.edge.spool import Spool
from meterhub.protocols.base import ParseContext, ParseError, parser_for

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
MAX_MESSAGES = 100_000
MAX_BYTES = 64 * 1024 * 1024
TOPIC = "meters/E0044007382246019/readings"


@dataclass(frozen=True)
class Sample:
    name: str
    frame_bytes: int
    contract_bytes: int
    extra_bytes: int


def samples() -> list[Sample]:
    found: list[Sample] = []
    corpus = [("dsmr", "dsmr", "*.txt"), ("iec62056-21", "iec62056-21", "*.txt")]
    corpus.append(("dlms", "han", "*.hex"))
    for fmt, folder, pattern in corpus:
        parse = parser_for(fmt)
        for path in sorted((CONFORMANCE / folder).glob(pattern)):
            text = path.read_bytes()
            frame = bytes.fromhex(text.decode().strip()) if fmt == "dlms" else text
            try:
                readings = parse(frame, ParseContext(meter_id="E0044007382246019"))
            except ParseError:
                continue  # the corpus's deliberately broken samples
            for reading in readings:
                found.append(
                    Sample(
                        f"{folder}/{path.stem}",
                        len(frame),
                        len(reading_payload(reading, extra=False)),
                        len(reading_payload(reading, extra=True)),
                    )
                )
    return found


def held(payload_bytes: int) -> int:
    return min(MAX_MESSAGES, MAX_BYTES // payload_bytes)


def fill(payload: bytes, directory: Path) -> dict[str, Any]:
    """Append past the bound to a spool with the default bounds; what it keeps and its size."""
    path = directory / f"spool-{len(payload)}.db"
    spool = Spool(path, max_messages=MAX_MESSAGES, max_bytes=MAX_BYTES, synchronous="OFF")
    appended = 0
    while spool.dropped == 0 or appended < MAX_MESSAGES:
        spool.append(TOPIC, payload)
        appended += 1
    kept = len(spool)
    spool._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    spool.close()
    size = sum(p.stat().st_size for p in directory.glob(f"{path.name}*"))
    return {"payload_bytes": len(payload), "kept": kept, "file_bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="skip filling real spool files")
    args = parser.parse_args(argv)
    if not CONFORMANCE.exists():
        print(f"the conformance corpus is not at {CONFORMANCE}", file=sys.stderr)
        return 1
    rows = samples()
    print(f"{'sample':44} {'frame':>6} {'contract':>8} {'+extra':>7} {'h@1s':>6} {'h@1s+x':>7}")
    for row in rows:
        print(
            f"{row.name:44} {row.frame_bytes:6} {row.contract_bytes:8} {row.extra_bytes:7} "
            f"{held(row.contract_bytes) / 3600:6.1f} {held(row.extra_bytes) / 3600:7.1f}"
        )
    dsmr = [r for r in rows if r.name.startswith("dsmr/")]
    v5 = next(r for r in rows if r.name == "dsmr/v5")
    figures: dict[str, Any] = {
        "dsmr_contract_bytes_median": statistics.median(r.contract_bytes for r in dsmr),
        "dsmr_contract_bytes_max": max(r.contract_bytes for r in dsmr),
        "dsmr_extra_bytes_median": statistics.median(r.extra_bytes for r in dsmr),
        "dsmr_extra_bytes_max": max(r.extra_bytes for r in dsmr),
        "all_contract_bytes_max": max(r.contract_bytes for r in rows),
        "dsmr5_v5": {
            "frame_bytes": v5.frame_bytes,
            "contract_bytes": v5.contract_bytes,
            "extra_bytes": v5.extra_bytes,
            "hours_at_1s": round(held(v5.contract_bytes) / 3600, 1),
            "hours_at_1s_with_extra": round(held(v5.extra_bytes) / 3600, 1),
            "hours_at_10s": round(held(v5.contract_bytes) * 10 / 3600, 1),
        },
        "bounds": {"max_messages": MAX_MESSAGES, "max_bytes": MAX_BYTES},
    }
    print(
        f"\nDSMR contract payload: median {figures['dsmr_contract_bytes_median']} B, max "
        f"{figures['dsmr_contract_bytes_max']} B; with --forward-extra: median "
        f"{figures['dsmr_extra_bytes_median']} B, max {figures['dsmr_extra_bytes_max']} B"
    )
    if not args.quick:
        context = ParseContext(meter_id="E0044007382246019")
        [reading] = parser_for("dsmr")((CONFORMANCE / "dsmr" / "v5.txt").read_bytes(), context)
        with tempfile.TemporaryDirectory() as directory:
            filled = [
                fill(reading_payload(reading, extra=extra), Path(directory))
                for extra in (False, True)
            ]
        figures["filled"] = filled
        for entry in filled:
            print(
                f"spool filled with {entry['payload_bytes']} B payloads: keeps {entry['kept']} "
                f"messages ({entry['kept'] / 3600:.1f} h at 1/s), file {entry['file_bytes']:,} B"
            )
    figures["machine"] = machine_info()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
