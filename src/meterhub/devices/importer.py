"""``meterhub meter import``: register a CSV of meters, all or none, credentials written once.

The order is what makes it all-or-nothing without a lost secret:

1. read and check every row (``meter_csv``); refuse the file, listing every problem, if any;
2. refuse at once if the credentials file already exists (it is never overwritten);
3. make a secret per meter and hash it (PBKDF2, on every core: hashlib releases the GIL);
4. in ONE database transaction: refuse rows whose id is registered or whose consumer or
   transformer is unknown, insert the meters and their installations, then create the credentials
   file (mode 0600, whole or not at all, see ``files.create_new_file``), then commit.

If the file cannot be created, the transaction rolls back: nothing is registered. If the commit
fails after the file was created, the file is removed: no secret of an unregistered meter stays
behind. A crash between the two (the process killed in the commit) can leave the file with no
meters registered; the next attempt then refuses to overwrite it, and the operator sees why.
The broker's state follows afterwards, once for the whole file (``broker_state``).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from meterhub.devices import credentials, registry
from meterhub.devices.files import create_new_file
from meterhub.devices.meter_csv import parse_meter_csv
from meterhub.devices.meter_rules import MeterSpec

CREDENTIALS_HEADER = ("meter_id", "mqtt_username", "mqtt_client_id", "mqtt_password")
HASH_CHUNK = 1_000


class CredentialsFileExistsError(FileExistsError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} already exists: meterhub never overwrites a credentials file; "
            "choose another path or move that file away"
        )


@dataclass(frozen=True, slots=True)
class ImportResult:
    meters: int
    credentials_path: Path
    parse_s: float
    hash_s: float
    database_s: float


def hash_all(secrets: Sequence[str], workers: int | None = None) -> list[str]:
    """``credentials.hash_secret`` of each secret, in order, on ``workers`` threads."""
    chunks = [secrets[n : n + HASH_CHUNK] for n in range(0, len(secrets), HASH_CHUNK)]
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        hashed = pool.map(lambda chunk: [credentials.hash_secret(s) for s in chunk], chunks)
        return [h for chunk in hashed for h in chunk]


def credentials_csv(rows: Sequence[tuple[int, MeterSpec]], secrets: Sequence[str]) -> str:
    """One line per meter: its id, MQTT username and client id (both the id), and its secret."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CREDENTIALS_HEADER)
    for (_, spec), secret in zip(rows, secrets, strict=True):
        writer.writerow((spec.meter_id, spec.meter_id, spec.meter_id, secret))
    return out.getvalue()


def import_file(
    engine: Engine,
    csv_path: Path,
    credentials_path: Path,
    *,
    zone: ZoneInfo,
    workers: int | None = None,
) -> ImportResult:
    """Register the meters in ``csv_path``; their secrets go to ``credentials_path`` (0600).

    Raises ``meter_rules.RowsError`` (nothing registered) for bad rows, CredentialsFileExistsError
    if ``credentials_path`` exists, OSError if the CSV cannot be read.
    """
    started = time.monotonic()
    if credentials_path.exists():
        raise CredentialsFileExistsError(credentials_path)
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = parse_meter_csv(handle, zone)
    parsed = time.monotonic()
    secrets = [credentials.generate_secret() for _ in rows]
    hashes = hash_all(secrets, workers)
    hashed = time.monotonic()
    text = credentials_csv(rows, secrets)
    created = False

    def write_credentials() -> None:
        nonlocal created
        try:
            create_new_file(credentials_path, text, mode=0o600)
        except FileExistsError:
            raise CredentialsFileExistsError(credentials_path) from None
        created = True

    try:
        registry.import_meters(engine, rows, hashes, before_commit=write_credentials)
    except BaseException:
        if created:  # the commit failed after the file was made: its secrets open nothing
            credentials_path.unlink(missing_ok=True)
        raise
    done = time.monotonic()
    return ImportResult(
        meters=len(rows),
        credentials_path=credentials_path,
        parse_s=parsed - started,
        hash_s=hashed - parsed,
        database_s=done - hashed,
    )
