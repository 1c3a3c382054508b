"""What the command line (and later the web app) asks of devices beyond the registry: bring the
broker in line with the meters table, and generate a broker's configuration.

The database is the source of truth. A change goes live first through the broker's ``$CONTROL``
topic (when METERHUB_MOSQUITTO_CONTROL_URL is set), then the state file is rewritten from the
table (when METERHUB_MOSQUITTO_DYNSEC_FILE is set): the file is the last word, read by the broker
at its next start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from meterhub.config import Settings
from meterhub.devices import broker_state, control, credentials, dynsec, mosquitto
from meterhub.devices.files import atomic_write

STATE_FILE_NAME = "dynamic-security.json"
# A packet is the payload plus topic and MQTT 5 properties: leave room for those above the payload
# limit, so that the broker refuses only what ingest would refuse anyway.
PACKET_HEADROOM_BYTES = 4096
# Mosquitto 2.0.11 saves its whole plugin state after each command (about 1.3 s at 100,000
# meters): allow for that on top of a round trip.
CONTROL_BASE_TIMEOUT_S = 30.0
CONTROL_PER_COMMAND_S = 15.0


def topics(settings: Settings) -> dynsec.Topics:
    return dynsec.Topics(prefix=settings.topic_prefix, share_group=settings.share_group)


@dataclass(frozen=True, slots=True)
class BrokerFollow:
    """What became of a change on the broker's side."""

    live: bool  # the running broker has it
    live_error: str | None  # why it does not, when a control URL was set
    control_configured: bool
    state_path: Path | None  # None: METERHUB_MOSQUITTO_DYNSEC_FILE is not set
    written: broker_state.StateWrite | None


def follow(settings: Settings, engine: Engine, commands: list[dict[str, Any]]) -> BrokerFollow:
    """Bring the broker in line with the database after a change to one or two meters.
    ``broker_state.BrokerStateError``: the state file could not be written."""
    url = settings.mosquitto_control_url
    live = False
    live_error = None
    if url is not None and commands:
        timeout = CONTROL_BASE_TIMEOUT_S + CONTROL_PER_COMMAND_S * len(commands)
        try:
            control.send_commands(
                url.get_secret_value(), commands, ca_file=settings.mqtt_ca_file, timeout=timeout
            )
            live = True
        except (control.ControlError, ValueError) as exc:
            live_error = str(exc)
    path = settings.mosquitto_dynsec_file
    written = None if path is None else broker_state.write_state(engine, path, topics(settings))
    return BrokerFollow(live, live_error, url is not None, path, written)


@dataclass(frozen=True, slots=True)
class BrokerConfigRequest:
    out: Path
    tls: mosquitto.TlsListener
    plain_port: int | None = None
    persistence_dir: Path | None = None
    autosave_seconds: int = mosquitto.DEFAULT_AUTOSAVE_SECONDS
    with_sim: bool = False
    dynsec_plugin: Path | None = None


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    conf_path: Path
    state_path: Path
    meters: int
    service_secrets: dict[str, str] = field(repr=False)  # shown once, never stored
    control_url: str = field(repr=False)


def write_broker_config(
    settings: Settings, engine: Engine, request: BrokerConfigRequest
) -> BrokerConfig:
    """mosquitto.conf and the dynamic-security state for the registered meters, with new service
    accounts. ``broker_state.BrokerStateError`` or ``ValueError`` when it cannot be written."""
    out = request.out.resolve()
    state_path = out / STATE_FILE_NAME
    accounts = mosquitto.PRODUCTION_ACCOUNTS + (
        (mosquitto.SIM_ACCOUNT,) if request.with_sim else ()
    )
    secrets = {name: credentials.generate_secret() for name in accounts}
    hashes = {name: credentials.hash_secret(s) for name, s in secrets.items()}
    written = broker_state.write_state(engine, state_path, topics(settings), services=hashes)
    conf = mosquitto.mosquitto_conf_text(
        dynsec_plugin=request.dynsec_plugin or broker_state.find_dynsec_plugin(),
        dynsec_state=state_path,
        persistence_location=request.persistence_dir or out / "data",
        tls=request.tls,
        plain_port=request.plain_port,
        max_packet_size=settings.max_payload_bytes + PACKET_HEADROOM_BYTES,
        autosave_seconds=request.autosave_seconds,
    )
    conf_path = out / "mosquitto.conf"
    atomic_write(conf_path, conf, mode=0o644)
    admin = secrets[mosquitto.ADMIN_ACCOUNT]
    plain = request.plain_port is not None
    port = request.plain_port if plain else request.tls.port
    scheme = "mqtt" if plain else "mqtts"
    control_url = f"{scheme}://{mosquitto.ADMIN_ACCOUNT}:{admin}@127.0.0.1:{port}"
    return BrokerConfig(conf_path, state_path, written.meters, secrets, control_url)
