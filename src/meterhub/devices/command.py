"""CLI: ``meterhub meter add|replace|rotate-credential|list`` and
``meterhub broker mosquitto-config``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from meterhub.cli_time import local_instant
from meterhub.config import Settings, get_settings
from meterhub.devices import credentials, mosquitto, registry
from meterhub.store.db import make_engine

SHOWN_ONCE = "Store it in the meter now: it is not shown again (only its hash is kept)."
SERVICE_SHOWN_ONCE = "Store them in your secret store now: they are not shown again."
# A packet is the payload plus topic and MQTT 5 properties: leave room for those above the payload
# limit, so that the broker refuses only what ingest would refuse anyway.
PACKET_HEADROOM_BYTES = 4096

PidFileOption = Annotated[
    Path | None,
    typer.Option(
        "--broker-pid-file",
        help="Mosquitto's pid file: send it SIGHUP after rewriting its files, so it reloads them.",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _sync_broker(settings: Settings, pid_file: Path | None) -> None:
    """Rewrite the broker's files when settings name them; keep the service accounts they hold."""
    passwd_path, acl_path = settings.mosquitto_passwd_file, settings.mosquitto_acl_file
    if passwd_path is None or acl_path is None:
        typer.echo(
            "Broker files not rewritten (METERHUB_MOSQUITTO_PASSWD_FILE and "
            "METERHUB_MOSQUITTO_ACL_FILE are not set)."
        )
        return
    pid = int(pid_file.read_text().strip()) if pid_file is not None else None
    count = registry.write_broker_files(
        make_engine(settings.database_url),
        passwd_path,
        acl_path,
        registry.read_service_accounts(passwd_path),
        topic_prefix=settings.topic_prefix,
        mosquitto_pid=pid,
    )
    reloaded = f"; sent SIGHUP to mosquitto (pid {pid})" if pid is not None else ""
    typer.echo(f"Wrote {passwd_path} ({count} meters) and {acl_path}{reloaded}.")


meter_app = typer.Typer(help="Register meters and manage their MQTT credentials.")
broker_app = typer.Typer(help="Broker authentication and ACL files.")


@meter_app.command("add")
def meter_add(
    meter_id: Annotated[str, typer.Argument(help="meter id = its MQTT username")],
    consumer: Annotated[str | None, typer.Option("--consumer", help="consumer id")] = None,
    transformer: Annotated[str | None, typer.Option("--transformer", help="transformer id")] = None,
    sanctioned_kw: Annotated[float | None, typer.Option("--sanctioned-kw")] = None,
    phase: Annotated[int, typer.Option("--phase", help="1 or 3")] = 1,
    lat: Annotated[float | None, typer.Option("--lat")] = None,
    lon: Annotated[float | None, typer.Option("--lon")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    firmware: Annotated[str | None, typer.Option("--firmware")] = None,
    role: Annotated[str, typer.Option("--role")] = "consumer",
    installed_at: Annotated[
        str | None,
        typer.Option(
            "--installed-at",
            help="with --consumer: when the supply began (a move-in), ISO 8601; without an "
            "offset, in METERHUB_TIMEZONE. The first bill covers the days from then.",
        ),
    ] = None,
    broker_pid_file: PidFileOption = None,
) -> None:
    """Register a meter and create its MQTT credential (printed once)."""
    settings = get_settings()
    since = None if installed_at is None else _instant(installed_at, "--installed-at", settings)
    try:
        secret = registry.add_meter(
            make_engine(settings.database_url),
            meter_id,
            consumer_id=consumer,
            transformer_id=transformer,
            sanctioned_load_kw=sanctioned_kw,
            phase=phase,
            latitude=lat,
            longitude=lon,
            model=model,
            firmware=firmware,
            role=role,
            installed_at=since,
        )
    except (registry.RegistryError, mosquitto.InvalidMeterIdError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Registered meter {meter_id}.")
    typer.echo(f"MQTT username: {meter_id}")
    typer.echo(f"MQTT password: {secret}")
    typer.echo(f"WARNING: {SHOWN_ONCE}")
    _sync_broker(settings, broker_pid_file)


def _instant(text: str, option: str, settings: Settings) -> datetime:
    try:
        return local_instant(text, option, settings.zone)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


@meter_app.command("replace")
def meter_replace(
    old: Annotated[str, typer.Argument(help="the meter taken out")],
    new: Annotated[str, typer.Argument(help="the meter put in (registered here if it is not)")],
    at: Annotated[
        str,
        typer.Option(
            "--at",
            help="when the swap happened, ISO 8601; without an offset, in METERHUB_TIMEZONE",
        ),
    ],
    final_reading: Annotated[
        float | None, typer.Option("--final-reading", help="old meter's register at removal, kWh")
    ] = None,
    initial_reading: Annotated[
        float | None, typer.Option("--initial-reading", help="new meter's register, kWh")
    ] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    broker_pid_file: PidFileOption = None,
) -> None:
    """Record a meter replacement: the consumer's next bill counts the old meter up to AT and
    the new one after it."""
    settings = get_settings()
    when = _instant(at, "--at", settings)
    try:
        done = registry.replace_meter(
            make_engine(settings.database_url),
            old,
            new,
            when,
            final_reading_kwh=final_reading,
            initial_reading_kwh=initial_reading,
            note=note,
        )
    except (registry.RegistryError, mosquitto.InvalidMeterIdError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"Meter {new} replaced {old} at consumer {done.consumer_id} from {when.isoformat()}."
    )
    if done.registered_secret is not None:
        typer.echo(f"Registered meter {new}. MQTT password: {done.registered_secret}")
        typer.echo(f"WARNING: {SHOWN_ONCE}")
    _sync_broker(settings, broker_pid_file)


@meter_app.command("rotate-credential")
def meter_rotate_credential(
    meter_id: Annotated[str, typer.Argument()],
    broker_pid_file: PidFileOption = None,
) -> None:
    """Give a meter a new credential; the old one stops working when the broker reloads."""
    settings = get_settings()
    try:
        secret = registry.rotate_credential(make_engine(settings.database_url), meter_id)
    except registry.RegistryError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"New MQTT password for {meter_id}: {secret}")
    typer.echo(f"WARNING: {SHOWN_ONCE}")
    _sync_broker(settings, broker_pid_file)


@meter_app.command("list")
def meter_list() -> None:
    """List registered meters (never their credentials)."""
    rows = registry.list_meters(make_engine(get_settings().database_url))
    typer.echo(f"{'id':<24} {'consumer':<16} {'role':<16} {'status':<16} phase  credential")
    for row in rows:
        typer.echo(
            f"{row.id:<24} {row.consumer_id or '-':<16} {row.role:<16} {row.status:<16} "
            f"{row.phase:<6} {'yes' if row.has_credential else 'no'}"
        )
    typer.echo(f"{len(rows)} meters")


@broker_app.command("mosquitto-config")
def broker_mosquitto_config(
    out: Annotated[Path, typer.Option("--out", help="directory for mosquitto.conf, passwd, acl")],
    tls_port: Annotated[int, typer.Option("--tls-port")] = 8883,
    cafile: Annotated[Path, typer.Option("--cafile")] = Path("/etc/mosquitto/certs/ca.crt"),
    certfile: Annotated[Path, typer.Option("--certfile")] = Path("/etc/mosquitto/certs/server.crt"),
    keyfile: Annotated[Path, typer.Option("--keyfile")] = Path("/etc/mosquitto/certs/server.key"),
    require_certificate: Annotated[bool, typer.Option("--require-certificate")] = False,
    plain_port: Annotated[
        int | None, typer.Option("--plain-port", help="extra listener on 127.0.0.1 for services")
    ] = None,
    persistence_dir: Annotated[Path | None, typer.Option("--persistence-dir")] = None,
) -> None:
    """Write mosquitto.conf, passwd and acl for the registered meters plus new service accounts."""
    settings = get_settings()
    out = out.resolve()
    passwd_path, acl_path = out / "passwd", out / "acl"
    service_secrets = {name: credentials.generate_secret() for name in mosquitto.SERVICE_ACCOUNTS}
    service_hashes = {name: credentials.hash_secret(s) for name, s in service_secrets.items()}
    try:
        count = registry.write_broker_files(
            make_engine(settings.database_url),
            passwd_path,
            acl_path,
            service_hashes,
            topic_prefix=settings.topic_prefix,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    conf = mosquitto.mosquitto_conf_text(
        password_file=passwd_path,
        acl_file=acl_path,
        persistence_location=persistence_dir or out / "data",
        tls=mosquitto.TlsListener(
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            port=tls_port,
            require_certificate=require_certificate,
        ),
        plain_port=plain_port,
        max_packet_size=settings.max_payload_bytes + PACKET_HEADROOM_BYTES,
    )
    registry.atomic_write(out / "mosquitto.conf", conf, mode=0o644)
    typer.echo(f"Wrote {out / 'mosquitto.conf'}, {passwd_path} ({count} meters) and {acl_path}.")
    typer.echo("Service account passwords (put them in each service's METERHUB_MQTT_URL):")
    for name, secret in service_secrets.items():
        typer.echo(f"  {name}: {secret}")
    typer.echo(f"WARNING: {SERVICE_SHOWN_ONCE}")


def register(app: typer.Typer) -> None:
    """Add the ``meter`` and ``broker`` sub-commands to the meterhub CLI."""
    app.add_typer(meter_app, name="meter")
    app.add_typer(broker_app, name="broker")
