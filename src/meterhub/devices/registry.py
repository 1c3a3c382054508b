"""Meter registration: the adapter between the ``meters`` table and the rest of meterhub.

Each function is one unit of work (one transaction). The plaintext secret leaves this module only
as a return value, once; the database holds its hash (and the broker's state is built from it, see
``broker_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from meterhub.devices import credentials, mosquitto
from meterhub.devices.meter_rules import (
    METER_ROLES,
    NO_BROKER_ACCESS,
    MeterSpec,
    RowError,
    RowsError,
    problems,
)
from meterhub.store import consumers as consumer_store
from meterhub.store import meters as meter_store
from meterhub.store import network as network_store
from meterhub.store.meters import MeterRow

__all__ = ["METER_ROLES", "NO_BROKER_ACCESS"]


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


def _require_links(
    connection: Connection, consumer_id: str | None, transformer_id: str | None
) -> None:
    """The consumer and transformer a new meter names must exist."""
    if consumer_id is not None and not consumer_store.consumer_exists(connection, consumer_id):
        raise RegistryError(f"unknown consumer {consumer_id!r}: create it first")
    if transformer_id is not None and not network_store.transformer_exists(
        connection, transformer_id
    ):
        raise RegistryError(f"unknown transformer {transformer_id!r}: create it first")


def _meter_row(spec: MeterSpec, credential_hash: str, now: datetime) -> dict[str, Any]:
    return {
        "id": spec.meter_id,
        "consumer_id": spec.consumer_id,
        "transformer_id": spec.transformer_id,
        "role": spec.role,
        "latitude": spec.latitude,
        "longitude": spec.longitude,
        "sanctioned_load_kw": spec.sanctioned_load_kw,
        "phase": spec.phase,
        "model": spec.model,
        "firmware": spec.firmware,
        "status": "active",
        "credential_hash": credential_hash,
        "created_at": now,
    }


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
    spec = MeterSpec(
        meter_id=meter_id,
        consumer_id=consumer_id,
        transformer_id=transformer_id,
        sanctioned_load_kw=sanctioned_load_kw,
        phase=phase,
        latitude=latitude,
        longitude=longitude,
        model=model,
        firmware=firmware,
        role=role,
        installed_at=installed_at,
    )
    found = problems(spec)
    if found:
        raise RegistryError(found[0][1])
    secret = credentials.generate_secret()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        if meter_store.meter_exists(connection, meter_id):
            raise DuplicateMeterError(f"meter {meter_id!r} is already registered")
        _require_links(connection, consumer_id, transformer_id)
        meter_store.insert_meters(
            connection, [_meter_row(spec, credentials.hash_secret(secret), now)]
        )
        if installed_at is not None and consumer_id is not None:
            meter_store.record_installation(
                connection, consumer_id=consumer_id, meter_id=meter_id, at=installed_at, now=now
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
    _check_replacement_request(old_meter_id, new_meter_id, at, now)
    with engine.begin() as connection:
        old = _replaceable_meter(connection, old_meter_id, at)
        assert old.consumer_id is not None  # checked by _replaceable_meter
        secret = _install_in_place_of(connection, old, new_meter_id, now)
        meter_store.update_meter(
            connection, old_meter_id, {"status": "replaced", "replaced_by": new_meter_id}
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


def _check_replacement_request(
    old_meter_id: str, new_meter_id: str, at: datetime, now: datetime
) -> None:
    """What can be refused before the database is asked."""
    if at.tzinfo is None:
        raise RegistryError("the replacement time needs a time zone")
    if at > now:
        raise RegistryError(f"the replacement time {at.isoformat()} is in the future")
    if new_meter_id == old_meter_id:
        raise RegistryError("a meter cannot replace itself")
    mosquitto.validate_meter_id(new_meter_id)


def _replaceable_meter(connection: Connection, meter_id: str, at: datetime) -> MeterRow:
    """The meter to replace: an active consumer meter installed before ``at``."""
    old = meter_store.load_meter(connection, meter_id)
    if old is None:
        raise UnknownMeterError(f"meter {meter_id!r} is not registered")
    if old.status != "active" or old.role != "consumer" or old.consumer_id is None:
        raise RegistryError(
            f"meter {meter_id!r} is not an active consumer meter (status {old.status}, "
            f"role {old.role}, consumer {old.consumer_id})"
        )
    current = meter_store.open_installation(connection, meter_id)
    if current is not None and current.installed_at is not None and at <= current.installed_at:
        raise RegistryError(
            f"meter {meter_id!r} was installed at {current.installed_at.isoformat()}, "
            "after the replacement time"
        )
    return old


def _install_in_place_of(
    connection: Connection, old: MeterRow, new_meter_id: str, now: datetime
) -> str | None:
    """Make ``new_meter_id`` the old meter's consumer's meter, inheriting the old one's place
    in the network and its supply where it has none; registers it if needed and returns its
    new credential then."""
    inherited = {
        "transformer_id": old.transformer_id,
        "feeder_id": old.feeder_id,
        "sanctioned_load_kw": old.sanctioned_load_kw,
        "phase": old.phase,
    }
    new = meter_store.load_meter(connection, new_meter_id)
    if new is None:
        secret = credentials.generate_secret()
        row = {
            "id": new_meter_id,
            "consumer_id": old.consumer_id,
            "role": "consumer",
            "status": "active",
            "credential_hash": credentials.hash_secret(secret),
            "created_at": now,
            **inherited,
        }
        meter_store.insert_meters(connection, [row])
        return secret
    if new.status in NO_BROKER_ACCESS or new.role != "consumer":
        raise RegistryError(
            f"meter {new_meter_id!r} cannot be installed (status {new.status}, role {new.role})"
        )
    if new.consumer_id not in (None, old.consumer_id):
        raise RegistryError(
            f"meter {new_meter_id!r} serves consumer {new.consumer_id!r}: replace or "
            "remove it there first"
        )
    missing = {k: v for k, v in inherited.items() if getattr(new, k) is None}
    meter_store.update_meter(connection, new_meter_id, {"consumer_id": old.consumer_id, **missing})
    return None


def rotate_credential(engine: Engine, meter_id: str) -> str:
    """Replace a meter's credential; the old one works until the broker hears of it."""
    secret = credentials.generate_secret()
    with engine.begin() as connection:
        status = meter_store.meter_status(connection, meter_id)
        if status is None:
            raise UnknownMeterError(f"meter {meter_id!r} is not registered")
        if status in NO_BROKER_ACCESS:
            raise RegistryError(
                f"meter {meter_id!r} is {status}: it has no broker access to rotate"
            )
        meter_store.update_meter(
            connection, meter_id, {"credential_hash": credentials.hash_secret(secret)}
        )
    return secret


def list_meters(engine: Engine) -> list[MeterSummary]:
    with engine.connect() as connection:
        return [MeterSummary(*row) for row in meter_store.meter_summaries(connection)]


def broker_meter_entries(engine: Engine) -> list[tuple[str, str]]:
    """(meter id, hash) of every meter that may connect: has a credential, not retired."""
    with engine.connect() as connection:
        return meter_store.credential_hashes(connection, except_status=NO_BROKER_ACCESS)


def import_meters(
    engine: Engine,
    rows: Sequence[tuple[int, MeterSpec]],
    credential_hashes: Sequence[str],
    *,
    before_commit: Callable[[], None] = lambda: None,
    now: datetime | None = None,
) -> None:
    """Register every (line, meter) of ``rows`` with its hash, in one transaction, or none.

    RowsError (nothing registered) names each row whose id is already registered or whose
    consumer or transformer does not exist. ``before_commit`` runs inside the transaction after
    the inserts (the import writes its credentials file there): if it raises, nothing is
    registered; if the commit fails after it, the caller undoes what it did.
    """
    if len(rows) != len(credential_hashes):
        raise ValueError(f"{len(rows)} meters but {len(credential_hashes)} credential hashes")
    now = now or datetime.now(UTC)
    specs = [spec for _, spec in rows]
    with engine.begin() as connection:
        errors = _import_conflicts(connection, rows)
        if errors:
            raise RowsError(errors)
        meter_store.insert_meters(
            connection,
            [_meter_row(spec, h, now) for spec, h in zip(specs, credential_hashes, strict=True)],
        )
        meter_store.record_installations(
            connection,
            [
                (spec.consumer_id, spec.meter_id, spec.installed_at)
                for spec in specs
                if spec.installed_at is not None and spec.consumer_id is not None
            ],
            now=now,
        )
        before_commit()


def _import_conflicts(
    connection: Connection, rows: Sequence[tuple[int, MeterSpec]]
) -> list[RowError]:
    """Each row whose id is already registered or whose consumer or transformer is unknown."""
    specs = [spec for _, spec in rows]
    registered = meter_store.registered_meters(connection, (s.meter_id for s in specs))
    known_consumers = consumer_store.existing_consumers(
        connection, (s.consumer_id for s in specs if s.consumer_id)
    )
    known_transformers = network_store.existing_transformers(
        connection, (s.transformer_id for s in specs if s.transformer_id)
    )
    errors: list[RowError] = []
    for line, spec in rows:
        if spec.meter_id in registered:
            errors.append(RowError(line, "id", f"meter {spec.meter_id!r} is already registered"))
        if spec.consumer_id is not None and spec.consumer_id not in known_consumers:
            errors.append(
                RowError(
                    line, "consumer", f"unknown consumer {spec.consumer_id!r}: create it first"
                )
            )
        if spec.transformer_id is not None and spec.transformer_id not in known_transformers:
            message = f"unknown transformer {spec.transformer_id!r}: create it first"
            errors.append(RowError(line, "transformer", message))
    return errors
