"""Files that readers must see whole: replaced atomically, or created once and never overwritten."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _write_temporary(directory: Path, name: str, data: bytes, mode: int) -> Path:
    """``data`` in a new file beside ``name``, with ``mode``, flushed to disk."""
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return Path(tmp_name)


def atomic_write(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    A broker that starts at any moment sees the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = _write_temporary(path.parent, path.name, raw, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_new_file(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Create ``path`` with ``data``, whole or not at all; FileExistsError if it exists.

    The content is written and synced under a temporary name, then hard-linked to ``path``:
    ``link`` fails rather than replace an existing file, so nothing is ever overwritten, and no
    reader sees a partly written file under ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = _write_temporary(path.parent, path.name, raw, mode)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
