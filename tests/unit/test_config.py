"""Settings refuse what no setting reads: a typo is named with the closest real name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from meterhub.config import Settings, UnknownSettingError


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("METERHUB_"):
            monkeypatch.delenv(key)


def test_a_misspelt_variable_is_refused_with_the_setting_it_resembles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METERHUB_DATABSE_URL", "postgresql://db/meterhub")
    with pytest.raises(UnknownSettingError) as refused:
        Settings()
    assert str(refused.value) == (
        "METERHUB_DATABSE_URL is not a setting; did you mean METERHUB_DATABASE_URL?"
    )


def test_every_unknown_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METERHUB_TIMEZNE", "Asia/Kathmandu")
    monkeypatch.setenv("METERHUB_CURRENCY", "USD")
    with pytest.raises(UnknownSettingError) as refused:
        Settings()
    assert str(refused.value).splitlines() == [
        "METERHUB_CURRENCY is not a setting; the settings are in docs/configuration.md",
        "METERHUB_TIMEZNE is not a setting; did you mean METERHUB_TIMEZONE?",
    ]


def test_names_are_case_insensitive_as_for_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("meterhub_timezone", "Asia/Kathmandu")
    assert Settings().timezone == "Asia/Kathmandu"
    monkeypatch.setenv("meterhub_timezon", "Asia/Kathmandu")
    with pytest.raises(UnknownSettingError, match="meterhub_timezon is not a setting"):
        Settings()


def test_variables_of_the_prefix_that_are_not_settings_are_still_allowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "meterhub.toml").write_text('TIMEZONE = "Asia/Kathmandu"\n')
    monkeypatch.setenv("METERHUB_CONFIG", str(tmp_path / "meterhub.toml"))
    monkeypatch.setenv("METERHUB_EDGE_MQTT_URL", "mqtts://M-1:secret@broker:8883")
    monkeypatch.setenv("OTHER_DATABSE_URL", "not ours")
    assert Settings().timezone == "Asia/Kathmandu"


def test_an_unknown_key_of_the_settings_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "meterhub.toml"
    path.write_text('databse_url = "postgresql://db/meterhub"\ntimezone = "UTC"\n')
    monkeypatch.setenv("METERHUB_CONFIG", str(path))
    with pytest.raises(UnknownSettingError) as refused:
        Settings()
    assert str(refused.value) == f"{path}: databse_url is not a setting; did you mean database_url?"


def test_every_setting_is_documented() -> None:
    # The refusal points operators at docs/configuration.md: every name must be found there.
    text = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    missing = [n for n in Settings.model_fields if f"METERHUB_{n.upper()}" not in text]
    assert missing == []
