"""The crash journal: what was in flight when a worker died, and what that makes of it."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from meterhub.ingest.crash_journal import CrashJournal, JournalState, decode, digest, encode

digests = st.binary(min_size=8, max_size=8)


@given(
    st.lists(digests, max_size=20),
    st.booleans(),
    st.sets(digests, max_size=5),
    st.sets(digests, max_size=5),
)
def test_a_state_survives_the_file(
    in_flight: list[bytes], alone: bool, suspects: set[bytes], culprits: set[bytes]
) -> None:
    state = JournalState(in_flight, alone, suspects, culprits)
    assert decode(encode(state)) == state


@given(st.binary(max_size=64))
def test_an_unreadable_file_means_nothing_was_in_flight(data: bytes) -> None:
    state = decode(data)
    if not data.startswith(b"MHJ1"):
        assert state == JournalState()


def test_the_digest_tells_topics_and_payloads_apart() -> None:
    assert digest("meters/A/readings", b"x") != digest("meters/B/readings", b"x")
    assert digest("meters/A/readings", b"x") != digest("meters/A/readings", b"y")
    assert digest("meters/A/readings", b"x") == digest("meters/A/readings", b"x")


def test_what_was_in_flight_at_a_crash_becomes_suspect(tmp_path: Path) -> None:
    first = CrashJournal(tmp_path / "j")
    first.open()
    first.working_on([b"a" * 8, b"b" * 8])
    # The process dies here: no idle(), no close().
    second = CrashJournal(tmp_path / "j")
    state = second.open()
    assert state.suspects == {b"a" * 8, b"b" * 8}
    assert not state.culprits


def test_a_suspect_in_flight_alone_at_a_second_crash_becomes_the_culprit(tmp_path: Path) -> None:
    first = CrashJournal(tmp_path / "j")
    first.open()
    first.working_on([b"a" * 8, b"b" * 8])
    second = CrashJournal(tmp_path / "j")
    second.open()
    second.working_on([b"b" * 8], alone=True)
    third = CrashJournal(tmp_path / "j")
    state = third.open()
    assert state.culprits == {b"b" * 8}
    assert state.suspects == {b"a" * 8}


def test_a_clean_stop_leaves_no_suspects(tmp_path: Path) -> None:
    first = CrashJournal(tmp_path / "j")
    first.open()
    first.working_on([b"a" * 8])
    first.idle()
    first.close()
    assert CrashJournal(tmp_path / "j").open() == JournalState()


def test_resolved_messages_are_not_carried_into_the_next_run(tmp_path: Path) -> None:
    first = CrashJournal(tmp_path / "j")
    first.open()
    first.working_on([b"a" * 8, b"b" * 8])
    second = CrashJournal(tmp_path / "j")
    second.open()
    second.resolved(b"a" * 8)
    second.working_on([b"c" * 8])
    third = CrashJournal(tmp_path / "j")
    assert third.open().suspects == {b"b" * 8, b"c" * 8}


def test_without_a_path_the_journal_lives_in_memory() -> None:
    journal = CrashJournal(None)
    assert journal.open() == JournalState()
    journal.working_on([b"a" * 8])
    journal.idle()
