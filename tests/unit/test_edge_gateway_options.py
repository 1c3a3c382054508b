"""What the gateway forwards, as whom it connects, which zone it gives the parser, and what it
tells the operator when the spool drops readings or readings are left at exit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from conftest import service_missing
from meterhub.edge.gateway import Gateway, GatewayOptions, reading_payload
from meterhub.readings.model import CONTRACT_FIELDS, Reading

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


async def _nothing() -> AsyncIterator[bytes]:
    yield b""


def gateway(tmp_path: Path, source: AsyncIterator[bytes] | None = None, **options: Any) -> Gateway:
    settings: dict[str, Any] = {
        "format_name": "dsmr",
        "meter_id": "E0044007382246019",
        # Port 1: nothing listens, the uplink never connects.
        "mqtt_url": "mqtt://E0044007382246019:secret@127.0.0.1:1",
        "spool_path": tmp_path / "spool.db",
        "spool_synchronous": "OFF",
    }
    settings.update(options)
    return Gateway(GatewayOptions(**settings), source or _nothing())


def dsmr5(tmp_path: Path, **options: Any) -> tuple[Gateway, Reading]:
    sample = CONFORMANCE / "dsmr" / "v5.txt"
    if not sample.exists():
        service_missing(f"the shared conformance corpus at {CONFORMANCE}")
    g = gateway(tmp_path, **options)
    [reading] = g._parse_frame(sample.read_bytes())
    return g, reading


def test_forwarded_readings_carry_the_contracts_fields_only(tmp_path: Path) -> None:
    g, reading = dsmr5(tmp_path)
    g._spool([reading])
    [message] = g.spool.peek(1)
    document = orjson.loads(message.payload)
    assert set(document) <= {"ts", *CONTRACT_FIELDS}
    assert document["import_kwh"] == 6.825
    assert document["import_kwh_by_tariff"] == {"1": 4.426, "2": 2.399}
    assert "obis" in reading.extra  # the parser kept it; the payload leaves it out
    assert len(message.payload) < 200  # the telegram is 890 bytes
    g.spool.close()


def test_forward_extra_adds_the_parsers_extra_fields(tmp_path: Path) -> None:
    g, reading = dsmr5(tmp_path, forward_extra=True)
    g._spool([reading])
    [message] = g.spool.peek(1)
    document = orjson.loads(message.payload)
    assert document["obis"]["1-0:32.7.0"] == {"value": 230.0, "unit": "V"}
    assert document["mbus"][0]["kind"] == "gas"
    g.spool.close()


def test_summaries_keep_their_own_fields(tmp_path: Path) -> None:
    g = gateway(tmp_path, format_name="native", aggregate=timedelta(minutes=15))
    g._spool(g.aggregator.add(Reading("M1", T0, import_kwh=1.0, power_w=5.0, extra={"x": 1})))
    g._spool(g.aggregator.flush())
    [message] = g.spool.peek(1)
    document = orjson.loads(message.payload)
    assert document["samples"] == 1 and document["partial"] is True
    assert "x" not in document  # a summary is built from the registers, not from extras
    g.spool.close()


def test_a_contract_field_is_never_replaced_by_an_extra_one() -> None:
    reading = Reading("M1", T0, import_kwh=1.0, extra={"import_kwh": 99.0, "ts": "x"})
    document = orjson.loads(reading_payload(reading, extra=True))
    assert document["import_kwh"] == 1.0 and document["ts"] == T0.isoformat()


def test_client_id_is_the_credentials_username_by_default(tmp_path: Path) -> None:
    g = gateway(tmp_path, meter_id="OTHER")
    assert g.client_id == "E0044007382246019"
    g.spool.close()
    g = gateway(tmp_path, client_id="chosen")
    assert g.client_id == "chosen"
    g.spool.close()
    g = gateway(tmp_path, mqtt_url="mqtt://127.0.0.1:1")  # no username: the meter id
    assert g.client_id == "E0044007382246019"
    g.spool.close()


def test_without_timezone_the_parser_keeps_its_own_default(tmp_path: Path) -> None:
    g = gateway(tmp_path)
    assert g.context.timezone is None  # the format's own: Europe/Amsterdam for DSMR
    g.spool.close()
    kathmandu = ZoneInfo("Asia/Kathmandu")
    g = gateway(tmp_path, timezone=kathmandu)
    assert g.context.timezone == kathmandu
    g.spool.close()


def test_a_full_spool_is_told_once_not_per_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="meterhub.edge")
    g = gateway(tmp_path, format_name="native", spool_max_messages=2, status_interval_s=3600)
    g._spool([Reading("M1", T0 + timedelta(seconds=i), import_kwh=i) for i in range(50)])
    messages = [r.getMessage() for r in caplog.records]
    [full] = [m for m in messages if "spool_full" in m]
    assert "max_messages=2" in full and "spooled=2" in full
    assert not [m for m in messages if "spool_still_dropping" in m]
    assert g.spool.dropped == 48
    g.spool.close()


def test_readings_left_undelivered_at_exit_are_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="meterhub.edge")

    async def three_readings() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f'{{"ts": {1764000000 + i}, "import_kwh": {i}}}\n'.encode()

    g = gateway(tmp_path, three_readings(), format_name="native", drain_timeout_s=0.2)
    result = asyncio.run(g.run(asyncio.Event()))
    assert result["spooled"] == 3
    [left] = [r for r in caplog.records if "exit_undelivered" in r.getMessage()]
    assert left.levelno == logging.WARNING
    assert "spooled=3" in left.getMessage()
    assert str(tmp_path / "spool.db") in left.getMessage()
    assert "next start" in left.getMessage()
