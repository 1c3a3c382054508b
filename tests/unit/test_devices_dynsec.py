"""The dynamic-security state and $CONTROL commands meterhub builds (no broker; the broker's
behaviour with them is tests/integration/test_mosquitto_acl.py)."""

from __future__ import annotations

import base64
import hashlib
import string

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterhub.devices import credentials, dynsec, mosquitto

TOPICS = dynsec.Topics()
HASH = credentials.hash_secret("pw", iterations=1)
meter_ids = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=64)
valid_meter_ids = meter_ids.filter(lambda m: not m.lower().startswith("meterhub-"))


def _acls(role: dict[str, object]) -> list[tuple[str, str]]:
    acls = role["acls"]
    assert isinstance(acls, list)
    assert all(acl["allow"] is True for acl in acls)
    return [(acl["acltype"], acl["topic"]) for acl in acls]


def test_a_meter_role_grants_its_own_topics_literally() -> None:
    role = dynsec.meter_role("MTR-1", TOPICS)
    assert role["rolename"] == "meter:MTR-1"
    assert _acls(role) == [
        ("publishClientSend", "meters/MTR-1/readings"),
        ("publishClientSend", "meters/MTR-1/events"),
        ("publishClientSend", "meters/MTR-1/status"),
        ("publishClientSend", "meters/MTR-1/cmd/ack"),
        ("subscribeLiteral", "meters/MTR-1/cmd"),
        ("publishClientReceive", "meters/MTR-1/cmd"),
    ]


@given(valid_meter_ids)
def test_no_meter_role_holds_a_wildcard_a_share_or_another_meters_topic(meter_id: str) -> None:
    for acltype, topic in _acls(dynsec.meter_role(meter_id, TOPICS)):
        assert acltype in ("publishClientSend", "subscribeLiteral", "publishClientReceive")
        assert topic.split("/")[:2] == ["meters", meter_id]
        assert not set(topic) & set("+#$")


def test_a_meter_client_is_bound_to_its_id_and_role() -> None:
    client = dynsec.meter_client("MTR-1", HASH)
    assert client["username"] == client["clientid"] == "MTR-1"
    assert client["roles"] == [{"rolename": "meter:MTR-1"}]


@given(st.text(max_size=40), st.integers(min_value=1, max_value=50))
def test_password_fields_are_the_stored_hash_and_convert_back(secret: str, iterations: int) -> None:
    encoded = credentials.hash_secret(secret, iterations=iterations)
    fields = dynsec.password_fields(encoded)
    # What the plugin computes at CONNECT: PBKDF2-SHA512 of the password over the stored salt.
    digest = hashlib.pbkdf2_hmac(
        "sha512", secret.encode(), base64.b64decode(fields["salt"]), fields["iterations"], 64
    )
    assert base64.b64decode(fields["password"]) == digest
    assert dynsec.encoded_hash(fields) == encoded


@given(
    st.binary(min_size=1, max_size=24),
    st.binary(min_size=64, max_size=64),
    st.integers(min_value=1, max_value=credentials.MAX_ITERATIONS),
)
def test_the_quick_conversion_agrees_with_the_full_parse(
    salt: bytes, digest: bytes, iterations: int
) -> None:
    encoded = (
        f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )
    if len(salt) != dynsec.DYNSEC_SALT_BYTES:
        with pytest.raises(credentials.CredentialFormatError):
            dynsec.password_fields(encoded)
        return
    assert dynsec.password_fields(encoded) == {
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
    }


@pytest.mark.parametrize(
    "encoded",
    [
        "$7$0$" + "A" * 16 + "$" + "A" * 86 + "==",
        "$7$99999999$" + "A" * 16 + "$" + "A" * 86 + "==",
        "$7$1$" + "A" * 16 + "$" + "A" * 88,
        "$6$1$" + "A" * 16 + "$" + "A" * 86 + "==",
        "$7$1$" + "A" * 15 + "!$" + "A" * 86 + "==",
    ],
)
def test_malformed_hashes_are_refused(encoded: str) -> None:
    with pytest.raises(credentials.CredentialFormatError):
        dynsec.password_fields(encoded)


def test_a_salt_the_plugin_would_skip_is_refused_by_name() -> None:
    odd = credentials.hash_secret("pw", iterations=1, salt=b"sixteen bytes!!!")
    with pytest.raises(ValueError, match=r"meter 'MTR-1'.*salt of 16 bytes"):
        dynsec.meter_client("MTR-1", odd)


def test_everything_is_closed_by_default_but_unsubscribing() -> None:
    document = dynsec.state_document([], {}, TOPICS)
    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_the_state_holds_each_meter_and_the_given_services_only() -> None:
    services = {mosquitto.INGEST_ACCOUNT: HASH, mosquitto.ADMIN_ACCOUNT: HASH}
    document = dynsec.state_document([("M-1", HASH), ("M-2", HASH)], services, TOPICS)
    assert [c["username"] for c in document["clients"]] == [
        "M-1",
        "M-2",
        "meterhub-admin",
        "meterhub-ingest",
    ]
    assert [r["rolename"] for r in document["roles"]] == [
        "meter:M-1",
        "meter:M-2",
        "meterhub-admin",
        "meterhub-ingest",
    ]
    assert orjson.loads(dynsec.state_json(document)) == document


def test_service_accounts_have_no_bound_client_id() -> None:
    """Ingest workers share the username with distinct client ids."""
    for account in mosquitto.SERVICE_ACCOUNTS:
        assert "clientid" not in dynsec.service_client(account, HASH)


def test_a_duplicate_meter_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate meter 'M-1'"):
        dynsec.state_document([("M-1", HASH), ("M-1", HASH)], {}, TOPICS)


def test_an_unknown_service_account_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown service account"):
        dynsec.state_document([], {"root": HASH}, TOPICS)


def test_ingest_may_join_its_share_group_only() -> None:
    acls = _acls(dynsec.service_role(mosquitto.INGEST_ACCOUNT, TOPICS))
    subscribe = [topic for acltype, topic in acls if acltype == "subscribePattern"]
    assert "$share/meterhub-ingest/meters/+/readings" in subscribe
    assert [t for t in subscribe if t.startswith("$share/")] == [
        f"$share/meterhub-ingest/meters/+/{kind}" for kind in mosquitto.METER_WRITE_SUFFIXES
    ]
    assert ("publishClientSend", dynsec.PROBE_FILTER) in acls
    assert ("publishClientReceive", "meters/+/readings") in acls
    # It reads what meters send; it never writes where meters read.
    assert [t for a, t in acls if a == "publishClientSend"] == [dynsec.PROBE_FILTER]


def test_without_a_share_group_ingest_subscribes_plainly() -> None:
    topics = dynsec.Topics(prefix="utility", share_group="")
    subscribe = [
        topic
        for acltype, topic in _acls(dynsec.service_role(mosquitto.INGEST_ACCOUNT, topics))
        if acltype == "subscribePattern"
    ]
    assert "utility/+/readings" in subscribe
    assert not [t for t in subscribe if t.startswith("$share")]


def test_control_sends_commands_and_reads_acks() -> None:
    assert _acls(dynsec.service_role(mosquitto.CONTROL_ACCOUNT, TOPICS)) == [
        ("publishClientSend", "meters/+/cmd"),
        ("subscribePattern", "meters/+/cmd/ack"),
        ("publishClientReceive", "meters/+/cmd/ack"),
    ]


def test_only_the_admin_role_reaches_control_topics() -> None:
    for account in mosquitto.SERVICE_ACCOUNTS:
        reaches = any(
            topic.startswith("$CONTROL") for _, topic in _acls(dynsec.service_role(account, TOPICS))
        )
        assert reaches == (account == mosquitto.ADMIN_ACCOUNT)


@pytest.mark.parametrize("group", ["a/b", "a+", "#", ""])
def test_a_share_group_is_one_plain_level_or_none(group: str) -> None:
    if group:
        with pytest.raises(ValueError):
            dynsec.Topics(share_group=group)
    else:
        assert dynsec.Topics(share_group=group).share_group == ""


def test_service_hashes_come_back_from_a_state_and_meters_stay_out() -> None:
    services = {mosquitto.INGEST_ACCOUNT: HASH, mosquitto.CONTROL_ACCOUNT: HASH}
    document = dynsec.state_document([("M-1", HASH)], services, TOPICS)
    assert dynsec.service_hashes(document) == services


def test_service_hashes_read_the_brokers_own_save() -> None:
    """Mosquitto saves the state itself after a $CONTROL command: same fields, pretty-printed,
    with fields of its own."""
    fields = dynsec.password_fields(HASH)
    saved = orjson.dumps(
        {
            "defaultACLAccess": {},
            "clients": [
                {"username": "meterhub-ingest", "textname": "x", "roles": [], **fields},
                {"username": "M-1", "clientid": "M-1", "roles": []},
                {
                    "username": "meterhub-sim",
                    "password": "not base64!",
                    "salt": "",
                    "iterations": 1,
                },
            ],
        },
        option=orjson.OPT_INDENT_2,
    )
    assert dynsec.service_hashes(orjson.loads(saved)) == {"meterhub-ingest": HASH}


def test_adding_a_meter_live_creates_its_role_then_its_bound_client() -> None:
    role, client = dynsec.add_meter_commands("MTR-1", "s3cret", TOPICS)
    assert role == {"command": "createRole", **dynsec.meter_role("MTR-1", TOPICS)}
    assert client == {
        "command": "createClient",
        "username": "MTR-1",
        "password": "s3cret",
        "clientid": "MTR-1",
        "roles": [{"rolename": "meter:MTR-1"}],
    }


def test_rotation_and_retirement_are_one_command_each() -> None:
    assert dynsec.set_password_commands("M", "pw") == [
        {"command": "setClientPassword", "username": "M", "password": "pw"}
    ]
    assert dynsec.remove_meter_commands("M") == [{"command": "deleteClient", "username": "M"}]


def test_only_real_failures_count() -> None:
    responses = [
        {"command": "createRole", "error": "Role already exists"},
        {"command": "createClient"},
        {"command": "deleteClient", "error": "Client not found"},
        {"command": "createClient", "error": "Client already exists"},
        {"command": "setClientPassword", "error": "Client not found"},
    ]
    assert dynsec.failed(responses) == [
        ("createClient", "Client already exists"),
        ("setClientPassword", "Client not found"),
    ]
