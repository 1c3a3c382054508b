"""A consumer whose meter was replaced inside a billing period: recorded, then billed once."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from billing_support import NOW, add_consumer, add_intervals, add_tariff
from pypdf import PdfReader
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner

from meterhub.billing import service as billing
from meterhub.billing.documents.render import render_html, render_pdf
from meterhub.billing.jobs.runs import run_bills
from meterhub.config import Settings
from meterhub.devices import registry
from meterhub.store import schema

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)
FEB = datetime(2026, 2, 1, tzinfo=KTM).astimezone(UTC)
MAR = datetime(2026, 3, 1, tzinfo=KTM).astimezone(UTC)
SLOT = datetime(2026, 2, 14, 10, 0, tzinfo=KTM).astimezone(UTC)
SWAP = SLOT + timedelta(minutes=7)  # inside the 10:00 quarter hour
QUARTER = timedelta(minutes=15)


def bill_of(engine: Engine, consumer_id: str) -> billing.StoredBill:
    with engine.connect() as conn:
        bills = billing.bills_of_period(conn, date(2026, 2, 1))
        (number,) = [n for c, n in bills if c == consumer_id]
        stored = billing.load_bill(conn, number)
    assert stored is not None
    return stored


def swapped_consumer(engine: Engine, tariff_id: str) -> None:
    """Consumer b: meter m-b until 10:07 on 14 February, then m-b2; 0.2 kWh a quarter hour
    throughout, the swap's quarter hour shared 0.1 + 0.1; each meter also reports outside its
    span (bench tests), 5 kWh a quarter hour, which must not count."""
    old = add_consumer(engine, "b", tariff_id=tariff_id)
    add_intervals(engine, old, FEB, SLOT, 0.2, estimated=[FEB + QUARTER])
    add_intervals(engine, old, SLOT, SLOT + QUARTER, 0.1)
    add_intervals(engine, old, SLOT + QUARTER, SLOT + 8 * QUARTER, 5.0)
    registry.replace_meter(engine, old, "m-b2", SWAP, final_reading_kwh=4321.5, now=NOW)
    add_intervals(engine, "m-b2", SLOT - 4 * QUARTER, SLOT, 5.0)
    add_intervals(engine, "m-b2", SLOT, SLOT + QUARTER, 0.1)
    add_intervals(engine, "m-b2", SLOT + QUARTER, MAR, 0.2)


def test_a_swap_mid_month_is_billed_once_with_the_slabs_of_the_combined_energy(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    reference = add_consumer(any_engine, "a", tariff_id=tariff_id)
    add_intervals(any_engine, reference, FEB, MAR, 0.2, estimated=[FEB + QUARTER])
    swapped_consumer(any_engine, tariff_id)
    result = run_bills(any_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1))
    assert result.errors == [] and len(result.issued) == 2
    one_meter, two_meters = bill_of(any_engine, "a"), bill_of(any_engine, "b")
    # 28 days x 96 quarter hours x 0.2 kWh = 537.6 kWh, in the slabs a single meter's would be.
    assert two_meters.bill["import_kwh"] == one_meter.bill["import_kwh"]
    assert float(two_meters.bill["import_kwh"]) == pytest.approx(537.6)
    assert two_meters.bill["total"] == one_meter.bill["total"]
    assert [(x["description"], x["amount"]) for x in two_meters.lines] == [
        (x["description"], x["amount"]) for x in one_meter.lines
    ]
    assert two_meters.bill["meter_id"] == "m-b2"
    assert two_meters.bill["estimated_intervals"] == 1
    again = run_bills(any_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1))
    assert again.issued == [] and again.errors == []


def test_the_bill_names_both_meters_with_their_spans(any_engine: Engine) -> None:
    swapped_consumer(any_engine, add_tariff(any_engine, "nea-domestic"))
    run_bills(any_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1))
    stored = bill_of(any_engine, "b")
    old, new = stored.bill["document"]["meters"]
    assert (old["id"], old["from"], old["to"]) == ("m-b", "2026-02-01 00:00", "2026-02-14 10:07")
    assert (new["id"], new["from"], new["to"]) == ("m-b2", "2026-02-14 10:07", "2026-03-01 00:00")
    assert old["final_reading_kwh"] == 4321.5 and old["estimated_intervals"] == 1
    assert old["import_kwh"] == "257.700"  # 1288 quarter hours x 0.2, then 0.1
    expected = [
        "Meter m-b from 2026-02-01 00:00 to 2026-02-14 10:07: 257.700 kWh, "
        "1 of 1289 values estimated, final reading 4321.5 kWh",
        "Meter m-b2 from 2026-02-14 10:07 to 2026-03-01 00:00: 279.900 kWh",
    ]
    page = render_html(stored)
    pdf = " ".join(
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(stored))).pages).split()
    )
    for line in expected:
        assert line in page and line in pdf


def test_two_meters_at_once_still_get_the_several_meters_error(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter_id = add_consumer(any_engine, "c", tariff_id=tariff_id)
    with any_engine.begin() as conn:
        conn.execute(insert(schema.meters).values(id="m-c2", consumer_id="c", created_at=NOW))
    add_intervals(any_engine, meter_id, FEB, MAR, 0.2)
    add_intervals(any_engine, "m-c2", FEB, MAR, 0.2)
    result = run_bills(any_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1))
    assert result.issued == []
    assert [(e.consumer_id, e.code) for e in result.errors] == [("c", "several_meters")]


def test_a_history_of_two_meters_at_once_is_refused_not_summed(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter_id = add_consumer(any_engine, "d", tariff_id=tariff_id)
    add_intervals(any_engine, meter_id, FEB, MAR, 0.2)
    with any_engine.begin() as conn:
        conn.execute(insert(schema.meters).values(id="m-d0", created_at=NOW, status="replaced"))
        conn.execute(
            insert(schema.meter_installations),
            [
                {"consumer_id": "d", "meter_id": "m-d0", "installed_at": None, "created_at": NOW},
                {"consumer_id": "d", "meter_id": meter_id, "installed_at": SWAP, "created_at": NOW},
            ],
        )
    result = run_bills(any_engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1))
    assert result.issued == []
    assert [(e.consumer_id, e.code) for e in result.errors] == [("d", "several_meters")]


def test_the_period_after_the_swap_is_the_new_meters_alone(any_engine: Engine) -> None:
    swapped_consumer(any_engine, add_tariff(any_engine, "nea-domestic"))
    add_intervals(any_engine, "m-b2", MAR, MAR + timedelta(days=31), 0.1)
    run_bills(any_engine, "2026-03", settings=SETTINGS, today=date(2026, 4, 1))
    with any_engine.connect() as conn:
        ((_, number),) = billing.bills_of_period(conn, date(2026, 3, 1))
        stored = billing.load_bill(conn, number)
    assert stored is not None and "meters" not in stored.bill["document"]
    assert float(stored.bill["import_kwh"]) == pytest.approx(31 * 96 * 0.1)


def test_meter_replace_command_records_the_swap(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from meterhub.cli import app
    from meterhub.config import get_settings

    add_consumer(sqlite_engine, "e", sanctioned_kw=5.0)
    monkeypatch.setenv("METERHUB_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("METERHUB_TIMEZONE", "Asia/Kathmandu")
    get_settings.cache_clear()
    runner = CliRunner()
    args = [
        "meter",
        "replace",
        "m-e",
        "m-e2",
        "--at",
        "2026-02-14T10:07",
        "--final-reading",
        "88.5",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "MQTT password" in done.output  # m-e2 was not registered: it is now
    with sqlite_engine.connect() as conn:
        m = schema.meters
        rows = {r.id: r for r in conn.execute(select(m).where(m.c.id.in_(["m-e", "m-e2"])))}
        history = conn.execute(
            select(schema.meter_installations).order_by(schema.meter_installations.c.id)
        ).all()
    assert (rows["m-e"].status, rows["m-e"].replaced_by) == ("replaced", "m-e2")
    assert (rows["m-e2"].consumer_id, rows["m-e2"].sanctioned_load_kw) == ("e", 5.0)
    at = datetime(2026, 2, 14, 10, 7, tzinfo=KTM)
    assert [(h.meter_id, h.installed_at, h.removed_at, h.final_reading_kwh) for h in history] == [
        ("m-e", None, at, 88.5),
        ("m-e2", at, None, None),
    ]
    again = runner.invoke(app, ["meter", "replace", "m-e", "m-e3", "--at", "2026-02-15T00:00"])
    assert again.exit_code == 1 and "not an active consumer meter" in again.output
    future = runner.invoke(app, ["meter", "replace", "m-e2", "m-e3", "--at", "2999-01-01T00:00"])
    assert future.exit_code == 1 and "in the future" in future.output
    get_settings.cache_clear()


def test_a_meter_serving_another_consumer_cannot_be_put_in(sqlite_engine: Engine) -> None:
    add_consumer(sqlite_engine, "f")
    add_consumer(sqlite_engine, "g")
    with pytest.raises(registry.RegistryError, match="serves consumer 'g'"):
        registry.replace_meter(sqlite_engine, "m-f", "m-g", SWAP, now=NOW)
