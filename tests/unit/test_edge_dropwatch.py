"""A full spool is told once when it starts dropping, recalled while it goes on, and at its end."""

from __future__ import annotations

from meterhub.edge.dropwatch import DropNotice, DropWatch, Phase


def test_an_episode_is_told_once_then_recalled_then_ended() -> None:
    watch = DropWatch(reminder_s=60)
    assert watch.observe(0, now=0) is None  # nothing dropped, nothing to say
    assert watch.observe(1, now=10) == DropNotice(Phase.STARTED, 1, 0.0)
    assert [watch.observe(1, now=10 + s) for s in range(1, 60)] == [None] * 59
    assert watch.observe(2, now=70) == DropNotice(Phase.CONTINUING, 62, 60.0)
    assert watch.observe(1, now=100) is None
    assert watch.observe(0, now=101) == DropNotice(Phase.STOPPED, 63, 91.0)
    assert watch.observe(0, now=102) is None


def test_a_new_episode_starts_over() -> None:
    watch = DropWatch(reminder_s=60)
    watch.observe(5, now=0)
    watch.observe(0, now=1)
    assert watch.observe(3, now=500) == DropNotice(Phase.STARTED, 3, 0.0)
