"""The demo's in-process MQTT broker (amqtt): MQTT 3.1.1, anonymous, loopback only.

Good for a few thousand messages a second, which is what the demo's fleet sends. Production uses
Mosquitto or a broker cluster (docs/scale-out.md).
"""

from __future__ import annotations

import socket
from typing import Any

from amqtt.broker import Broker


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {
            "default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 1000}
        },
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def start_broker(port: int) -> Broker:
    broker = Broker(broker_config(port))
    await broker.start()
    return broker
