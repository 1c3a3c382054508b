"""Meter registration and the broker's files: the adapter between ``meters`` and Mosquitto.

Each function is one unit of work (one transaction). The plaintext secret leaves this module only
as a return value, once; the database and the broker hold its hash.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, select, update

from meterhub.devices import credentials, mosquitto
from meterhub.store import meters as meter_store
from meterhub.store.schema import consumers, meters, transformers

# Meters in these states keep no access to the broker.
NO_BROKER_ACCESS = ("inactive", "replaced")
METER_ROLES = ("consumer", "transformer_main", "feeder_main", "sub")


class RegistryError(ValueError):
    """A registration request that cannot be carried out; the message says why."""


class DuplicateMeterError(RegistryError):
    pass


class UnknownMeterError(RegistryError):
    pass


@dataclass(frozen=True, slots=True)
class MeterSummary:
    id: str
    consumer_id: str | None
    role: str
    status: str
    phase: int
    sanctioned_load_kw: float | None
    has_credential: bool
    created_at: datetime


def _require_row(connection: Connection, table: Table, key: str, what: str) -> None:
    if connection.execute(select(table.c.id).where(table.c.id == key)).first() is None:
        raise RegistryError(f"unknown {what} {key!r}: create it first")


def add_meter(
    engine: Engine,
    meter_id: str,
    *,
    consumer_id: str | None = None,
    transformer_id: str | None = None,
    sanctioned_load_kw: float | None = None,
    phase: int = 1,
    latitude: float | None = None,
    longitude: float | None = None,
    model: str | None = None,
    firmware: str | None = None,
    role: str = "consumer",
    installed_at: datetime | None = None,
) -> str:
    """Register a meter with a new credential; return the plaintext secret (shown once).

    ``installed_at`` (with ``consumer_id``) records when the meter began to supply the
    consumer: a move-in, whose first bill covers the days from then. Without it the meter
    counts as having served the consumer all along."""
    mosquitto.validate_meter_id(meter_id)
    if role not in METER_ROLES:
        raise RegistryError(f"unknown role {role!r}: one of {', '.join(METER_ROLES)}")
    if phase not in (1, 3):
        raise RegistryError(f"phase must be 1 or 3, got {phase}")
    if sanctioned_load_kw is not None and sanctioned_load_kw <= 0:
        raise RegistryError(f"sanctioned load must be positive, got {sanctioned_load_kw} kW")
    if installed_at is not None and consumer_id is None:
        raise RegistryError("an installation time needs the consumer the meter supplies")
    if installed_at is not None and installed_at.tzinfo is None:
        raise RegistryError("the installation time needs a time zone")
    secret = credentials.generate_secret()
    with engine.begin() as connection:
        if connection.execute(select(meters.c.id).where(meters.c.id == meter_id)).first():
            raise DuplicateMeterError(f"meter {meter_id!r} is already registered")
        if consumer_id is not None:
            _require_row(connection, consumers, consumer_id, "consumer")
        if transformer_id is not None:
            _require_row(connection, transformers, transformer_id, "transformer")
        connection.execute(
            meters.insert().values(
                id=meter_id,
                consumer_id=consumer_id,
                transformer_id=transformer_id,
                role=role,
                latitude=latitude,
                longitude=longitude,
                sanctioned_load_kw=sanctioned_load_kw,
                phase=phase,
                model=model,
                firmware=firmware,
                status="active",
                credential_hash=credentials.hash_secret(secret),
                created_at=datetime.now(UTC),
            )
        )
        if installed_at is not None and consumer_id is not None:
            meter_store.record_installation(
                connection,
                consumer_id=consumer_id,
                meter_id=meter_id,
                at=installed_at,
                now=datetime.now(UTC),
            )
    return secret


@dataclass(frozen=True, slots=True)
class Replacement:
    consumer_id: str
    registered_secret: str | None  # the new meter's credential, if this registered it


def replace_meter(
    engine: Engine,
    old_meter_id: str,
    new_meter_id: str,
    at: datetime,
    *,
    final_reading_kwh: float | None = None,
    initial_reading_kwh: float | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> Replacement:
    """Record that ``new_meter_id`` replaced ``old_meter_id`` at its consumer at ``at``.

    The old meter becomes ``replaced`` (no broker access) and the new one the consumer's active
    meter, with the old one's transformer, sanctioned load and phase where it has none. A new
    meter not yet registered is registered here, with a credential returned once. Both meters'
    spans go into the installation history, which bill runs use to bill the period once."""
    now = now or datetime.now(UTC)
    if at.tzinfo is None:
        raise RegistryError("the replacement time needs a time zone")
    if at > now:
        raise RegistryError(f"the replacement time {at.isoformat()} is in the future")
    if new_meter_id == old_meter_id:
        raise RegistryError("a meter cannot replace itself")
    mosquitto.validate_meter_id(new_meter_id)
    secret: str | None = None
    with engine.begin() as connection:
        old = connection.execute(select(meters).where(meters.c.id == old_meter_id)).first()
        if old is None:
            raise UnknownMeterError(f"meter {old_meter_id!r} is not registered")
        if old.status != "active" or old.role != "consumer" or old.consumer_id is None:
            raise RegistryError(
                f"meter {old_meter_id!r} is not an active consumer meter (status {old.status}, "
                f"role {old.role}, consumer {old.consumer_id})"
            )
        current = meter_store.open_installation(connection, old_meter_id)
        if current is not None and current.installed_at is not None and at <= current.installed_at:
            raise RegistryError(
                f"meter {old_meter_id!r} was installed at {current.installed_at.isoformat()}, "
                "after the replacement time"
            )
        new = connection.execute(select(meters).where(meters.c.id == new_meter_id)).first()
        inherited = {
            "transformer_id": old.transformer_id,
            "feeder_id": old.feeder_id,
            "sanctioned_load_kw": old.sanctioned_load_kw,
            "phase": old.phase,
        }
        if new is None:
            secret = credentials.generate_secret()
            connection.execute(
                meters.insert().values(
                    id=new_meter_id,
                    consumer_id=old.consumer_id,
                    role="consumer",
                    status="active",
                    credential_hash=credentials.hash_secret(secret),
                    created_at=now,
                    **inherited,
                )
            )
        else:
            if new.status in NO_BROKER_ACCESS or new.role != "consumer":
                raise RegistryError(
                    f"meter {new_meter_id!r} cannot be installed (status {new.status}, "
                    f"role {new.role})"
                )
            if new.consumer_id not in (None, old.consumer_id):
                raise RegistryError(
                    f"meter {new_meter_id!r} serves consumer {new.consumer_id!r}: replace or "
                    "remove it there first"
                )
            missing = {k: v for k, v in inherited.items() if getattr(new, k) is None}
            connection.execute(
                update(meters)
                .where(meters.c.id == new_meter_id)
                .values(consumer_id=old.consumer_id, **missing)
            )
        connection.execute(
            update(meters)
            .where(meters.c.id == old_meter_id)
            .values(status="replaced", replaced_by=new_meter_id)
        )
        meter_store.record_swap(
            connection,
            consumer_id=old.consumer_id,
            old_meter_id=old_meter_id,
            new_meter_id=new_meter_id,
            at=at,
            final_reading_kwh=final_reading_kwh,
            initial_reading_kwh=initial_reading_kwh,
            note=note,
            now=now,
        )
    return Replacement(old.consumer_id, secret)


def rotate_credential(engine: Engine, meter_id: str) -> str:
    """Replace a meter's credential; the old one works until the broker reloads."""
    secret = credentials.generate_secret()
    with engine.begin() as connection:
        result = connection.execute(
            update(meters)
            .where(meters.c.id == meter_id)
            .values(credential_hash=credentials.hash_secret(secret))
        )
        if result.rowcount != 1:
            raise UnknownMeterError(f"meter {meter_id!r} is not registered")
    return secret


def list_meters(engine: Engine) -> list[MeterSummary]:
    query = select(
        meters.c.id,
        meters.c.consumer_id,
        meters.c.role,
        meters.c.status,
        meters.c.phase,
        meters.c.sanctioned_load_kw,
        meters.c.credential_hash.is_not(None).label("has_credential"),
        meters.c.created_at,
    ).order_by(meters.c.id)
    with engine.connect() as connection:
        return [MeterSummary(**row._mapping) for row in connection.execute(query)]


def broker_meter_entries(engine: Engine) -> list[tuple[str, str]]:
    """(meter id, hash) of every meter that may connect: has a credential, not retired."""
    query = (
        select(meters.c.id, meters.c.credential_hash)
        .where(meters.c.credential_hash.is_not(None))
        .where(meters.c.status.not_in(NO_BROKER_ACCESS))
        .order_by(meters.c.id)
    )
    with engine.connect() as connection:
        return [(row.id, row.credential_hash) for row in connection.execute(query)]


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``.

    The broker may reload at any moment; it must see the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_service_accounts(passwd_path: Path) -> dict[str, str]:
    """The service accounts' hashes from an existing password file (not kept in the database)."""
    if not passwd_path.exists():
        return {}
    entries = mosquitto.parse_password_file(passwd_path.read_text(encoding="utf-8"))
    return {name: h for name, h in entries.items() if name in mosquitto.SERVICE_ACCOUNTS}


def reload_broker(pid: int) -> None:
    """SIGHUP makes Mosquitto re-read its password and ACL files without dropping connections."""
    os.kill(pid, signal.SIGHUP)


def write_broker_files(
    engine: Engine,
    passwd_path: Path,
    acl_path: Path,
    service_accounts: Mapping[str, str],
    *,
    topic_prefix: str = "meters",
    mosquitto_pid: int | None = None,
) -> int:
    """Write the password file (meters + service accounts) and the ACL; reload the broker if given.

    Returns the number of meters in the password file.
    """
    meter_entries = broker_meter_entries(engine)
    entries = meter_entries + mosquitto.service_password_entries(service_accounts)
    passwd_text = mosquitto.password_file_text(entries)
    acl_text = mosquitto.acl_file_text(topic_prefix)
    atomic_write(passwd_path, passwd_text)
    atomic_write(acl_path, acl_text)
    if mosquitto_pid is not None:
        reload_broker(mosquitto_pid)
    return len(meter_entries)
