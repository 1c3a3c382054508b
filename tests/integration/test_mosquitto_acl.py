"""A real Mosquitto with meterhub's dynamic-security state and TLS listener refuses what it must.

The CA and server certificate are made with the openssl CLI and the broker runs from the files
that meterhub's own functions write (see mosquitto_support.py). Meters connect over TLS with their
own credential and, as the contract requires, their meter id as client id. Every wait is bounded;
the broker is stopped in a finalizer.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import typer
from mosquitto_support import WAIT_S, Broker, require_tools, running_broker
from paho.mqtt.client import MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import insert
from typer.testing import CliRunner

from meterhub.cli import meters as command
from meterhub.config import get_settings
from meterhub.devices import credentials, mosquitto
from meterhub.store import schema
from meterhub.store.db import make_engine
from meterhub.store.migrate import upgrade

pytestmark = pytest.mark.integration

# How long a message that the broker should drop is given to arrive anyway.
ABSENCE_WAIT_S = 1.5
NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10
# Mosquitto 2.0 answers 0x87 Not authorized; 0x86 Bad user name or password is as good.
BAD_CREDENTIALS = {0x86, 0x87}
INGEST_SHARE = "$share/meterhub-ingest/meters/+/readings"
WORKER_ID = "meterhub-ingest-host-1"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    require_tools()
    engine = make_engine(f"sqlite:///{tmp_path / 'meterhub.db'}")
    upgrade(engine)
    try:
        with running_broker(tmp_path, engine, autosave_seconds=1) as running:
            yield running
    finally:
        engine.dispose()


@dataclass
class Client:
    """A paho MQTT v5 client whose callbacks land in queues, so that tests wait with timeouts."""

    mqtt: mqtt.Client
    connack: queue.Queue[ReasonCode] = field(default_factory=queue.Queue)
    messages: queue.Queue[MQTTMessage] = field(default_factory=queue.Queue)
    received: list[MQTTMessage] = field(default_factory=list)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)
    disconnects: list[ReasonCode] = field(default_factory=list)
    acked: threading.Condition = field(default_factory=threading.Condition)

    def wait_puback(self, mid: int) -> ReasonCode:
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.pubacks, timeout=WAIT_S), "no PUBACK"
            return self.pubacks[mid]

    def wait_suback(self, mid: int) -> list[ReasonCode]:
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.subacks, timeout=WAIT_S), "no SUBACK"
            return self.subacks[mid]

    def subscribe(self, topic: str) -> int:
        """The SUBACK's single reason code (1 = granted QoS 1, 0x87 = not authorised)."""
        result, mid = self.mqtt.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        assert mid is not None
        [code] = self.wait_suback(mid)
        return int(code.value)

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.mqtt.publish(topic, payload, qos=1)
        return int(self.wait_puback(info.mid).value)

    def _drain(self, seconds: float) -> None:
        """Move what arrives within ``seconds`` into ``received`` (kept, never discarded)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.received.append(self.messages.get(timeout=left))
            except queue.Empty:
                return

    def on(self, topic: str) -> list[MQTTMessage]:
        return [message for message in self.received if message.topic == topic]

    def expect_messages(self, topic: str, count: int) -> list[MQTTMessage]:
        deadline = time.monotonic() + WAIT_S
        while len(self.on(topic)) < count and time.monotonic() < deadline:
            self._drain(0.05)
        got = self.on(topic)
        if len(got) < count:
            pytest.fail(f"{len(got)} of {count} messages on {topic} within {WAIT_S} s")
        return got

    def expect_nothing_on(self, topic: str) -> None:
        self._drain(ABSENCE_WAIT_S)
        delivered = [message.payload for message in self.on(topic)]
        assert delivered == [], f"{topic} was delivered: {delivered!r}"

    def wait_disconnected(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.mqtt.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.mqtt.is_connected()


def _client(client_id: str, username: str, password: str) -> Client:
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    paho.username_pw_set(username, password)
    holder = Client(paho)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        holder.connack.put(reason)

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        holder.disconnects.append(reason)

    def on_message(_c: Any, _u: Any, message: MQTTMessage) -> None:
        holder.messages.put(message)

    def on_publish(_c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with holder.acked:
            holder.pubacks[mid] = reason
            holder.acked.notify_all()

    def on_subscribe(_c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        with holder.acked:
            holder.subacks[mid] = reasons
            holder.acked.notify_all()

    paho.on_connect = on_connect
    paho.on_disconnect = on_disconnect
    paho.on_message = on_message
    paho.on_publish = on_publish
    paho.on_subscribe = on_subscribe
    return holder


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.mqtt.disconnect()
        client.mqtt.loop_stop()


def _connect(
    broker: Broker,
    clients: list[Client],
    username: str,
    password: str,
    *,
    client_id: str | None = None,
    tls: bool = True,
    persistent: bool = False,
) -> tuple[Client, ReasonCode]:
    """Connect; a meter's client id is its username unless the test says otherwise."""
    client = _client(client_id or username, username, password)
    clients.append(client)
    if tls:
        client.mqtt.tls_set(ca_certs=str(broker.ca))
    properties = None
    if persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
    # "localhost" so that the TLS hostname check runs against the certificate's SAN.
    client.mqtt.connect(
        "localhost",
        broker.tls_port if tls else broker.plain_port,
        keepalive=30,
        clean_start=not persistent,
        properties=properties,
    )
    client.mqtt.loop_start()
    try:
        reason = client.connack.get(timeout=WAIT_S)
    except queue.Empty:
        pytest.fail(f"no CONNACK for {username} within {WAIT_S} s:\n{broker.log.read_text()}")
    return client, reason


def _connected(broker: Broker, clients: list[Client], username: str, password: str) -> Client:
    client, reason = _connect(broker, clients, username, password)
    assert not reason.is_failure, f"{username}: {reason}"
    return client


def _service(
    broker: Broker, clients: list[Client], account: str, client_id: str, **options: Any
) -> Client:
    """A service account on the plain loopback listener, with a client id of its own."""
    client, reason = _connect(
        broker, clients, account, broker.services[account], client_id=client_id, tls=False,
        **options,
    )  # fmt: skip
    assert not reason.is_failure, reason
    return client


def _ingest(broker: Broker, clients: list[Client], client_id: str = WORKER_ID) -> Client:
    """An ingest worker: the ingest account, a persistent session, the shared subscription."""
    client = _service(broker, clients, mosquitto.INGEST_ACCOUNT, client_id, persistent=True)
    assert client.subscribe(INGEST_SHARE) == 1
    return client


def _control(broker: Broker, clients: list[Client]) -> Client:
    return _service(broker, clients, mosquitto.CONTROL_ACCOUNT, "meterhub-control-1")


# -- connecting ---------------------------------------------------------------------------------


def test_meter_added_while_the_broker_runs_publishes_its_reading_over_tls(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = _ingest(broker, clients)
    secret = broker.add_meters("MTR-1")["MTR-1"]  # pushed live: no restart, no reload
    meter = _connected(broker, clients, "MTR-1", secret)
    assert meter.publish("meters/MTR-1/readings", b'{"ts": 1, "import_kwh": 1.5}') == 0
    [message] = ingest.expect_messages("meters/MTR-1/readings", 1)
    assert message.payload == b'{"ts": 1, "import_kwh": 1.5}'


def test_wrong_password_is_refused(broker: Broker, clients: list[Client]) -> None:
    secret = broker.add_meters("MTR-1")["MTR-1"]
    _connected(broker, clients, "MTR-1", secret)  # the credential itself works
    _, reason = _connect(broker, clients, "MTR-1", secret + "x")
    assert reason.value in BAD_CREDENTIALS, str(reason)


def test_unknown_username_is_refused(broker: Broker, clients: list[Client]) -> None:
    _, reason = _connect(broker, clients, "MTR-404", credentials.generate_secret())
    assert reason.value in BAD_CREDENTIALS, str(reason)


def test_meter_cannot_take_an_ingest_workers_client_id(
    broker: Broker, clients: list[Client]
) -> None:
    ingest = _ingest(broker, clients)
    secrets = broker.add_meters("MTR-1", "MTR-2")
    _, reason = _connect(broker, clients, "MTR-1", secrets["MTR-1"], client_id=WORKER_ID)
    assert reason.value == NOT_AUTHORIZED, str(reason)
    # The worker's connection and session are untouched: it is still there and still subscribed.
    assert ingest.mqtt.is_connected() and ingest.disconnects == []
    other = _connected(broker, clients, "MTR-2", secrets["MTR-2"])
    assert other.publish("meters/MTR-2/readings", b'{"n": 1}') == 0
    ingest.expect_messages("meters/MTR-2/readings", 1)


def test_meter_cannot_take_another_meters_client_id(broker: Broker, clients: list[Client]) -> None:
    secrets = broker.add_meters("MTR-1", "MTR-2")
    victim = _connected(broker, clients, "MTR-2", secrets["MTR-2"])
    _, reason = _connect(broker, clients, "MTR-1", secrets["MTR-1"], client_id="MTR-2")
    assert reason.value == NOT_AUTHORIZED, str(reason)
    _, reason = _connect(broker, clients, "MTR-1", secrets["MTR-1"], client_id="MTR-1-backup")
    assert reason.value == NOT_AUTHORIZED, str(reason)
    assert victim.mqtt.is_connected() and victim.disconnects == []


def test_service_accounts_are_not_bound_to_one_client_id(
    broker: Broker, clients: list[Client]
) -> None:
    """Several ingest workers share the username, each with its own client id."""
    first = _ingest(broker, clients, "meterhub-ingest-a")
    second = _ingest(broker, clients, "meterhub-ingest-b")
    assert first.mqtt.is_connected() and second.mqtt.is_connected()


# -- subscribing --------------------------------------------------------------------------------


def test_meter_may_subscribe_to_its_own_commands_only(
    broker: Broker, clients: list[Client]
) -> None:
    secrets = broker.add_meters("MTR-1", "MTR-2")
    meter = _connected(broker, clients, "MTR-1", secrets["MTR-1"])
    refused = [
        INGEST_SHARE,
        "$share/meterhub-ingest/meters/+/events",
        "$share/other/meters/+/readings",
        "$share/mine/meters/MTR-1/cmd",
        "#",
        "meters/#",
        "meters/+/readings",
        "meters/MTR-2/readings",
        "meters/MTR-2/cmd",
        "meters/+/cmd",
        "meters/MTR-1/#",
        "meters/MTR-1/readings",
        "$CONTROL/dynamic-security/#",
        "$SYS/#",
    ]
    codes = {topic_filter: meter.subscribe(topic_filter) for topic_filter in refused}
    assert codes == dict.fromkeys(refused, NOT_AUTHORIZED)
    assert meter.subscribe("meters/MTR-1/cmd") == 1


def test_meter_cannot_join_the_ingest_share_and_take_readings(
    broker: Broker, clients: list[Client]
) -> None:
    """The attack of issue 13: a meter in the share would be handed half of all readings."""
    ingest = _ingest(broker, clients)
    secrets = broker.add_meters("MTR-1", "MTR-2")
    thief = _connected(broker, clients, "MTR-1", secrets["MTR-1"])
    assert thief.subscribe(INGEST_SHARE) == NOT_AUTHORIZED
    meter = _connected(broker, clients, "MTR-2", secrets["MTR-2"])
    for n in range(20):
        assert meter.publish("meters/MTR-2/readings", f'{{"n": {n}}}'.encode()) == 0
    assert len(ingest.expect_messages("meters/MTR-2/readings", 20)) == 20
    thief.expect_nothing_on("meters/MTR-2/readings")


def test_meter_reads_only_its_own_commands(broker: Broker, clients: list[Client]) -> None:
    secrets = broker.add_meters("MTR-1", "MTR-2")
    meter = _connected(broker, clients, "MTR-1", secrets["MTR-1"])
    assert meter.subscribe("meters/MTR-1/cmd") == 1
    control = _control(broker, clients)
    # Accepted (0x10: nobody subscribed to MTR-2's commands) and never given to MTR-1.
    assert control.publish("meters/MTR-2/cmd", b'{"id": "c2"}') == NO_MATCHING_SUBSCRIBERS
    assert control.publish("meters/MTR-1/cmd", b'{"id": "c1"}') == 0
    [command_1] = meter.expect_messages("meters/MTR-1/cmd", 1)
    assert command_1.payload == b'{"id": "c1"}'
    meter.expect_nothing_on("meters/MTR-2/cmd")


# -- publishing ---------------------------------------------------------------------------------


def test_meter_cannot_publish_as_another_meter(broker: Broker, clients: list[Client]) -> None:
    ingest = _ingest(broker, clients)
    secrets = broker.add_meters("MTR-1", "MTR-2")
    meter = _connected(broker, clients, "MTR-1", secrets["MTR-1"])
    assert meter.publish("meters/MTR-2/readings", b'{"ts": 1, "import_kwh": 99}') == NOT_AUTHORIZED
    assert meter.publish("meters/MTR-1/cmd", b'{"id": "self"}') == NOT_AUTHORIZED
    assert meter.publish("meterhub/probe/" + WORKER_ID, b"") == NOT_AUTHORIZED
    ingest.expect_nothing_on("meters/MTR-2/readings")


# -- the meter commands against the running broker ------------------------------------------------


runner = CliRunner()


@pytest.fixture
def cli(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    """`meterhub meter ...` configured for this broker: state file and $CONTROL URL."""
    monkeypatch.setenv(
        "METERHUB_DATABASE_URL", broker.engine.url.render_as_string(hide_password=False)
    )
    monkeypatch.setenv("METERHUB_MOSQUITTO_DYNSEC_FILE", str(broker.state))
    monkeypatch.setenv("METERHUB_MOSQUITTO_CONTROL_URL", broker.control_url)
    monkeypatch.delenv("METERHUB_MOSQUITTO_RESTART_COMMAND", raising=False)
    monkeypatch.delenv("METERHUB_CONFIG", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    command.register(app)
    yield app
    get_settings.cache_clear()


def _invoke(app: typer.Typer, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    assert "WARNING: the running broker was not updated" not in result.output
    return result.output


def _password(output: str) -> str:
    match = re.search(r"(?:MQTT password|New MQTT password for \S+): (\S+)", output)
    assert match, output
    return match.group(1)


def test_meter_add_reaches_the_running_broker_and_survives_a_restart(
    broker: Broker, clients: list[Client], cli: typer.Typer
) -> None:
    secret = _password(_invoke(cli, "meter", "add", "MTR-1"))
    _connected(broker, clients, "MTR-1", secret)  # at once
    broker.restart()  # from the state file the command rewrote
    _connected(broker, clients, "MTR-1", secret)


def test_rotation_ends_the_old_session_and_refuses_the_old_secret(
    broker: Broker, clients: list[Client], cli: typer.Typer
) -> None:
    old = _password(_invoke(cli, "meter", "add", "MTR-1"))
    session = _connected(broker, clients, "MTR-1", old)
    new = _password(_invoke(cli, "meter", "rotate-credential", "MTR-1"))
    session.wait_disconnected()  # a leaked credential's live session ends with the rotation
    _, reason = _connect(broker, clients, "MTR-1", old)
    assert reason.value in BAD_CREDENTIALS, str(reason)
    _connected(broker, clients, "MTR-1", new)
    broker.restart()
    _, reason = _connect(broker, clients, "MTR-1", old)
    assert reason.value in BAD_CREDENTIALS, str(reason)
    _connected(broker, clients, "MTR-1", new)


def test_a_replaced_meter_is_disconnected_and_refused(
    broker: Broker, clients: list[Client], cli: typer.Typer
) -> None:
    with broker.engine.begin() as conn:
        conn.execute(
            insert(schema.consumers).values(id="C-1", name="Asha", created_at=datetime.now(UTC))
        )
    old = _password(_invoke(cli, "meter", "add", "MTR-1", "--consumer", "C-1"))
    session = _connected(broker, clients, "MTR-1", old)
    output = _invoke(cli, "meter", "replace", "MTR-1", "MTR-2", "--at", "2026-01-01T00:00Z")
    new = _password(output)
    session.wait_disconnected()
    _, reason = _connect(broker, clients, "MTR-1", old)
    assert reason.value in BAD_CREDENTIALS, str(reason)
    _connected(broker, clients, "MTR-2", new)
    broker.restart()  # retired in the state file too
    _, reason = _connect(broker, clients, "MTR-1", old)
    assert reason.value in BAD_CREDENTIALS, str(reason)
    _connected(broker, clients, "MTR-2", new)


def test_imported_meters_connect_once_the_broker_has_restarted(
    broker: Broker, clients: list[Client], cli: typer.Typer, tmp_path: Path
) -> None:
    ingest = _ingest(broker, clients)
    csv_file = tmp_path / "meters.csv"
    csv_file.write_text("id,phase\n" + "".join(f"IMP-{n},1\n" for n in range(50)))
    out = tmp_path / "secrets.csv"
    _invoke(cli, "meter", "import", str(csv_file), "--credentials-out", str(out))
    secrets = dict(line.split(",")[::3] for line in out.read_text().splitlines()[1:])
    assert len(secrets) == 50
    # Not live: the batch is in the state file, which the broker reads when it starts.
    _, reason = _connect(broker, clients, "IMP-7", secrets["IMP-7"])
    assert reason.value in BAD_CREDENTIALS, str(reason)
    broker.restart()
    # Mosquitto restores the worker's session but not its shared subscription: the worker
    # subscribes again, as meterhub ingest does on every connection.
    ingest.wait_disconnected()
    again = _ingest(broker, clients)
    for meter_id in ("IMP-0", "IMP-7", "IMP-49"):
        meter = _connected(broker, clients, meter_id, secrets[meter_id])
        assert meter.publish(f"meters/{meter_id}/readings", b'{"n": 1}') == 0
        assert meter.subscribe(INGEST_SHARE) == NOT_AUTHORIZED
        again.expect_messages(f"meters/{meter_id}/readings", 1)


# -- persistence ----------------------------------------------------------------------------------


def test_readings_queued_for_a_stopped_worker_survive_a_crash_after_an_autosave(
    broker: Broker, clients: list[Client]
) -> None:
    """The generated conf autosaves (here every second): a SIGKILL after a save keeps them."""
    worker = _service(broker, clients, mosquitto.INGEST_ACCOUNT, WORKER_ID, persistent=True)
    assert worker.subscribe("meters/+/readings") == 1
    worker.mqtt.disconnect()
    worker.mqtt.loop_stop()
    secret = broker.add_meters("MTR-1")["MTR-1"]
    meter = _connected(broker, clients, "MTR-1", secret)
    for n in range(30):
        assert meter.publish("meters/MTR-1/readings", f'{{"n": {n}}}'.encode()) == 0
    acknowledged = time.time_ns()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # wait for the next autosave, whatever its moment
        if broker.persistence_file.exists() and (
            broker.persistence_file.stat().st_mtime_ns > acknowledged
        ):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no autosave within {WAIT_S} s")
    broker.kill()
    broker.start()
    back = _service(broker, clients, mosquitto.INGEST_ACCOUNT, WORKER_ID, persistent=True)
    got = back.expect_messages("meters/MTR-1/readings", 30)
    assert sorted(int(m.payload.split(b":")[1].strip(b" }")) for m in got) == list(range(30))
