"""Settings from METERHUB_* environment variables, optionally a TOML file (METERHUB_CONFIG).

A METERHUB_* variable that is no setting, or a key of the file that is none, is refused with the
name of the closest setting: an operator's typo would otherwise leave the default in force,
silently.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from datetime import time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PREFIX = "METERHUB_"
CONFIG_VARIABLE = "METERHUB_CONFIG"
# Variables with the prefix that are not settings: read where they are needed.
OTHER_VARIABLES = (CONFIG_VARIABLE, "METERHUB_EDGE_MQTT_URL")


class UnknownSettingError(ValueError):
    """A METERHUB_* variable or a key of the settings file that no setting reads."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    database_url: str = Field(
        default="sqlite:///data/meterhub.db",
        description="sqlite:///PATH or postgresql://user@host:port/db",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="mqtt://[user:password@]host:port or mqtts:// for TLS",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_client_cert: Path | None = None
    mqtt_client_key: Path | None = None
    topic_prefix: str = Field(default="meters", description="first level of every device topic")
    share_group: str = Field(default="meterhub-ingest", description="MQTT 5 shared group")
    worker_id: str = Field(default="", description="fixed client id; default meterhub-ingest-HOST")
    timezone: str = Field(default="UTC", description="the utility's time zone (IANA name)")
    # Bills cover cycle day to cycle day (local dates); 28 at most so every month has the day.
    bill_cycle_day: int = Field(default=1, ge=1, le=28)
    interval_minutes: int = Field(default=15, ge=1, le=1440)
    # How old a reading may be and still be accepted (late data horizon), and how far in the
    # future a meter clock may run before its reading is refused.
    max_age_days: int = Field(default=400, ge=1)
    max_future_seconds: int = Field(default=300, ge=0)
    # Gaps up to this length are interpolated and flagged estimated; longer spans stay estimated too
    # but raise a 'long_gap' event so that an operator sees the hole.
    short_gap_minutes: int = Field(default=120, ge=1)
    zero_streak_minutes: int = Field(default=360, ge=1)
    unknown_meters: Literal["reject", "register"] = "reject"
    batch_max: int = Field(default=5000, ge=1)
    batch_ms: int = Field(default=50, ge=1)
    # Meters whose intervals one deriver transaction recomputes; smaller keeps SQLite's single
    # write lock free for ingestion.
    derive_chunk_meters: int = Field(default=200, ge=1)
    max_payload_bytes: int = Field(default=256 * 1024, ge=1024)
    offline_after_seconds: int = Field(default=3600, ge=1)
    # Local state of this process: the ingest worker's crash journal (docs/mqtt-contract.md).
    data_dir: Path = Path("data")
    # The ingest worker publishes a probe to itself this often; a connection that delivers
    # nothing for three periods is dropped and made again (with its subscriptions).
    probe_seconds: float = Field(default=10.0, gt=0, le=3600)
    # The broker's dynamic-security state (docs/security.md), rewritten from the meters table by
    # meter add/replace/rotate-credential/import and broker sync.
    mosquitto_dynsec_file: Path | None = None
    # mqtt[s]://meterhub-admin:PASSWORD@host:port: meter changes reach the running broker at once.
    mosquitto_control_url: SecretStr | None = None
    # Run after a bulk change (meter import, broker sync --restart): the broker reads its state
    # file only when it starts. E.g. "sudo systemctl restart mosquitto".
    mosquitto_restart_command: str | None = None
    # Payment gateways (docs/payments.md); a gateway without its webhook secret is not offered.
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_key: SecretStr | None = None
    razorpay_webhook_secret: SecretStr | None = None
    razorpay_key_id: str | None = None
    razorpay_key_secret: SecretStr | None = None
    # Bill delivery (docs/delivery-and-prepaid.md): apprise URLs; empty turns a channel off.
    # {address} in a URL is replaced by the recipient; mailto(s):// URLs get to=ADDRESS added.
    email_url: str = Field(default="", description="e.g. mailtos://user:pass@smtp.host?from=...")
    sms_url: str = Field(default="", description="e.g. twilio://SID:TOKEN@+1555.../{address}")
    # Where a consumer can see the bill online; {number} and {bill_id} are filled in.
    bill_link_url: str = ""
    delivery_max_attempts: int = Field(default=5, ge=1)
    # Retry after base, 2*base, 4*base, ... seconds (capped at a day).
    delivery_retry_seconds: int = Field(default=300, ge=1)
    # Prepaid: warn once each time the balance falls below a level (account currency).
    prepaid_warning_levels: list[Decimal] = [Decimal(200), Decimal(50)]
    # Disconnection at zero only inside [from, until) local time, on these weekdays (Monday=0),
    # and not on the tariff's holidays (nor, if set, this country's holidays).
    prepaid_disconnect_from: time = time(9)
    prepaid_disconnect_until: time = time(16)
    prepaid_disconnect_weekdays: list[int] = [0, 1, 2, 3, 4]
    prepaid_holiday_country: str | None = None
    # Tariff documents for prepaid accounts not found in the tariffs table: DIR/<tariff_id>.yaml
    prepaid_tariff_dir: Path = Path("tariffs")

    @field_validator("topic_prefix")
    @classmethod
    def _one_topic_level(cls, value: str) -> str:
        # Ingest routes on exactly three levels: {prefix}/{meter id}/{kind}.
        if not value or any(c in value for c in "/+#\x00"):
            raise ValueError("topic_prefix must be one topic level without '/', '+' or '#'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises on an unknown zone name
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def effective_worker_id(self) -> str:
        return self.worker_id or f"meterhub-ingest-{os.uname().nodename}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        fields = list(settings_cls.model_fields)
        check_environment(os.environ, fields)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get(CONFIG_VARIABLE)
        if toml_path:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path))
            check_file_keys(toml.toml_data, fields, toml_path)
            sources.append(toml)
        return tuple(sources)


def check_environment(environ: Mapping[str, str], fields: Iterable[str]) -> None:
    """Raise ``UnknownSettingError`` naming every METERHUB_* variable that is no setting (the
    prefix and names are case-insensitive, as for the settings themselves)."""
    known = [PREFIX + name.upper() for name in fields] + list(OTHER_VARIABLES)
    unknown = sorted(
        key for key in environ if key.upper().startswith(PREFIX) and key.upper() not in known
    )
    if unknown:
        raise UnknownSettingError(
            "\n".join(_not_a_setting(key, key.upper(), known) for key in unknown)
        )


def check_file_keys(document: Mapping[str, Any], fields: Iterable[str], path: str) -> None:
    """Raise ``UnknownSettingError`` naming every key of the settings file that is no setting
    (case-insensitive, as the file is read)."""
    known = list(fields)
    unknown = sorted(key for key in document if key.lower() not in known)
    if unknown:
        raise UnknownSettingError(
            "\n".join(f"{path}: {_not_a_setting(key, key.lower(), known)}" for key in unknown)
        )


def _not_a_setting(name: str, compared: str, known: list[str]) -> str:
    # Compared without the prefix they all share, which would make any name look close.
    bare = {k.removeprefix(PREFIX): k for k in known}
    close = difflib.get_close_matches(compared.removeprefix(PREFIX), list(bare), n=1)
    hint = (
        f"did you mean {bare[close[0]]}?" if close else "the settings are in docs/configuration.md"
    )
    return f"{name} is not a setting; {hint}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
