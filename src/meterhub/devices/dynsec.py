"""Mosquitto's dynamic-security state and ``$CONTROL`` commands for meterhub, built as data (pure).

Why the plugin and not ``password_file`` + ``acl_file``: Mosquitto 2.0's ``acl_file`` does not check
SUBSCRIBE, so a meter's credential could join the ingest workers' shared subscription
(``$share/meterhub-ingest/meters/+/readings``) and be handed half of all readings, which the ACL
then dropped at delivery: lost. The plugin checks subscriptions, and binds a client id to a
credential, so that no meter can take an ingest worker's (or another meter's) client id and wipe
its session.

The state (``state_document``):

* every client is denied by default (``defaultACLAccess``: no publish, no delivery, no subscribe;
  unsubscribing is harmless and allowed);
* each meter is a client whose username **and** client id are its meter id, with a role of its
  own that lets it publish its four uplink topics and subscribe to, and receive, its ``cmd``
  topic, literally (no wildcard, no ``$share``). Mosquitto 2.0's plugin has no ``%u`` in ACL
  topics (added in 2.1), hence one role per meter;
* the service accounts share roles by name and have no bound client id: several ingest workers
  share the ``meterhub-ingest`` username with distinct client ids. A meter cannot take theirs,
  because a meter's credential only works with its own id.

Passwords are stored as the plugin's ``password``/``salt``/``iterations``: exactly the digest,
salt and count of the ``$7$`` PBKDF2-SHA512 hashes in ``meters.credential_hash``, so the database
converts without any plaintext. The plugin reads this file at broker start only (not on SIGHUP);
live changes go through ``$CONTROL/dynamic-security/v1``, whose commands take plaintext
passwords in 2.0 (``add_meter_commands`` and friends).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from meterhub.devices import credentials, mosquitto

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# The ingest workers' self-test: a worker publishes to meterhub/probe/<its client id> and expects
# the message back; only the ingest account may use these topics.
PROBE_FILTER = "meterhub/probe/#"
# Mosquitto 2.0.11 refuses a stored client whose salt is not exactly this long (it skips the
# client silently at load), so the state builder refuses it first, loudly.
DYNSEC_SALT_BYTES = 12

# A $7$ hash whose salt has DYNSEC_SALT_BYTES (16 base64 characters) and whose digest has 64 bytes
# (88 characters, "==" padded): its two base64 fields are already what the plugin stores, so the
# state is built without decoding and encoding 100,000 hashes (checked against parse_hash in the
# tests). Anything else goes the long way, through credentials.parse_hash.
_PLUGIN_READY_HASH = re.compile(
    r"\$7\$([1-9][0-9]{0,7})\$([A-Za-z0-9+/]{16})\$([A-Za-z0-9+/]{86}==)"
)

DEFAULT_ACL_ACCESS: dict[str, bool] = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic layout the roles grant: ``<prefix>/<meter id>/<kind>``, one ingest share group."""

    prefix: str = "meters"
    # The ingest workers' MQTT 5 shared-subscription group; "" when they subscribe without one.
    share_group: str = "meterhub-ingest"

    def __post_init__(self) -> None:
        mosquitto.validate_topic_prefix(self.prefix)
        if self.share_group:
            if "/" in self.share_group:
                raise ValueError(f"invalid share group {self.share_group!r}: one topic level")
            mosquitto.validate_topic_prefix(self.share_group)


def meter_role_name(meter_id: str) -> str:
    # ":" cannot occur in a meter id or a service name, so meter roles never meet service roles.
    return f"meter:{meter_id}"


def _allow(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": True}


# (acl type, topic suffix) of every meter role; built once, as the state repeats it per meter.
_METER_ACLS: tuple[tuple[str, str], ...] = tuple(
    [("publishClientSend", suffix) for suffix in mosquitto.METER_WRITE_SUFFIXES]
    + [
        (acltype, suffix)
        for suffix in mosquitto.METER_READ_SUFFIXES
        for acltype in ("subscribeLiteral", "publishClientReceive")
    ]
)


def meter_role(meter_id: str, topics: Topics) -> dict[str, Any]:
    """The meter's own topics, literally: publish its uplink, subscribe to and receive its cmd."""
    base = f"{topics.prefix}/{mosquitto.validate_meter_id(meter_id)}/"
    return {
        "rolename": meter_role_name(meter_id),
        "acls": [
            {"acltype": acltype, "topic": base + suffix, "allow": True}
            for acltype, suffix in _METER_ACLS
        ],
    }


def service_role(account: str, topics: Topics) -> dict[str, Any]:
    """The role named after a service account, with what that service needs and no more."""
    p = topics.prefix
    acls: list[dict[str, Any]] = []
    if account == mosquitto.INGEST_ACCOUNT:
        for kind in mosquitto.METER_WRITE_SUFFIXES:
            if topics.share_group:
                acls.append(_allow("subscribePattern", f"$share/{topics.share_group}/{p}/+/{kind}"))
            acls.append(_allow("subscribePattern", f"{p}/+/{kind}"))
            acls.append(_allow("publishClientReceive", f"{p}/+/{kind}"))
        for acltype in ("publishClientSend", "subscribePattern", "publishClientReceive"):
            acls.append(_allow(acltype, PROBE_FILTER))
    elif account == mosquitto.CONTROL_ACCOUNT:
        acls.append(_allow("publishClientSend", f"{p}/+/cmd"))
        acls.append(_allow("subscribePattern", f"{p}/+/cmd/ack"))
        acls.append(_allow("publishClientReceive", f"{p}/+/cmd/ack"))
    elif account == mosquitto.SIM_ACCOUNT:
        # Speaks for every meter: test and demo brokers only.
        acls.append(_allow("publishClientSend", f"{p}/#"))
        acls.append(_allow("subscribePattern", f"{p}/+/cmd"))
        acls.append(_allow("publishClientReceive", f"{p}/+/cmd"))
    elif account == mosquitto.ADMIN_ACCOUNT:
        for acltype in ("publishClientSend", "subscribePattern", "publishClientReceive"):
            acls.append(_allow(acltype, "$CONTROL/dynamic-security/#"))
    else:
        raise ValueError(f"unknown service account {account!r}")
    return {"rolename": account, "acls": acls}


def password_fields(encoded: str) -> dict[str, Any]:
    """A ``$7$`` hash as the plugin's ``password`` (digest), ``salt`` and ``iterations``."""
    quick = _PLUGIN_READY_HASH.fullmatch(encoded)
    if quick is not None and int(quick[1]) <= credentials.MAX_ITERATIONS:
        return {"password": quick[3], "salt": quick[2], "iterations": int(quick[1])}
    iterations, salt, digest = credentials.parse_hash(encoded)
    if len(salt) != DYNSEC_SALT_BYTES:
        raise credentials.CredentialFormatError(
            f"salt of {len(salt)} bytes: the dynamic-security plugin needs {DYNSEC_SALT_BYTES}"
        )
    return {
        "password": base64.b64encode(digest).decode("ascii"),
        "salt": base64.b64encode(salt).decode("ascii"),
        "iterations": iterations,
    }


def encoded_hash(client: Mapping[str, Any]) -> str | None:
    """The ``$7$`` form of a stored client's password, or None if it has none."""
    password, salt, iterations = (
        client.get("password"),
        client.get("salt"),
        client.get("iterations"),
    )
    if not (isinstance(password, str) and isinstance(salt, str) and isinstance(iterations, int)):
        return None
    encoded = f"${credentials.MOSQUITTO_PBKDF2_ID}${iterations}${salt}${password}"
    try:
        credentials.parse_hash(encoded)
    except credentials.CredentialFormatError:
        return None
    return encoded


def meter_client(meter_id: str, credential_hash: str) -> dict[str, Any]:
    try:
        fields = password_fields(credential_hash)
    except credentials.CredentialFormatError as exc:
        raise ValueError(f"meter {meter_id!r}: credential hash unusable: {exc}") from exc
    return {
        "username": meter_id,
        # The credential works with this client id only: no meter can take another's session.
        "clientid": meter_id,
        **fields,
        "roles": [{"rolename": meter_role_name(meter_id)}],
    }


def service_client(account: str, credential_hash: str) -> dict[str, Any]:
    if account not in mosquitto.SERVICE_ACCOUNTS:
        raise ValueError(f"unknown service account {account!r}")
    try:
        fields = password_fields(credential_hash)
    except credentials.CredentialFormatError as exc:
        raise ValueError(f"service account {account!r}: hash unusable: {exc}") from exc
    # No client id: ingest workers share the username, each with its own id.
    return {"username": account, **fields, "roles": [{"rolename": account}]}


def state_document(
    meters: Iterable[tuple[str, str]], services: Mapping[str, str], topics: Topics
) -> dict[str, Any]:
    """The plugin's whole state: (meter id, hash) pairs plus service account -> hash."""
    clients: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    seen: set[str] = set()
    for meter_id, credential_hash in meters:
        if meter_id in seen:
            raise ValueError(f"duplicate meter {meter_id!r} in the broker state")
        seen.add(meter_id)
        roles.append(meter_role(meter_id, topics))
        clients.append(meter_client(meter_id, credential_hash))
    for account in sorted(services):
        roles.append(service_role(account, topics))
        clients.append(service_client(account, services[account]))
    return {
        "defaultACLAccess": dict(DEFAULT_ACL_ACCESS),
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def state_json(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document)


def service_hashes(document: Mapping[str, Any]) -> dict[str, str]:
    """The service accounts' hashes in a state file (meterhub's or the broker's own save)."""
    found: dict[str, str] = {}
    clients = document.get("clients")
    for client in clients if isinstance(clients, list) else []:
        if not isinstance(client, Mapping):
            continue
        username = client.get("username")
        if username in mosquitto.SERVICE_ACCOUNTS:
            encoded = encoded_hash(client)
            if encoded is not None:
                found[str(username)] = encoded
    return found


# -- live changes: $CONTROL/dynamic-security/v1 commands (plaintext passwords in 2.0) ----------


def add_meter_commands(meter_id: str, secret: str, topics: Topics) -> list[dict[str, Any]]:
    role = meter_role(meter_id, topics)
    return [
        {"command": "createRole", **role},
        {
            "command": "createClient",
            "username": meter_id,
            "password": secret,
            "clientid": meter_id,
            "roles": [{"rolename": role["rolename"]}],
        },
    ]


def set_password_commands(meter_id: str, secret: str) -> list[dict[str, Any]]:
    # The plugin disconnects the client on a password change: a leaked credential's session ends.
    return [{"command": "setClientPassword", "username": meter_id, "password": secret}]


def remove_meter_commands(meter_id: str) -> list[dict[str, Any]]:
    # deleteClient disconnects it. Its role stays in the running broker (unused) and is gone at
    # the next restart, from the file: deleting it too would cost another full save of the
    # plugin's state (about 1.3 s per command at 100,000 meters on Mosquitto 2.0.11).
    return [{"command": "deleteClient", "username": meter_id}]


# Errors that mean the broker already is as the command wants it.
BENIGN_ERRORS: dict[str, str] = {
    "createRole": "Role already exists",
    "deleteClient": "Client not found",
}


def failed(responses: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(command, error) of every response that reports a real failure."""
    failures = []
    for response in responses:
        command, error = str(response.get("command")), response.get("error")
        if error and BENIGN_ERRORS.get(command) != error:
            failures.append((command, str(error)))
    return failures
