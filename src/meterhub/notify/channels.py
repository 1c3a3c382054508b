"""Notification channels: every channel has the same small surface, ``send(message)``.

A channel is configured by the utility as an apprise URL (https://github.com/caronc/apprise):
``mailtos://user:password@smtp.example.com?from=bills@utility.example`` for e-mail,
``twilio://SID:TOKEN@+15550001111/{address}`` or ``json://gateway.example/sms?:to={address}``
for SMS. ``{address}`` is replaced by the recipient (URL-quoted); an e-mail URL without it gets
``to=ADDRESS`` appended. Apprise attaches files to e-mail (and JSON webhooks), so bills go out
as PDF attachments through the same channel.

``send`` never raises for a delivery problem: it returns a ``DeliveryResult`` with the reason,
which the delivery service records and retries.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

import apprise
from apprise.attachment.memory import AttachMemory

ChannelName = str  # "email" | "sms"


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Message:
    to: str  # an e-mail address or a phone number in E.164
    subject: str  # e-mail subject; SMS channels ignore it
    body: str
    attachments: tuple[Attachment, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    ok: bool
    error: str | None = None


class Channel(Protocol):
    name: ChannelName

    def send(self, message: Message) -> DeliveryResult: ...


class ChannelError(ValueError):
    """A channel URL that apprise does not understand (a configuration error, not a delivery
    failure)."""


class AppriseChannel:
    """Any apprise URL: SMTP (mailto/mailtos), SMS gateways (twilio, vonage, bulksms, ...),
    JSON/form webhooks. Titles are sent only by channels that have them (e-mail)."""

    def __init__(self, name: ChannelName, url: str, *, with_title: bool = True) -> None:
        self.name = name
        self.url = url
        self.with_title = with_title
        probe = apprise.Apprise()
        if not probe.add(self.url_for("probe@example.invalid")):
            raise ChannelError(f"{name}: not a valid apprise URL: {_redact(url)}")

    def url_for(self, address: str) -> str:
        if "{address}" in self.url:
            return self.url.replace("{address}", quote(address, safe="@"))
        if self.url.startswith(("mailto://", "mailtos://")):
            joiner = "&" if "?" in self.url else "?"
            return f"{self.url}{joiner}to={quote(address, safe='@')}"
        return self.url

    def send(self, message: Message) -> DeliveryResult:
        notifier = apprise.Apprise()
        if not notifier.add(self.url_for(message.to)):
            return DeliveryResult(False, f"not a valid recipient for {self.name}: {message.to}")
        attach = (
            [
                AttachMemory(a.content, name=a.filename, mimetype=a.mimetype)  # type: ignore[no-untyped-call]
                for a in message.attachments
            ]
            if message.attachments
            else None
        )
        # apprise reports the cause (refused, auth, ...) only in its log.
        with apprise.LogCapture(level=logging.DEBUG) as captured:  # type: ignore[no-untyped-call]
            outcome = notifier.notify(
                body=message.body,
                title=message.subject if self.with_title else "",
                attach=attach,
            )
        if outcome:
            return DeliveryResult(True)
        return DeliveryResult(False, _reason(str(captured.getvalue())) or "delivery failed")


def _reason(log: str) -> str:
    """The warnings apprise logged, and the exception behind them (logged only at debug)."""
    wanted = [
        line.split(" - ", 2)[-1].strip()
        for line in log.splitlines()
        if " - WARNING - " in line or " - ERROR - " in line or "Exception:" in line
    ]
    return _redact("; ".join(dict.fromkeys(wanted)))[:1000]


def _redact(text: str) -> str:
    """Never store or print credentials that a channel URL carries."""
    return re.sub(r"(\w+://)[^@/\s]+@", r"\1***@", text)


def configured_channels(email_url: str, sms_url: str) -> dict[ChannelName, Channel]:
    """The channels a utility has configured (an empty URL: that channel is off)."""
    channels: dict[ChannelName, Channel] = {}
    if email_url:
        channels["email"] = AppriseChannel("email", email_url)
    if sms_url:
        channels["sms"] = AppriseChannel("sms", sms_url, with_title=False)
    return channels
