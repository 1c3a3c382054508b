"""Notification channels and message texts, without any server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterhub.billing.jobs.delivery import addresses, next_attempt_at
from meterhub.notify.channels import AppriseChannel, ChannelError, _redact
from meterhub.notify.templates import render


def test_bill_email_has_a_subject_line_and_the_link_when_not_attached() -> None:
    subject, body = render(
        "bill", "email", name="Ram", consumer_id="C-1", number="2026-000001", total="1234.50",
        currency="NPR", due_date="2026-04-15", period="2026-03-01 to 2026-03-31",
        link="https://portal.example/bills/2026-000001", attached=False,
    )  # fmt: skip
    assert subject == "Your electricity bill 2026-000001: 1234.50 NPR due 2026-04-15"
    assert "https://portal.example/bills/2026-000001" in body
    assert "attached" not in body


def test_bill_sms_is_one_short_line() -> None:
    subject, body = render(
        "bill", "sms", name="Ram", consumer_id="C-1", number="2026-000001", total="1234.50",
        currency="NPR", due_date="2026-04-15", period="March", link="", attached=False,
    )  # fmt: skip
    assert subject == ""
    assert body == "Bill 2026-000001: 1234.50 NPR due 2026-04-15. Consumer C-1."
    assert len(body) <= 160


def test_a_missing_template_value_is_an_error_not_a_gap() -> None:
    with pytest.raises(Exception, match="total"):
        render("bill", "sms", consumer_id="C-1", number="1", currency="NPR", due_date="x", link="")


def test_recipient_goes_into_the_url_placeholder_or_the_mailto_to() -> None:
    sms = AppriseChannel("sms", "json://gw.example/sms?:to={address}", with_title=False)
    assert sms.url_for("+9779800000000") == "json://gw.example/sms?:to=%2B9779800000000"
    email = AppriseChannel("email", "mailto://smtp.example:25?from=bills@utility.example")
    assert email.url_for("ram@example.com").endswith("&to=ram@example.com")


def test_an_unknown_channel_url_is_a_configuration_error() -> None:
    with pytest.raises(ChannelError):
        AppriseChannel("sms", "nosuchscheme://x")


def test_credentials_never_appear_in_errors() -> None:
    assert _redact("twilio://SID:TOKEN@+1555/x failed") == "twilio://***@+1555/x failed"


def test_preferences_choose_channels_with_an_address() -> None:
    assert addresses(None, "a@example.com", "+977") == {"email": "a@example.com", "sms": "+977"}
    assert addresses("sms", "a@example.com", "+977") == {"sms": "+977"}
    assert addresses("both", "a@example.com", None) == {"email": "a@example.com"}
    assert addresses("none", "a@example.com", "+977") == {}


def test_retries_back_off_and_stop_after_the_last_attempt() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    delays = [next_attempt_at(n, now, base_seconds=60, max_attempts=4) for n in (1, 2, 3, 4)]
    # 60 s, 120 s, 240 s, then no more (4 attempts made)
    assert delays == [
        now + timedelta(seconds=60),
        now + timedelta(seconds=120),
        now + timedelta(seconds=240),
        None,
    ]
