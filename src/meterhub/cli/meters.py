"""CLI: ``meterhub meter add|replace|rotate-credential|import|list`` and
``meterhub broker mosquitto-config|sync``."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from meterhub.config import Settings, get_settings
from meterhub.devices import (
    broker_state,
    dynsec,
    importer,
    meter_rules,
    mosquitto,
    registry,
    service,
)
from meterhub.readings.local_time import local_instant
from meterhub.store.db import make_engine

SHOWN_ONCE = "Store it in the meter now: it is not shown again (only its hash is kept)."
SERVICE_SHOWN_ONCE = "Store them in your secret store now: they are not shown again."


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def _follow(settings: Settings, commands: list[dict[str, Any]]) -> None:
    """Bring the broker in line with the database after a change; say what happened."""
    try:
        done = service.follow(settings, make_engine(settings.database_url), commands)
    except broker_state.BrokerStateError as exc:
        raise _fail(str(exc)) from exc
    if done.live_error is not None:
        typer.echo(
            f"WARNING: the running broker was not updated ({done.live_error}); it takes the "
            "change from its state file when it restarts.",
            err=True,
        )
    if done.written is None:
        typer.echo("Broker state file not written (METERHUB_MOSQUITTO_DYNSEC_FILE is not set).")
    else:
        typer.echo(
            f"Wrote {done.state_path} ({done.written.meters} meters, {done.written.seconds:.1f} s)."
        )
    if done.live:
        typer.echo("The running broker has the change.")
    elif not done.control_configured:
        typer.echo(
            "The running broker does not have it yet: set METERHUB_MOSQUITTO_CONTROL_URL to apply "
            "changes at once, or restart the broker."
        )


meter_app = typer.Typer(help="Register meters and manage their MQTT credentials.")
broker_app = typer.Typer(help="The broker's configuration and dynamic-security state.")


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
    _follow(settings, dynsec.add_meter_commands(meter_id, secret, service.topics(settings)))


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
    commands: list[dict[str, Any]] = []
    if done.registered_secret is not None:
        typer.echo(f"Registered meter {new}. MQTT password: {done.registered_secret}")
        typer.echo(f"WARNING: {SHOWN_ONCE}")
        commands += dynsec.add_meter_commands(new, done.registered_secret, service.topics(settings))
    # The old meter is retired: its credential stops working and its session is ended.
    _follow(settings, commands + dynsec.remove_meter_commands(old))


@meter_app.command("rotate-credential")
def meter_rotate_credential(
    meter_id: Annotated[str, typer.Argument()],
) -> None:
    """Give a meter a new credential; the old one stops working when the broker has the change
    (at once with METERHUB_MOSQUITTO_CONTROL_URL, which also ends the meter's live session)."""
    settings = get_settings()
    try:
        secret = registry.rotate_credential(make_engine(settings.database_url), meter_id)
    except registry.RegistryError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"New MQTT password for {meter_id}: {secret}")
    typer.echo(f"WARNING: {SHOWN_ONCE}")
    _follow(settings, dynsec.set_password_commands(meter_id, secret))


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


@meter_app.command("import")
def meter_import(
    csv_file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header: id (required), consumer, transformer, sanctioned_kw, phase, "
            "lat, lon, model, firmware, role, installed_at (the options of meter add)"
        ),
    ],
    credentials_out: Annotated[
        Path,
        typer.Option(
            "--credentials-out",
            help="new file for the meters' MQTT passwords (mode 0600); never overwritten",
        ),
    ],
    restart: Annotated[
        bool,
        typer.Option(
            "--restart/--no-restart",
            help="run METERHUB_MOSQUITTO_RESTART_COMMAND once the broker state is written",
        ),
    ] = True,
) -> None:
    """Register many meters at once: all rows or none, secrets written once to a file."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    started = time.monotonic()
    try:
        result = importer.import_file(engine, csv_file, credentials_out, zone=settings.zone)
    except meter_rules.RowsError as exc:
        raise _fail(f"{csv_file}: {exc}") from exc
    except importer.CredentialsFileExistsError as exc:
        raise _fail(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {csv_file}: {exc}") from exc
    typer.echo(
        f"Registered {result.meters} meters in {time.monotonic() - started:.1f} s (checks "
        f"{result.parse_s:.1f} s, hashing {result.hash_s:.1f} s, "
        f"database {result.database_s:.1f} s)."
    )
    typer.echo(
        f"Their MQTT passwords are in {result.credentials_path} (mode 0600); each meter's MQTT "
        "username and client id are its meter id. Deliver them, then delete the file."
    )
    path = settings.mosquitto_dynsec_file
    if path is None:
        typer.echo("Broker state file not written (METERHUB_MOSQUITTO_DYNSEC_FILE is not set).")
        return
    try:
        written = broker_state.write_state(engine, path, service.topics(settings))
    except broker_state.BrokerStateError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Wrote {path} ({written.meters} meters, {written.seconds:.1f} s).")
    _restart(settings, restart)


def _restart(settings: Settings, wanted: bool) -> None:
    command = settings.mosquitto_restart_command
    if not wanted or not command:
        typer.echo(
            "Restart the broker to load it"
            + ("." if wanted is False else " (METERHUB_MOSQUITTO_RESTART_COMMAND is not set).")
        )
        return
    try:
        seconds = broker_state.restart_broker(command)
    except broker_state.BrokerStateError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Restarted the broker ({command}, {seconds:.1f} s): it has the new state.")


@broker_app.command("mosquitto-config")
def broker_mosquitto_config(
    out: Annotated[
        Path,
        typer.Option("--out", help="directory for mosquitto.conf and dynamic-security.json"),
    ],
    tls_port: Annotated[int, typer.Option("--tls-port")] = 8883,
    cafile: Annotated[Path, typer.Option("--cafile")] = Path("/etc/mosquitto/certs/ca.crt"),
    certfile: Annotated[Path, typer.Option("--certfile")] = Path("/etc/mosquitto/certs/server.crt"),
    keyfile: Annotated[Path, typer.Option("--keyfile")] = Path("/etc/mosquitto/certs/server.key"),
    require_certificate: Annotated[bool, typer.Option("--require-certificate")] = False,
    plain_port: Annotated[
        int | None, typer.Option("--plain-port", help="extra listener on 127.0.0.1 for services")
    ] = None,
    persistence_dir: Annotated[Path | None, typer.Option("--persistence-dir")] = None,
    autosave_seconds: Annotated[
        int,
        typer.Option(
            "--autosave-seconds",
            min=1,
            help="seconds between persistence saves: what a broker crash may lose at most",
        ),
    ] = mosquitto.DEFAULT_AUTOSAVE_SECONDS,
    with_sim: Annotated[
        bool,
        typer.Option(
            "--with-sim", help="also create meterhub-sim, which speaks for every meter: tests only"
        ),
    ] = False,
    dynsec_plugin: Annotated[
        Path | None,
        typer.Option("--dynsec-plugin", help="mosquitto_dynamic_security.so (found if not given)"),
    ] = None,
) -> None:
    """Write mosquitto.conf and the dynamic-security state for the registered meters, with new
    service accounts (passwords printed once)."""
    settings = get_settings()
    request = service.BrokerConfigRequest(
        out=out,
        tls=mosquitto.TlsListener(
            cafile=cafile,
            certfile=certfile,
            keyfile=keyfile,
            port=tls_port,
            require_certificate=require_certificate,
        ),
        plain_port=plain_port,
        persistence_dir=persistence_dir,
        autosave_seconds=autosave_seconds,
        with_sim=with_sim,
        dynsec_plugin=dynsec_plugin,
    )
    try:
        made = service.write_broker_config(settings, make_engine(settings.database_url), request)
    except (broker_state.BrokerStateError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Wrote {made.conf_path} and {made.state_path} ({made.meters} meters).")
    typer.echo("Service account passwords (put them in each service's METERHUB_MQTT_URL):")
    for name, secret in made.service_secrets.items():
        typer.echo(f"  {name}: {secret}")
    typer.echo(
        "For meter add/replace/rotate-credential to reach the running broker at once: "
        f"METERHUB_MOSQUITTO_CONTROL_URL={made.control_url}"
    )
    typer.echo(f"And METERHUB_MOSQUITTO_DYNSEC_FILE={made.state_path}")
    typer.echo(f"WARNING: {SERVICE_SHOWN_ONCE}")


@broker_app.command("sync")
def broker_sync(
    restart: Annotated[
        bool,
        typer.Option("--restart", help="then run METERHUB_MOSQUITTO_RESTART_COMMAND"),
    ] = False,
) -> None:
    """Rewrite the broker's state file from the meters table (service accounts kept)."""
    settings = get_settings()
    path = settings.mosquitto_dynsec_file
    if path is None:
        raise _fail("METERHUB_MOSQUITTO_DYNSEC_FILE is not set")
    if not path.exists():
        raise _fail(f"{path} does not exist: run meterhub broker mosquitto-config first")
    try:
        written = broker_state.write_state(
            make_engine(settings.database_url), path, service.topics(settings)
        )
    except broker_state.BrokerStateError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"Wrote {path} ({written.meters} meters; service accounts: {', '.join(written.services)})."
    )
    if restart and not settings.mosquitto_restart_command:
        raise _fail("--restart needs METERHUB_MOSQUITTO_RESTART_COMMAND")
    _restart(settings, restart)


def register(app: typer.Typer) -> None:
    """Add the ``meter`` and ``broker`` sub-commands to the meterhub CLI."""
    app.add_typer(meter_app, name="meter")
    app.add_typer(broker_app, name="broker")
