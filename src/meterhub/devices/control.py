"""Send commands to a running Mosquitto's ``$CONTROL/dynamic-security/v1`` and wait for the answer.

One short MQTT 5 connection per call, as the ``meterhub-admin`` account: subscribe to the
response topic, publish the commands (QoS 1), wait for the response that carries our correlation
data. Mosquitto 2.0.11 handles the commands one by one and rewrites the plugin's whole state after
each (about 1.3 s a command at 100,000 meters), so the wait grows with the command count.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from meterhub.devices import dynsec
from meterhub.mqtt import BrokerAddress, parse_broker_url


class ControlError(RuntimeError):
    """The broker could not be reached, refused the admin account, or failed a command."""


def send_commands(
    url: str,
    commands: Sequence[dict[str, Any]],
    *,
    ca_file: Path | None = None,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    """Run ``commands`` on the broker at ``url``; return its responses, in command order.

    ControlError if the connection, the subscription or any command (other than the benign
    "already so" answers in ``dynsec.BENIGN_ERRORS``) fails, or nothing comes back in time.
    """
    if not commands:
        return []
    address = parse_broker_url(url)
    tag = uuid.uuid4().hex
    payload = [{**command, "correlationData": f"{tag}-{n}"} for n, command in enumerate(commands)]
    done = threading.Event()
    state: dict[str, Any] = {}

    client = _admin_client(address, f"meterhub-admin-{tag[:12]}", ca_file)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            state["error"] = f"broker refused the admin account: {reason}"
            done.set()
            return
        c.subscribe(dynsec.CONTROL_RESPONSE_TOPIC, qos=1)

    def on_subscribe(c: mqtt.Client, _u: Any, _m: int, codes: list[ReasonCode], _p: Any) -> None:
        if any(code.is_failure for code in codes):
            state["error"] = f"broker refused the $CONTROL response subscription: {codes[0]}"
            done.set()
            return
        c.publish(dynsec.CONTROL_TOPIC, orjson.dumps({"commands": payload}), qos=1)

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            return
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            return
        ours = [
            r
            for r in responses
            if isinstance(r, dict) and str(r.get("correlationData", "")).startswith(tag)
        ]
        if ours:
            state["responses"] = ours
            done.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(address.host, address.port, keepalive=max(60, int(timeout) + 10))
    except OSError as exc:
        raise ControlError(
            f"cannot reach the broker at {address.host}:{address.port}: {exc}"
        ) from exc
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise ControlError(f"no answer from $CONTROL within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if "error" in state:
        raise ControlError(state["error"])
    return _answers_in_order(state["responses"], tag, len(payload))


def _admin_client(address: BrokerAddress, client_id: str, ca_file: Path | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if address.username is not None:
        client.username_pw_set(address.username, address.password)
    context = address.ssl_context(ca_file)
    if context is not None:
        client.tls_set_context(context)
    return client


def _answers_in_order(responses: list[dict[str, Any]], tag: str, sent: int) -> list[dict[str, Any]]:
    """The broker's answers to our ``sent`` commands in command order; ControlError if one
    failed (other than "already so") or one is missing."""
    order = {f"{tag}-{n}": n for n in range(sent)}
    responses.sort(key=lambda r: order.get(str(r.get("correlationData")), len(order)))
    failures = dynsec.failed(responses)
    if failures:
        raise ControlError("; ".join(f"{command}: {error}" for command, error in failures))
    if len(responses) != sent:
        raise ControlError(f"{sent} commands sent, {len(responses)} answered")
    return responses
