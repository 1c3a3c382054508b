"""Mosquitto file builders: password file, ACL and mosquitto.conf text (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterhub.devices import credentials, mosquitto

HASH = credentials.hash_secret("pw", iterations=1)


@pytest.mark.parametrize("meter_id", ["MTR-0001", "a", "x_y-Z9", "m" * 64])
def test_valid_meter_ids_pass(meter_id: str) -> None:
    assert mosquitto.validate_meter_id(meter_id) == meter_id


@pytest.mark.parametrize(
    "meter_id",
    ["", "a/b", "a+", "#", "m" * 65, "a b", "a:b", "mé", "MTR-1\n", "MTR-1\nuser x"],
)
def test_meter_ids_that_could_break_acl_are_refused(meter_id: str) -> None:
    with pytest.raises(mosquitto.InvalidMeterIdError):
        mosquitto.validate_meter_id(meter_id)


@pytest.mark.parametrize("meter_id", ["meterhub-ingest", "MeterHub-control", "meterhub-x"])
def test_service_account_names_are_reserved(meter_id: str) -> None:
    with pytest.raises(mosquitto.InvalidMeterIdError, match="reserved"):
        mosquitto.validate_meter_id(meter_id)


def test_password_file_has_one_sorted_line_per_user() -> None:
    text = mosquitto.password_file_text([("m2", HASH), ("m1", HASH), ("meterhub-ingest", HASH)])
    assert text == f"m1:{HASH}\nm2:{HASH}\nmeterhub-ingest:{HASH}\n"


def test_password_file_refuses_duplicate_user() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        mosquitto.password_file_text([("m1", HASH), ("m1", HASH)])


def test_password_file_refuses_invalid_meter_id() -> None:
    with pytest.raises(mosquitto.InvalidMeterIdError):
        mosquitto.password_file_text([("m1/#", HASH)])


def test_password_file_refuses_non_mosquitto_hash() -> None:
    with pytest.raises(ValueError, match=r"\$7\$"):
        mosquitto.password_file_text([("m1", "plaintext")])


def test_password_file_round_trips_through_parser() -> None:
    text = mosquitto.password_file_text([("m1", HASH), ("meterhub-sim", HASH)])
    assert mosquitto.parse_password_file(text) == {"m1": HASH, "meterhub-sim": HASH}


def _acl_lines(topic_prefix: str = "meters") -> list[str]:
    text = mosquitto.acl_file_text(topic_prefix)
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_acl_meter_patterns_use_username() -> None:
    assert _acl_lines()[:5] == [
        "pattern write meters/%u/readings",
        "pattern write meters/%u/events",
        "pattern write meters/%u/status",
        "pattern write meters/%u/cmd/ack",
        "pattern read meters/%u/cmd",
    ]


def test_acl_patterns_come_before_any_user_block() -> None:
    lines = _acl_lines()
    first_user = next(i for i, line in enumerate(lines) if line.startswith("user "))
    assert all(not line.startswith("pattern") for line in lines[first_user:])


def test_acl_ingest_reads_every_meters_uplink_topics() -> None:
    lines = _acl_lines()
    block = lines[lines.index("user meterhub-ingest") + 1 :][:4]
    assert block == [
        "topic read meters/+/readings",
        "topic read meters/+/events",
        "topic read meters/+/status",
        "topic read meters/+/cmd/ack",
    ]


def test_acl_control_writes_commands_only() -> None:
    lines = _acl_lines()
    block = lines[lines.index("user meterhub-control") + 1 :][:2]
    assert block == ["topic write meters/+/cmd", "topic read meters/+/cmd/ack"]


def test_acl_uses_configured_topic_prefix() -> None:
    assert "pattern write utility/meters/%u/readings" in _acl_lines("utility/meters")


@pytest.mark.parametrize("prefix", ["", "meters/", "/meters", "meters/#", "me+ters", "a b"])
def test_acl_refuses_wildcard_or_empty_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="topic prefix"):
        mosquitto.acl_file_text(prefix)


def _conf(**overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "password_file": Path("/etc/mosquitto/passwd"),
        "acl_file": Path("/etc/mosquitto/acl"),
        "persistence_location": Path("/var/lib/mosquitto"),
        "tls": mosquitto.TlsListener(
            cafile=Path("/c/ca.crt"), certfile=Path("/c/s.crt"), keyfile=Path("/c/s.key")
        ),
    }
    kwargs.update(overrides)
    return mosquitto.mosquitto_conf_text(**kwargs).splitlines()  # type: ignore[arg-type]


def test_conf_denies_anonymous_and_names_auth_files() -> None:
    lines = _conf()
    assert "allow_anonymous false" in lines
    assert "per_listener_settings false" in lines
    assert "password_file /etc/mosquitto/passwd" in lines
    assert "acl_file /etc/mosquitto/acl" in lines


def test_conf_tls_listener_names_certificates() -> None:
    lines = _conf()
    start = lines.index("listener 8883")
    assert lines[start + 1 : start + 6] == [
        "cafile /c/ca.crt",
        "certfile /c/s.crt",
        "keyfile /c/s.key",
        "tls_version tlsv1.2",
        "require_certificate false",
    ]


def test_conf_mutual_tls_is_optional() -> None:
    tls = mosquitto.TlsListener(
        cafile=Path("/c/ca.crt"),
        certfile=Path("/c/s.crt"),
        keyfile=Path("/c/s.key"),
        require_certificate=True,
    )
    assert "require_certificate true" in _conf(tls=tls)


def test_conf_sets_ingest_throughput_limits() -> None:
    lines = _conf(max_packet_size=1000)
    assert "max_inflight_messages 0" in lines
    assert "max_queued_messages 1000000" in lines
    assert "max_packet_size 1000" in lines
    assert "persistence true" in lines


def test_conf_plain_listener_binds_loopback() -> None:
    assert "listener 1883 127.0.0.1" in _conf(plain_port=1883)


def test_conf_needs_a_listener() -> None:
    with pytest.raises(ValueError, match="listener"):
        _conf(tls=None)


def test_service_entries_refuse_unknown_account() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        mosquitto.service_password_entries({"root": HASH})
