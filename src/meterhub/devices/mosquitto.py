"""Meter ids as MQTT usernames and a recommended mosquitto.conf, built as text (pure).

Who may connect and what each client may do lives in the dynamic-security plugin's state
(``dynsec``); this module names the accounts, checks the ids that become usernames, client ids and
topic levels, and writes the broker's configuration file. Meter ids are validated before they
reach any broker file, so no id can carry ``+``, ``#``, ``/``, ``:`` or a newline into a topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from meterhub.readings.model import METER_ID_PATTERN

INGEST_ACCOUNT = "meterhub-ingest"
CONTROL_ACCOUNT = "meterhub-control"
SIM_ACCOUNT = "meterhub-sim"
# Sends $CONTROL/dynamic-security commands: meter add, rotate and retire take effect at once.
ADMIN_ACCOUNT = "meterhub-admin"
SERVICE_ACCOUNTS: tuple[str, ...] = (INGEST_ACCOUNT, CONTROL_ACCOUNT, SIM_ACCOUNT, ADMIN_ACCOUNT)
# What `broker mosquitto-config` creates by default; the simulator speaks for every meter, so it
# exists only on brokers that ask for it (test and demo brokers).
PRODUCTION_ACCOUNTS: tuple[str, ...] = (INGEST_ACCOUNT, CONTROL_ACCOUNT, ADMIN_ACCOUNT)
# Usernames under this prefix belong to meterhub's services; a meter id may never take one, or it
# would inherit a service account's rights (meters and services share one broker state).
RESERVED_PREFIX = "meterhub-"

# Topics a meter publishes under <prefix>/<id>/ (the v1 device contract in docs).
METER_WRITE_SUFFIXES: tuple[str, ...] = ("readings", "events", "status", "cmd/ack")
METER_READ_SUFFIXES: tuple[str, ...] = ("cmd",)

# Where distributions install the plugin that ships with Mosquitto 2.0 (Debian/Ubuntu first).
DYNSEC_PLUGIN_PATHS: tuple[Path, ...] = (
    Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so"),
    Path("/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so"),
    Path("/usr/lib/mosquitto_dynamic_security.so"),
    Path("/usr/lib64/mosquitto_dynamic_security.so"),
    Path("/usr/local/lib/mosquitto_dynamic_security.so"),
)

# Seconds between persistence saves (docs/deploy.md, "What a broker crash may lose"). Measured
# with benchmarks/broker_persistence.py at 100,000 meters (retained status and a persistent
# session each), Mosquitto 2.0.11 on 2 cores: a save blocks the broker 0.18 s with nothing
# queued, 0.26 s with 100,000 readings queued, 2.4 s with 1,000,000. Every 10 s that is 2 % of
# the broker's time in normal running and a quarter of it at a million-message backlog, for a
# crash (SIGKILL, power loss) that loses at most the last 10 s of readings queued for stopped
# workers. Counting changes instead (autosave_on_changes) would tie the saves to the message rate,
# and a reconnect storm or a backlog drain would then save back to back.
DEFAULT_AUTOSAVE_SECONDS = 10

_TOPIC_LEVEL = re.compile(r"[A-Za-z0-9_-]+")


class InvalidMeterIdError(ValueError):
    """A meter id that may not become an MQTT username."""


def validate_meter_id(meter_id: str) -> str:
    """Return ``meter_id`` if it may be a username and topic level; raise InvalidMeterIdError."""
    # fullmatch, not match: METER_ID_PATTERN ends in "$", which also matches before a final
    # newline, and a newline in a broker file or topic would be of the caller's choosing.
    if not METER_ID_PATTERN.fullmatch(meter_id):
        raise InvalidMeterIdError(
            f"invalid meter id {meter_id!r}: use 1-64 ASCII letters, digits, '-' or '_'"
        )
    if meter_id.lower().startswith(RESERVED_PREFIX):
        raise InvalidMeterIdError(
            f"invalid meter id {meter_id!r}: ids starting with {RESERVED_PREFIX!r} are reserved "
            "for meterhub's service accounts"
        )
    return meter_id


def validate_topic_prefix(topic_prefix: str) -> str:
    """A prefix is one or more plain topic levels (``meters``, ``utility/meters``), no wildcards."""
    levels = topic_prefix.split("/")
    if not all(_TOPIC_LEVEL.fullmatch(level) for level in levels):
        raise ValueError(f"invalid topic prefix {topic_prefix!r}: levels of [A-Za-z0-9_-] only")
    return topic_prefix


@dataclass(frozen=True, slots=True)
class TlsListener:
    """The TLS listener meters connect to (8883 is MQTT over TLS's registered port)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    port: int = 8883
    bind_address: str | None = None
    # True: every client must also present a certificate signed by ``cafile`` (mutual TLS), on top
    # of its username and password.
    require_certificate: bool = False


def mosquitto_conf_text(
    *,
    dynsec_plugin: Path,
    dynsec_state: Path,
    persistence_location: Path,
    tls: TlsListener | None,
    plain_port: int | None = None,
    plain_bind_address: str = "127.0.0.1",
    max_packet_size: int = 256 * 1024,
    max_queued_messages: int = 1_000_000,
    autosave_seconds: int = DEFAULT_AUTOSAVE_SECONDS,
    log_dest: str = "stderr",
    run_as_user: str | None = None,
) -> str:
    """A recommended mosquitto.conf (Mosquitto 2.0) for meterhub.

    ``dynsec_state``: the dynamic-security plugin's JSON state (``dynsec.state_json``), read once
    at broker start. ``run_as_user``: the account Mosquitto switches to when started as root (its
    default is ``mosquitto``); that account must be able to read the state and key files.
    """
    if tls is None and plain_port is None:
        raise ValueError("at least one listener: give tls and/or plain_port")
    if autosave_seconds < 1:
        raise ValueError(f"autosave_seconds must be at least 1, got {autosave_seconds}")
    lines = [
        "# Generated by meterhub broker mosquitto-config. Contains no secrets.",
        "",
    ]
    if run_as_user is not None:
        lines += [f"user {run_as_user}", ""]
    lines += [
        "# Who may connect, with which client id, and what each client may publish and",
        "# subscribe to: the dynamic-security plugin, one state for all listeners. Unlike an",
        "# acl_file it checks SUBSCRIBE, so a meter cannot join the ingest share or a wildcard.",
        "# Its state file is read at start only; meterhub rewrites it and sends live changes",
        "# to $CONTROL/dynamic-security (docs/security.md).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"plugin {dynsec_plugin}",
        f"plugin_opt_config_file {dynsec_state}",
        "",
        "# Ingest acknowledges a QoS 1 message only once it is committed to the database, so the",
        "# broker must allow many unacknowledged messages per subscriber (0 = no limit; MQTT 5",
        "# clients still bound it with their Receive Maximum) and queue many while a worker",
        "# restarts, instead of dropping them at the default of 1000.",
        "max_inflight_messages 0",
        f"max_queued_messages {max_queued_messages}",
        "# Refuse oversized packets at the broker (ingest refuses payloads above the same size).",
        f"max_packet_size {max_packet_size}",
        "",
        "# Keep retained status, sessions and queued QoS 1 messages across broker restarts.",
        "# Saved on a clean stop (SIGTERM) and every autosave_interval seconds: a crash",
        "# (SIGKILL, power loss) loses what arrived since the last save and no worker had",
        "# committed yet (docs/deploy.md).",
        "persistence true",
        f"persistence_location {persistence_location}/",
        f"autosave_interval {autosave_seconds}",
        "autosave_on_changes false",
        "",
        f"log_dest {log_dest}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    return "\n".join(lines + _listener_lines(tls, plain_port, plain_bind_address)) + "\n"


def _listener_lines(tls: TlsListener | None, plain_port: int | None, plain_bind: str) -> list[str]:
    """The TLS listener for meters and the plain one for meterhub's services on this host."""
    lines: list[str] = []
    if tls is not None:
        listen = f"listener {tls.port}" + (f" {tls.bind_address}" if tls.bind_address else "")
        lines += [
            "",
            "# Meters connect here: MQTT over TLS.",
            listen,
            f"cafile {tls.cafile}",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
            "tls_version tlsv1.2",
            f"require_certificate {'true' if tls.require_certificate else 'false'}",
        ]
    if plain_port is not None:
        lines += [
            "",
            "# Plain MQTT for meterhub's own services on this host only; still password-checked.",
            f"listener {plain_port} {plain_bind}",
        ]
    return lines
