"""The spool: FIFO order, bounds with oldest-first drops, a persistent drop counter."""

from __future__ import annotations

from pathlib import Path

import pytest

from meterhub.edge.spool import Spool


def payloads(spool: Spool) -> list[bytes]:
    return [m.payload for m in spool.peek(10_000)]


def test_fifo_peek_after_and_delete(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    ids = [spool.append("t", f"m{i}".encode()) for i in range(5)]
    assert payloads(spool) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.id for m in spool.peek(2, after_id=ids[1])] == ids[2:4]
    assert spool.delete([ids[0], ids[2], 999]) == 2
    assert payloads(spool) == [b"m1", b"m3", b"m4"]
    assert len(spool) == 3
    assert spool.size_bytes == 6


def test_max_messages_drops_oldest_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_messages=3)
    for i in range(10):
        spool.append("t", f"m{i}".encode())
    assert payloads(spool) == [b"m7", b"m8", b"m9"]
    assert spool.dropped == 7
    assert spool.dropped_bytes == 14


def test_max_bytes_drops_oldest(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_bytes=10)
    for payload in (b"aaaa", b"bbbb", b"cccc", b"dd"):
        spool.append("t", payload)
    # 4 + 4 + 4 = 12 > 10 drops "aaaa"; then 4 + 4 + 2 = 10 fits
    assert payloads(spool) == [b"bbbb", b"cccc", b"dd"]
    assert spool.dropped == 1
    assert spool.size_bytes == 10
    spool.append("t", b"x" * 11)  # larger than the whole bound: everything goes, itself too
    assert len(spool) == 0
    assert spool.dropped == 5


def test_survives_a_restart_with_order_and_counter(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = Spool(path, max_messages=2)
    for i in range(4):
        spool.append("meters/M1/readings", f"m{i}".encode())
    spool.close()
    again = Spool(path, max_messages=2)
    assert payloads(again) == [b"m2", b"m3"]
    assert again.dropped == 2
    assert again.size_bytes == 4
    again.append("meters/M1/readings", b"m4")
    assert payloads(again) == [b"m3", b"m4"]
    assert again.dropped == 3
    [first, _] = again.peek(2)
    assert first.topic == "meters/M1/readings"


def test_ids_never_reused_after_delete(tmp_path: Path) -> None:
    # AUTOINCREMENT: a resend cursor (peek after_id) must never skip a new message.
    spool = Spool(tmp_path / "s.db")
    last = spool.append("t", b"a")
    spool.delete([last])
    assert spool.append("t", b"b") > last


def test_bounds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path / "s.db", max_messages=0)


def test_each_append_says_how_many_it_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_messages=2)
    spool.append("t", b"a")
    spool.append("t", b"b")
    assert spool.last_append_dropped == 0
    spool.append("t", b"c")
    assert spool.last_append_dropped == 1
    spool.delete([m.id for m in spool.peek(2)])
    spool.append("t", b"d")
    assert spool.last_append_dropped == 0
