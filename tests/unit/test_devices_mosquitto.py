"""Meter ids as MQTT usernames and the mosquitto.conf text (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterhub.devices import mosquitto


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


@pytest.mark.parametrize("prefix", ["meters", "utility/meters", "a_b-1"])
def test_plain_topic_prefixes_pass(prefix: str) -> None:
    assert mosquitto.validate_topic_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "meters/", "/meters", "meters/#", "me+ters", "a b"])
def test_wildcard_or_empty_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="topic prefix"):
        mosquitto.validate_topic_prefix(prefix)


def _conf(**overrides: object) -> list[str]:
    kwargs: dict[str, object] = {
        "dynsec_plugin": Path("/usr/lib/mosquitto_dynamic_security.so"),
        "dynsec_state": Path("/etc/mosquitto/meterhub/dynamic-security.json"),
        "persistence_location": Path("/var/lib/mosquitto"),
        "tls": mosquitto.TlsListener(
            cafile=Path("/c/ca.crt"), certfile=Path("/c/s.crt"), keyfile=Path("/c/s.key")
        ),
    }
    kwargs.update(overrides)
    return mosquitto.mosquitto_conf_text(**kwargs).splitlines()  # type: ignore[arg-type]


def test_conf_denies_anonymous_and_loads_the_dynamic_security_plugin() -> None:
    lines = _conf()
    assert "allow_anonymous false" in lines
    assert "per_listener_settings false" in lines
    assert "plugin /usr/lib/mosquitto_dynamic_security.so" in lines
    assert "plugin_opt_config_file /etc/mosquitto/meterhub/dynamic-security.json" in lines


def test_conf_has_no_password_or_acl_file() -> None:
    """acl_file would answer SUBSCRIBE checks first, with success, before the plugin."""
    assert not [line for line in _conf() if line.startswith(("password_file", "acl_file"))]


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


def test_conf_autosaves_on_a_timer_from_the_loss_budget() -> None:
    lines = _conf()
    assert f"autosave_interval {mosquitto.DEFAULT_AUTOSAVE_SECONDS}" in lines
    assert "autosave_on_changes false" in lines
    assert "autosave_interval 30" in _conf(autosave_seconds=30)


def test_conf_refuses_an_autosave_interval_below_one_second() -> None:
    # 0 would turn autosave off in Mosquitto: the crash window would be the whole uptime.
    with pytest.raises(ValueError, match="autosave"):
        _conf(autosave_seconds=0)


def test_conf_plain_listener_binds_loopback() -> None:
    assert "listener 1883 127.0.0.1" in _conf(plain_port=1883)


def test_conf_needs_a_listener() -> None:
    with pytest.raises(ValueError, match="listener"):
        _conf(tls=None)
