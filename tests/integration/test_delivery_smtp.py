"""Bill delivery through the real channels: apprise mailto:// against a local SMTP server
(aiosmtpd) and apprise json:// against a local HTTP server standing in for an SMS gateway."""

from __future__ import annotations

import asyncio
import email
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from billing_support import add_consumer as add_billed_consumer
from billing_support import add_intervals, add_tariff
from sqlalchemy import Connection, Engine, insert, select, update
from typer.testing import CliRunner

from meterhub.billing.jobs import delivery
from meterhub.billing.jobs.delivery import BillNotice, bill_pdf
from meterhub.billing.jobs.runs import run_bills
from meterhub.cli import app
from meterhub.config import Settings, get_settings
from meterhub.notify.channels import AppriseChannel, Attachment
from meterhub.store.schema import consumers
from meterhub.store.schema_delivery import deliveries
from meterhub.store.tables import metadata

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n% a bill\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Inbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sms_gateway() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append({"path": self.path, **json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, received
    server.shutdown()
    server.server_close()


def email_channel(port: int) -> AppriseChannel:
    return AppriseChannel(
        "email", f"mailto://127.0.0.1:{port}?from=bills@utility.example&mode=insecure"
    )


def sms_channel(port: int) -> AppriseChannel:
    return AppriseChannel("sms", f"json://127.0.0.1:{port}/sms?:to={{address}}", with_title=False)


def add_consumer(engine: Engine, consumer_id: str, email_address: str | None, phone: str | None):
    with engine.begin() as conn:
        conn.execute(
            insert(consumers).values(
                id=consumer_id, name="Ram Sharma", email=email_address, phone=phone, created_at=NOW
            )
        )


def bill(consumer_id: str, bill_id: str = "41") -> BillNotice:
    return BillNotice(
        bill_id=bill_id,
        number=f"2026-0000{bill_id}",
        consumer_id=consumer_id,
        total=Decimal("1234.50"),
        currency="NPR",
        due_date="2026-04-15",
        period="2026-03-01 to 2026-03-31",
    )


def pdf_source(conn: Connection, kind: str, subject_id: str) -> list[Attachment]:
    return [Attachment(f"bill-{subject_id}.pdf", PDF)] if kind == "bill" else []


def send(engine: Engine, channels: dict[str, Any], now: datetime) -> delivery.SendCounts:
    return delivery.deliver_due(
        engine, channels, now, max_attempts=3, retry_seconds=60, attachments=pdf_source
    )


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(deliveries).order_by(deliveries.c.id)).all())


def test_a_bill_email_arrives_with_recipient_subject_text_and_pdf(
    any_engine: Engine, smtp: SmtpServer
) -> None:
    add_consumer(any_engine, "C-1", "ram@example.com", None)
    with any_engine.begin() as conn:
        queued = delivery.enqueue_bill(conn, bill("C-1"), NOW, attached=True)
    assert queued == 1

    counts = send(any_engine, {"email": email_channel(smtp.port)}, NOW)

    assert counts == delivery.SendCounts(sent=1)
    ((recipients, message),) = smtp.inbox.messages
    assert recipients == ["ram@example.com"]
    assert message["To"] == "ram@example.com"
    assert message["From"] == "bills@utility.example"
    assert message["Subject"] == "Your electricity bill 2026-000041: 1234.50 NPR due 2026-04-15"
    parts = list(message.walk())
    text = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert isinstance(text, bytes)
    assert b"your bill 2026-000041 for 2026-03-01 to 2026-03-31 is 1234.50 NPR" in text
    (pdf,) = [p for p in parts if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "bill-41.pdf"
    assert pdf.get_payload(decode=True) == PDF
    (row,) = rows(any_engine)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, NOW)


def test_a_refused_connection_is_recorded_retried_later_and_then_delivered(
    any_engine: Engine,
) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    channels = {"email": email_channel(port)}
    add_consumer(any_engine, "C-2", "sita@example.com", None)
    with any_engine.begin() as conn:
        delivery.enqueue_bill(conn, bill("C-2", "42"), NOW, attached=False)

    assert send(any_engine, channels, NOW) == delivery.SendCounts(failed=1)
    (row,) = rows(any_engine)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "Connection" in row.last_error or "refused" in row.last_error
    assert row.next_attempt_at == NOW + timedelta(seconds=60)
    with any_engine.connect() as conn:
        failed = delivery.list_deliveries(conn, failed_only=True)
    assert [d["subject_id"] for d in failed] == ["42"]

    # Not yet due: nothing is tried again.
    assert send(any_engine, channels, NOW + timedelta(seconds=30)) == delivery.SendCounts()

    server = SmtpServer(port)
    server.start()
    try:
        counts = send(any_engine, channels, NOW + timedelta(seconds=61))
    finally:
        server.stop()
    assert counts == delivery.SendCounts(sent=1)
    assert [r for r, _ in server.inbox.messages] == [["sita@example.com"]]
    (row,) = rows(any_engine)
    assert (row.status, row.attempts) == ("sent", 2)


def test_preferences_are_respected_sms_only_gets_no_email(
    any_engine: Engine, smtp: SmtpServer, sms_gateway: tuple[int, list[dict[str, Any]]]
) -> None:
    port, texts = sms_gateway
    add_consumer(any_engine, "C-3", "hari@example.com", "+9779800000003")
    add_consumer(any_engine, "C-4", "gita@example.com", "+9779800000004")
    with any_engine.begin() as conn:
        delivery.set_preference(conn, "C-3", "sms", NOW)
        delivery.set_preference(conn, "C-4", "both", NOW)
        for consumer_id, bill_id in (("C-3", "43"), ("C-4", "44")):
            delivery.enqueue_bill(conn, bill(consumer_id, bill_id), NOW, attached=True)
        # Queueing again queues nothing more.
        assert delivery.enqueue_bill(conn, bill("C-3", "43"), NOW, attached=True) == 0

    counts = send(any_engine, {"email": email_channel(smtp.port), "sms": sms_channel(port)}, NOW)

    assert counts == delivery.SendCounts(sent=3)
    assert [recipients for recipients, _ in smtp.inbox.messages] == [["gita@example.com"]]
    assert sorted(t["to"] for t in texts) == ["+9779800000003", "+9779800000004"]
    sms = next(t for t in texts if t["to"] == "+9779800000003")
    assert sms["path"] == "/sms"
    assert sms["message"] == "Bill 2026-000043: 1234.50 NPR due 2026-04-15. Consumer C-3."


def test_issued_bills_are_queued_once_from_the_bills_table(any_engine: Engine) -> None:
    bills = metadata.tables["bills"]
    add_consumer(any_engine, "C-5", "mina@example.com", None)
    with any_engine.begin() as conn:
        conn.execute(
            insert(bills).values(
                number="2026-000050", consumer_id="C-5", meter_id="M-5",
                period_start=date(2026, 3, 1), period_end=date(2026, 4, 1), issued_at=NOW,
                due_date=date(2026, 4, 15), currency="NPR", total=Decimal("99.00"),
                status="issued", tariff_id="t", tariff_version=date(2026, 1, 1),
                import_kwh=Decimal(10), export_kwh=Decimal(0), intervals=2976,
                estimated_intervals=0, estimated_dates=[], document={},
            )
        )  # fmt: skip
        assert delivery.enqueue_issued_bills(conn, NOW, link_url="https://p.example/{number}") == 1
        assert delivery.enqueue_issued_bills(conn, NOW) == 0
    (row,) = rows(any_engine)
    assert row.subject == "Your electricity bill 2026-000050: 99.00 NPR due 2026-04-15"
    assert "https://p.example/2026-000050" in row.body


def test_an_issued_bill_goes_out_with_its_rendered_pdf(sqlite_engine: Engine, smtp: SmtpServer):
    ktm = ZoneInfo("Asia/Kathmandu")
    tariff_id = add_tariff(sqlite_engine, "nea-domestic")
    meter_id = add_billed_consumer(sqlite_engine, "c9", tariff_id=tariff_id, amperes=15)
    start = datetime(2026, 2, 1, tzinfo=ktm).astimezone(UTC)
    add_intervals(sqlite_engine, meter_id, start, start + timedelta(days=28))
    settings = Settings(timezone="Asia/Kathmandu", bill_cycle_day=1)
    (number,) = run_bills(
        sqlite_engine, "2026-02", settings=settings, today=date(2026, 3, 1)
    ).issued
    with sqlite_engine.begin() as conn:
        delivery.set_preference(conn, "c9", "email", NOW, email="c9@example.com")
        assert delivery.enqueue_issued_bills(conn, NOW, attached=True) == 1

    counts = delivery.deliver_due(
        sqlite_engine, {"email": email_channel(smtp.port)}, NOW,
        max_attempts=3, retry_seconds=60, attachments=bill_pdf,
    )  # fmt: skip

    assert counts == delivery.SendCounts(sent=1)
    ((recipients, message),) = smtp.inbox.messages
    assert recipients == ["c9@example.com"]
    assert number in message["Subject"]
    (pdf,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"bill-{number}.pdf"
    content = pdf.get_payload(decode=True)
    assert isinstance(content, bytes) and content.startswith(b"%PDF")


def test_failures_are_listed_by_the_command(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_consumer(sqlite_engine, "C-7", "hema@example.com", None)
    with sqlite_engine.begin() as conn:
        delivery.enqueue_bill(conn, bill("C-7", "47"), NOW, attached=False)
    send(sqlite_engine, {"email": email_channel(free_port())}, NOW)  # refused
    monkeypatch.setenv("METERHUB_DATABASE_URL", sqlite_engine.url.render_as_string())
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["bill", "deliveries", "--failed"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    listed = json.loads(line)
    assert (listed["subject_id"], listed["status"], listed["attempts"]) == ("47", "failed", 1)
    assert listed["address"] == "hema@example.com" and listed["last_error"]


# ----------------------------------------------------------------------------- two senders


@dataclass
class SlowInbox(Inbox):
    """Takes a while per message, so two senders are surely sending at the same time."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


def queue_bills(engine: Engine, count: int) -> None:
    for index in range(count):
        add_consumer(engine, f"R-{index:03d}", f"r{index:03d}@example.com", None)
    with engine.begin() as conn:
        for index in range(count):
            delivery.enqueue_bill(
                conn, bill(f"R-{index:03d}", str(100 + index)), NOW, attached=False
            )


def test_two_senders_at_once_send_each_message_exactly_once(any_engine: Engine) -> None:
    server = SmtpServer(free_port())
    server.inbox = SlowInbox()
    server.start()
    queue_bills(any_engine, 30)
    channels = {"email": email_channel(server.port)}
    start = threading.Barrier(2)
    results: list[delivery.SendCounts] = []

    def sender() -> None:
        start.wait()
        results.append(send(any_engine, channels, NOW))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        server.stop()

    recipients = sorted(to for tos, _ in server.inbox.messages for to in tos)
    assert recipients == [f"r{index:03d}@example.com" for index in range(30)]
    assert sum(r.sent for r in results) == 30 and sum(r.failed for r in results) == 0
    assert all(r.sent > 0 for r in results)  # both took part: they really ran side by side
    assert {(row.status, row.attempts, row.claim_token) for row in rows(any_engine)} == {
        ("sent", 1, None)
    }


def test_a_row_held_by_a_sender_is_left_alone_until_its_lease_runs_out(
    any_engine: Engine, smtp: SmtpServer
) -> None:
    add_consumer(any_engine, "C-8", "lila@example.com", None)
    with any_engine.begin() as conn:
        delivery.enqueue_bill(conn, bill("C-8", "48"), NOW, attached=False)
        # Another sender claimed it and died before recording the outcome.
        conn.execute(
            update(deliveries).values(claimed_until=NOW + timedelta(minutes=10), claim_token="x")
        )
    channels = {"email": email_channel(smtp.port)}

    assert send(any_engine, channels, NOW + timedelta(minutes=9)) == delivery.SendCounts()
    assert smtp.inbox.messages == []
    assert send(any_engine, channels, NOW + timedelta(minutes=10)) == delivery.SendCounts(sent=1)
    assert [tos for tos, _ in smtp.inbox.messages] == [["lila@example.com"]]


def test_a_delivery_without_its_channel_configured_stays_queued(any_engine: Engine) -> None:
    add_consumer(any_engine, "C-9", None, "+9779800000009")
    with any_engine.begin() as conn:
        delivery.enqueue_bill(conn, bill("C-9", "49"), NOW, attached=False)

    assert send(any_engine, {"email": email_channel(free_port())}, NOW) == delivery.SendCounts(
        skipped=1
    )
    (row,) = rows(any_engine)
    assert (row.status, row.attempts, row.claim_token) == ("queued", 0, None)
