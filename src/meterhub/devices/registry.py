"""Meter registration: the adapter between the ``meters`` table and the rest of meterhub.

Each function is one unit of work (one transaction). The plaintext secret leaves this module only
as a return value, once; the database holds its hash (and the broker's state is built from it, see
``broker_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update

from meterhub.devices import credentials, mosquitto
from meterhub.devices.meter_rules import (
    METER_ROLES,
    NO_BROKER_ACCESS,
    MeterSpec,
    RowError,
    RowsError,
    problems,
)
from meterhub.store import meters as meter_store
from meterhub.store.schema import consumers, meter_installations, meters, transformers

__all__ = ["METER_ROLES", "NO_BROKER_ACCESS"]
# Ids per IN (...) list when an import checks what the database already holds.
LOOKUP_CHUNK = 5_000


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
        if connection.execute(select(meters.c.id).where(meters.c.id == meter_id)).first():
            raise DuplicateMeterError(f"meter {meter_id!r} is already registered")
        if consumer_id is not None:
            _require_row(connection, consumers, consumer_id, "consumer")
        if transformer_id is not None:
            _require_row(connection, transformers, transformer_id, "transformer")
        connection.execute(
            meters.insert().values(_meter_row(spec, credentials.hash_secret(secret), now))
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
    """Replace a meter's credential; the old one works until the broker hears of it."""
    secret = credentials.generate_secret()
    with engine.begin() as connection:
        status = connection.execute(
            select(meters.c.status).where(meters.c.id == meter_id)
        ).scalar_one_or_none()
        if status is None:
            raise UnknownMeterError(f"meter {meter_id!r} is not registered")
        if status in NO_BROKER_ACCESS:
            raise RegistryError(
                f"meter {meter_id!r} is {status}: it has no broker access to rotate"
            )
        connection.execute(
            update(meters)
            .where(meters.c.id == meter_id)
            .values(credential_hash=credentials.hash_secret(secret))
        )
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


def _present(connection: Connection, table: Table, keys: Iterable[str]) -> set[str]:
    wanted = sorted(set(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        found.update(connection.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return found


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
        registered = _present(connection, meters, (s.meter_id for s in specs))
        known_consumers = _present(
            connection, consumers, (s.consumer_id for s in specs if s.consumer_id)
        )
        known_transformers = _present(
            connection, transformers, (s.transformer_id for s in specs if s.transformer_id)
        )
        errors: list[RowError] = []
        for line, spec in rows:
            if spec.meter_id in registered:
                errors.append(
                    RowError(line, "id", f"meter {spec.meter_id!r} is already registered")
                )
            if spec.consumer_id is not None and spec.consumer_id not in known_consumers:
                errors.append(
                    RowError(
                        line, "consumer", f"unknown consumer {spec.consumer_id!r}: create it first"
                    )
                )
            if spec.transformer_id is not None and spec.transformer_id not in known_transformers:
                errors.append(
                    RowError(
                        line,
                        "transformer",
                        f"unknown transformer {spec.transformer_id!r}: create it first",
                    )
                )
        if errors:
            raise RowsError(errors)
        connection.execute(
            insert(meters),
            [_meter_row(spec, h, now) for spec, h in zip(specs, credential_hashes, strict=True)],
        )
        installations = [
            {
                "consumer_id": spec.consumer_id,
                "meter_id": spec.meter_id,
                "installed_at": spec.installed_at,
                "created_at": now,
            }
            for spec in specs
            if spec.installed_at is not None and spec.consumer_id is not None
        ]
        if installations:
            connection.execute(insert(meter_installations), installations)
        before_commit()
