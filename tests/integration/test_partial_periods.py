"""Bill runs for consumers served for part of a period: a move-in (the first meter installed
inside the period) and a conversion to prepaid inside it are billed for the days served, with
monthly charges and slabs scaled by those days over the cycle's; a consumer prepaid all period,
or supplied only after it, gets no postpaid bill and is not an error. A move-out issues the
final bill up to the move-out at once and closes the account."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from billing_support import EXAMPLES, NOW, add_consumer, add_intervals, add_tariff
from pypdf import PdfReader
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from meterhub.billing import service as billing
from meterhub.billing.core.tariff import load_tariff
from meterhub.billing.documents.render import render_html, render_pdf
from meterhub.billing.jobs.prepaid import open_account
from meterhub.billing.jobs.runs import FinalBillRefused, RunResult, issue_final_bill, run_bills
from meterhub.cli import app
from meterhub.config import Settings, get_settings
from meterhub.devices import registry
from meterhub.store import schema

pytestmark = pytest.mark.integration

KTM = ZoneInfo("Asia/Kathmandu")
SETTINGS = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)
FEB = datetime(2026, 2, 1, tzinfo=KTM).astimezone(UTC)
MID = datetime(2026, 2, 15, tzinfo=KTM).astimezone(UTC)  # 14 of February's 28 days before it
MAR = datetime(2026, 3, 1, tzinfo=KTM).astimezone(UTC)


def run(engine: Engine) -> RunResult:
    return run_bills(engine, "2026-02", settings=SETTINGS, today=date(2026, 3, 1), now=NOW)


def bill_of(engine: Engine, consumer_id: str) -> billing.StoredBill:
    with engine.connect() as conn:
        numbers = [
            n for c, n in billing.bills_of_period(conn, date(2026, 2, 1)) if c == consumer_id
        ]
        (number,) = numbers
        stored = billing.load_bill(conn, number)
    assert stored is not None
    return stored


def quantities(stored: billing.StoredBill) -> list[tuple[str, Decimal]]:
    return [(line["code"], Decimal(str(line["quantity"]))) for line in stored.lines]


def test_a_move_in_is_billed_from_the_day_the_supply_began(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_intervals(any_engine, add_consumer(any_engine, "a", tariff_id=tariff_id), FEB, MAR, 0.2)
    meter = add_consumer(any_engine, "n", tariff_id=tariff_id)
    with any_engine.begin() as conn:
        conn.execute(
            schema.meter_installations.insert().values(
                consumer_id="n", meter_id=meter, installed_at=MID, created_at=NOW
            )
        )
    add_intervals(any_engine, meter, FEB, MID, 9.0)  # bench testing before the move-in
    add_intervals(any_engine, meter, MID, MAR, 0.2)

    result = run(any_engine)
    assert result.errors == [] and len(result.issued) == 2
    whole, moved_in = bill_of(any_engine, "a"), bill_of(any_engine, "n")
    # 14 days x 96 x 0.2 = 268.8 kWh over 14/28 of the cycle: every slab and the monthly
    # minimum charge scaled by one half, so every line's quantity is half the whole month's.
    assert Decimal(moved_in.bill["import_kwh"]) == Decimal("268.8")
    assert quantities(moved_in) == [(code, q / 2) for code, q in quantities(whole)]
    service = moved_in.bill["document"]["service"]
    assert (service["from"], service["to"], service["days"]) == ("2026-02-15", "2026-02-28", 14)
    assert service["notes"] == ["supply from 2026-02-15 00:00"]


def test_the_bill_document_says_why_it_covers_fewer_days(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter = add_consumer(any_engine, "p", tariff_id=tariff_id)
    add_intervals(any_engine, meter, FEB, MAR, 0.2)
    with any_engine.begin() as conn:
        open_account(conn, "p", meter, tariff_id, MID)
    run(any_engine)
    stored = bill_of(any_engine, "p")
    note = "Billed for 14 of the 28 days of the cycle (prepaid from 2026-02-15 00:00)."
    pdf = PdfReader(io.BytesIO(render_pdf(stored)))
    assert note in render_html(stored)
    assert note in " ".join(" ".join(page.extract_text() for page in pdf.pages).split())
    assert "Meter replaced" not in render_html(stored)  # one meter: no replacement list


def test_going_prepaid_mid_period_ends_the_postpaid_bill_then(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_intervals(any_engine, add_consumer(any_engine, "a", tariff_id=tariff_id), FEB, MAR, 0.2)
    meter = add_consumer(any_engine, "p", tariff_id=tariff_id)
    add_intervals(any_engine, meter, FEB, MAR, 0.2)
    with any_engine.begin() as conn:
        open_account(conn, "p", meter, tariff_id, MID)

    result = run(any_engine)
    assert result.errors == [] and len(result.issued) == 2
    prepaid = bill_of(any_engine, "p")
    # The prepaid account pays from 15 February: the postpaid bill is 1-14 February.
    assert Decimal(prepaid.bill["import_kwh"]) == Decimal("268.8")
    assert quantities(prepaid) == [(c, q / 2) for c, q in quantities(bill_of(any_engine, "a"))]
    assert prepaid.bill["document"]["service"]["to"] == "2026-02-14"
    assert prepaid.bill["document"]["service"]["notes"] == ["prepaid from 2026-02-15 00:00"]


def test_a_consumer_prepaid_all_period_gets_no_postpaid_bill(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter = add_consumer(any_engine, "q", tariff_id=tariff_id)
    add_intervals(any_engine, meter, FEB, MAR, 0.2)
    with any_engine.begin() as conn:
        open_account(conn, "q", meter, tariff_id, datetime(2025, 12, 20, tzinfo=UTC))

    result = run(any_engine)
    assert (result.issued, result.errors, result.not_served) == ([], [], 1)


def test_a_supply_that_began_after_the_period_is_not_billed_for_it(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    with any_engine.begin() as conn:
        conn.execute(schema.consumers.insert().values(id="r", name="R", created_at=NOW))
        billing.assign_tariff(conn, "r", tariff_id, date(2020, 1, 1), amperes=15)
    registry.add_meter(
        any_engine, "m-r", consumer_id="r", installed_at=datetime(2026, 3, 5, tzinfo=UTC)
    )
    add_intervals(any_engine, "m-r", datetime(2026, 3, 5, tzinfo=UTC), NOW, 0.2)

    result = run(any_engine)
    assert (result.issued, result.errors, result.not_served) == ([], [], 1)


# ----------------------------------------------------------------------------- move-out


def test_a_move_out_issues_the_final_bill_up_to_then_and_closes_the_account(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_intervals(any_engine, add_consumer(any_engine, "a", tariff_id=tariff_id), FEB, MAR, 0.2)
    meter = add_consumer(any_engine, "m", tariff_id=tariff_id)
    add_intervals(any_engine, meter, FEB, MID, 0.2)
    add_intervals(any_engine, meter, MID, MAR, 3.0)  # the next occupant's: not this bill's

    number = issue_final_bill(any_engine, "m", MID, settings=SETTINGS, now=NOW)

    final = bill_of(any_engine, "m")
    assert final.bill["number"] == number
    assert Decimal(final.bill["import_kwh"]) == Decimal("268.8")  # 1-14 February
    run(any_engine)  # February's run bills "a" and finds "m" billed and closed
    assert quantities(final) == [(c, q / 2) for c, q in quantities(bill_of(any_engine, "a"))]
    assert final.bill["document"]["final"] is True
    assert final.bill["document"]["service"]["notes"] == ["moved out 2026-02-15 00:00"]
    with any_engine.connect() as conn:
        status = conn.execute(
            select(schema.consumers.c.status).where(schema.consumers.c.id == "m")
        ).scalar_one()
        meter_status = conn.execute(
            select(schema.meters.c.status).where(schema.meters.c.id == meter)
        ).scalar_one()
        removed = conn.execute(select(schema.meter_installations.c.removed_at)).scalar_one()
    assert (status, meter_status, removed) == ("closed", "inactive", MID)


def test_the_periods_run_does_not_bill_a_moved_out_consumer_again(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_intervals(any_engine, add_consumer(any_engine, "m", tariff_id=tariff_id), FEB, MAR, 0.2)
    issue_final_bill(any_engine, "m", MID, settings=SETTINGS, now=NOW)
    result = run(any_engine)
    assert (result.issued, result.errors) == ([], [])
    with any_engine.connect() as conn:
        assert len(billing.bills_of_period(conn, date(2026, 2, 1))) == 1


def test_a_final_bill_is_refused_for_a_future_move_out_or_a_closed_account(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_intervals(any_engine, add_consumer(any_engine, "m", tariff_id=tariff_id), FEB, MAR, 0.2)
    with pytest.raises(FinalBillRefused, match="in the future"):
        issue_final_bill(any_engine, "m", NOW + timedelta(days=1), settings=SETTINGS, now=NOW)
    issue_final_bill(any_engine, "m", MID, settings=SETTINGS, now=NOW)
    with pytest.raises(FinalBillRefused, match="no active meter"):
        issue_final_bill(any_engine, "m", MID, settings=SETTINGS, now=NOW)


def test_a_final_bill_without_reads_is_refused_and_changes_nothing(any_engine: Engine) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    add_consumer(any_engine, "m", tariff_id=tariff_id)
    with pytest.raises(FinalBillRefused, match="no_reads"):
        issue_final_bill(any_engine, "m", MID, settings=SETTINGS, now=NOW)
    with any_engine.connect() as conn:
        status = conn.execute(select(schema.consumers.c.status)).scalar_one()
    assert status == "active"


def test_bill_final_command_issues_the_bill_and_reports_refusals(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    tariff_id = add_tariff(sqlite_engine, "nea-domestic")
    add_intervals(sqlite_engine, add_consumer(sqlite_engine, "m", tariff_id=tariff_id), FEB, MAR)
    monkeypatch.setenv("METERHUB_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("METERHUB_TIMEZONE", "Asia/Kathmandu")
    get_settings.cache_clear()
    try:
        garbled = CliRunner().invoke(app, ["bill", "final", "m", "--at", "mid-February"])
        done = CliRunner().invoke(app, ["bill", "final", "m", "--at", "2026-02-15T00:00"])
        again = CliRunner().invoke(app, ["bill", "final", "m", "--at", "2026-02-15T00:00"])
    finally:
        get_settings.cache_clear()
    assert garbled.exit_code == 2
    assert "--at 'mid-February' is not an ISO 8601 date and time" in garbled.output
    assert done.exit_code == 0, done.output
    assert "final bill MH-2026-000001 issued; consumer m closed from 2026-02-15T00:00:00+05:45" in (
        done.output
    )
    assert again.exit_code == 2 and "no active meter" in again.output


def test_a_prepaid_consumer_moving_out_is_closed_without_a_postpaid_bill(
    any_engine: Engine,
) -> None:
    tariff_id = add_tariff(any_engine, "nea-domestic")
    meter = add_consumer(any_engine, "q", tariff_id=tariff_id)
    add_intervals(any_engine, meter, FEB, MAR, 0.2)
    with any_engine.begin() as conn:
        open_account(conn, "q", meter, tariff_id, datetime(2025, 12, 20, tzinfo=UTC))
    assert issue_final_bill(any_engine, "q", MID, settings=SETTINGS, now=NOW) is None
    with any_engine.connect() as conn:
        status = conn.execute(select(schema.consumers.c.status)).scalar_one()
        assert billing.bills_of_period(conn, date(2026, 2, 1)) == []
    assert status == "closed"


def test_a_final_bill_before_a_schedule_ends_is_priced_on_the_days_it_covers(
    any_engine: Engine,
) -> None:
    # The schedule is withdrawn from 20 February; a move-out on 15 February is billed to then.
    withdrawn = load_tariff(EXAMPLES / "pge-e-tou-c.yaml").model_copy(
        update={"effective_until": date(2026, 2, 20)}
    )
    with any_engine.begin() as conn:
        billing.save_tariff(conn, withdrawn, source_file="pge-e-tou-c.yaml", now=NOW)
    meter = add_consumer(any_engine, "w", tariff_id=withdrawn.id)
    add_intervals(any_engine, meter, FEB, MID, 0.2)
    number = issue_final_bill(any_engine, "w", MID, settings=SETTINGS, now=NOW)
    final = bill_of(any_engine, "w")
    assert final.bill["number"] == number
    assert final.bill["tariff_version"] == date(2026, 1, 1)
