"""The broker's dynamic-security state file, kept equal to the ``meters`` table.

The database is the source of truth and meterhub the file's only author: after every change it
rewrites the whole file from the table (``write_state``), under a lock so that two registrations
never write an older view last. Mosquitto 2.0 reads the file only when it starts. A change that
must work at once is also sent to the running broker (``control.send_commands``), *before* the
rewrite: if the broker may write the file, it saves its own view after each command, and the
rewrite that follows puts the table's view back. A bulk change (``meter import``) rewrites the file
once and restarts the broker once, since each live command costs the broker a full save of its
state (1.3 to 1.8 s at 100,000 meters).

The service accounts' hashes are not in the database: ``broker mosquitto-config`` makes them, and
they are kept beside the state in ``<state>.services`` (mode 0600), so that a rewrite reads a few
hundred bytes instead of parsing the whole 75 MB state of 100,000 meters for them.
"""

from __future__ import annotations

import fcntl
import gc
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import Engine

from meterhub.devices import dynsec, mosquitto, registry
from meterhub.devices.files import atomic_write

# The broker (user mosquitto) reads the file through its group; meterhub writes it.
STATE_FILE_MODE = 0o640
RESTART_TIMEOUT_S = 300.0


class BrokerStateError(RuntimeError):
    """The state file cannot be read or the broker cannot be restarted; the message says why."""


@dataclass(frozen=True, slots=True)
class StateWrite:
    meters: int
    services: tuple[str, ...]
    bytes: int
    seconds: float


def find_dynsec_plugin() -> Path:
    """The first installed plugin among the usual places; Debian's path if none is found."""
    for path in mosquitto.DYNSEC_PLUGIN_PATHS:
        if path.exists():
            return path
    return mosquitto.DYNSEC_PLUGIN_PATHS[0]


def services_path(state: Path) -> Path:
    return state.with_name(f"{state.name}.services")


def read_service_hashes(path: Path) -> dict[str, str]:
    """The service accounts' hashes: from ``<path>.services``, else from the state file itself
    (as the broker or an older meterhub wrote it); {} if there is neither."""
    try:
        raw = services_path(path).read_bytes()
    except FileNotFoundError:
        pass
    else:
        try:
            kept = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BrokerStateError(f"{services_path(path)} is not JSON: {exc}") from exc
        if not isinstance(kept, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in kept.items()
        ):
            raise BrokerStateError(f"{services_path(path)} is not a name -> hash object")
        return kept
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BrokerStateError(f"{path} is not a JSON dynamic-security state: {exc}") from exc
    if not isinstance(document, dict):
        raise BrokerStateError(f"{path} is not a JSON dynamic-security state")
    return dynsec.service_hashes(document)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The state of 100,000 meters is over a million small dicts, lists and strings without a
    cycle among them; the cyclic collector would walk them over and over while they are built
    (half of the 1.1 s it takes, measured)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(f".{path.name}.lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_state(
    engine: Engine,
    path: Path,
    topics: dynsec.Topics,
    *,
    services: Mapping[str, str] | None = None,
) -> StateWrite:
    """Rewrite ``path`` from the database: every meter with broker access, plus the service
    accounts (``services``, or else the ones the current file holds)."""
    started = time.monotonic()
    with _locked(path):
        kept = dict(services) if services is not None else read_service_hashes(path)
        meters = registry.broker_meter_entries(engine)
        with _no_cyclic_gc():
            try:
                raw = dynsec.state_json(dynsec.state_document(meters, kept, topics))
            except ValueError as exc:
                raise BrokerStateError(str(exc)) from exc
        if services is not None or not services_path(path).exists():
            atomic_write(services_path(path), orjson.dumps(kept), mode=0o600)
        atomic_write(path, raw, mode=STATE_FILE_MODE)
    return StateWrite(len(meters), tuple(sorted(kept)), len(raw), time.monotonic() - started)


def restart_broker(command: str) -> float:
    """Run the operator's restart command (``systemctl restart mosquitto``); seconds it took."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=RESTART_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerStateError(f"broker restart command {command!r} failed: {exc}") from exc
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip()[-500:]
        raise BrokerStateError(
            f"broker restart command {command!r} exited with {done.returncode}: {reason}"
        )
    return time.monotonic() - started
