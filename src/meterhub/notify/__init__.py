"""Notifications: channels (e-mail, SMS, webhooks via apprise URLs) with one ``send(message)``
surface, and the message templates for bills, receipts and prepaid warnings."""

from meterhub.notify.channels import (
    AppriseChannel,
    Attachment,
    Channel,
    ChannelError,
    DeliveryResult,
    Message,
    configured_channels,
)
from meterhub.notify.templates import render

__all__ = [
    "AppriseChannel",
    "Attachment",
    "Channel",
    "ChannelError",
    "DeliveryResult",
    "Message",
    "configured_channels",
    "render",
]
