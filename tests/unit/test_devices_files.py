"""Files seen whole: atomic replacement, and creation that never overwrites."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from meterhub.devices.files import atomic_write, create_new_file


def _leftovers(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_atomic_write_replaces_the_file_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "state.json"
    atomic_write(target, "old")
    atomic_write(target, b"new", mode=0o640)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _leftovers(target.parent) == []


def test_create_new_file_writes_once_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "secrets.csv"
    create_new_file(target, "meter_id,mqtt_password\n")
    assert target.read_text() == "meter_id,mqtt_password\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert _leftovers(tmp_path) == []


def test_create_new_file_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "secrets.csv"
    target.write_text("the first import's secrets")
    with pytest.raises(FileExistsError):
        create_new_file(target, "other secrets")
    assert target.read_text() == "the first import's secrets"
    assert _leftovers(tmp_path) == []
