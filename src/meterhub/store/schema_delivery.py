"""Tables for bill delivery (e-mail, SMS) and prepaid accounts, on the shared ``metadata``.

``deliveries.subject_id`` names what was sent as a plain id, because it points at different
tables by ``kind``: a bill (``bills.id``), a receipt (``receipts.id``), a low-balance warning
(``events.id``) or a payment reminder (``<bills.id>:<step>``). Prepaid accounts refer to
``tariffs`` (0002) and top-ups to ``payments`` (0003) by foreign key.

Prepaid balances are derived (top-ups less charges), never stored: a charge row per account and
interval start makes accrual idempotent.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from meterhub.store.schema import UTC_TS, metadata

MONEY = Numeric(18, 6)  # per-interval charges are fractions of a cent; sums stay exact
KWH = Numeric(18, 6)

delivery_preferences = Table(
    "delivery_preferences",
    metadata,
    Column("consumer_id", String(64), ForeignKey("consumers.id"), primary_key=True),
    # email | sms | both | none
    Column("channels", String(8), nullable=False),
    # Addresses that override consumers.email / consumers.phone for delivery only.
    Column("email", Text),
    Column("phone", Text),
    Column("updated_at", UTC_TS, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    # bill | receipt | warning | reminder
    Column("kind", String(16), nullable=False),
    Column("subject_id", String(64), nullable=False),
    Column("consumer_id", String(64), ForeignKey("consumers.id"), nullable=False),
    # email | sms
    Column("channel", String(8), nullable=False),
    Column("address", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    # queued | sent | failed (failed with next_attempt_at set is retried; NULL: gave up)
    Column("status", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("next_attempt_at", UTC_TS),
    Column("created_at", UTC_TS, nullable=False),
    Column("sent_at", UTC_TS),
    # A sender's lease (0006): while ``claimed_until`` is in the future the row belongs to the
    # sender holding ``claim_token``, so two senders at once never send the same message.
    Column("claimed_until", UTC_TS),
    Column("claim_token", String(32)),
    # One delivery per thing and channel, however often the run that queues it is repeated.
    UniqueConstraint("kind", "subject_id", "channel"),
    Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    Index("ix_deliveries_consumer", "consumer_id"),
)

prepaid_accounts = Table(
    "prepaid_accounts",
    metadata,
    Column("consumer_id", String(64), ForeignKey("consumers.id"), primary_key=True),
    Column("meter_id", String(64), ForeignKey("meters.id"), nullable=False),
    Column("tariff_id", String(64), ForeignKey("tariffs.id"), nullable=False),
    # Intervals starting at or after this instant are charged to the account.
    Column("opened_at", UTC_TS, nullable=False),
    # End of the latest charged interval: where the next accrual run looks from.
    Column("accrued_until", UTC_TS),
    # What meterhub has asked for, not the relay's state: connected | disconnect_requested
    Column("supply_state", String(24), nullable=False, server_default="connected"),
    Column("created_at", UTC_TS, nullable=False),
)

prepaid_topups = Table(
    "prepaid_topups",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("consumer_id", String(64), ForeignKey("prepaid_accounts.consumer_id"), nullable=False),
    Column("amount", MONEY, nullable=False),
    # The payment reference: a top-up is credited once, however often it is reported.
    Column("reference", String(128), nullable=False, unique=True),
    # The payment that bought it, when it came through the payments capability.
    Column("payment_id", BigInteger, ForeignKey("payments.id")),
    Column("received_at", UTC_TS, nullable=False),
    Index("ix_prepaid_topups_consumer", "consumer_id"),
)

prepaid_charges = Table(
    "prepaid_charges",
    metadata,
    Column(
        "consumer_id",
        String(64),
        ForeignKey("prepaid_accounts.consumer_id"),
        primary_key=True,
    ),
    Column("interval_start", UTC_TS, primary_key=True),
    Column("seconds", Integer, nullable=False),
    Column("kwh", KWH, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("charged_at", UTC_TS, nullable=False),
)
