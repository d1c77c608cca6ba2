"""The journal's bookkeeping: which segments may go, which threads pin them; and what an
earlier process left that cannot be read is kept, never destroyed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from memory import JsonFileStore
from memory.recording.journal import Journal
from memory.records.mutations import Append, Create, encode

from .test_store_contract import chat, conversation

pytestmark = pytest.mark.asyncio


def _line(n: int) -> bytes:
    return b'{"op":"append","n":%d}\n' % n


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.log"))


async def test_a_sealed_segment_goes_only_when_every_thread_in_it_is_saved(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path, fsync="no", segment_bytes=40)
    journal.open()
    try:
        a1 = await journal.append("a", _line(1))
        b1 = await journal.append("b", _line(2))
        await journal.append("c", _line(3))  # seals the first segment (a, b), opens a second
        assert journal.segment_count == 2
        assert journal.pinned_threads() == {"a", "b"}

        journal.mark_saved("a", a1)
        assert journal.pinned_threads() == {"b"}
        assert len(_files(tmp_path)) == 2

        journal.mark_saved("b", b1 - 1)  # saved through an earlier record only: still pinned
        assert journal.pinned_threads() == {"b"}

        journal.mark_saved("b", b1)
        assert journal.pinned_threads() == set()
        assert len(_files(tmp_path)) == 1
    finally:
        await journal.close()


async def test_a_record_written_after_a_save_pins_its_thread_again(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="no", segment_bytes=1 << 20)
    journal.open()
    try:
        first = await journal.append("a", _line(1))
        await journal.append("b", _line(2))
        journal.mark_saved("a", first)
        later = await journal.append("a", _line(3))
        journal.mark_saved("b", 2)
        # "a" has an unsaved record in the open segment: it must not be sealed and dropped.
        assert journal.segment_count == 1
        assert len(_files(tmp_path)) == 1
        journal.mark_saved("a", later)
        # Nothing live is left: the open segment was sealed and deleted.
        assert journal.segment_count == 0
        assert _files(tmp_path) == []
    finally:
        await journal.close()


async def test_many_threads_saved_one_by_one_free_every_segment(tmp_path: Path) -> None:
    journal = Journal(tmp_path, fsync="no", segment_bytes=4096)
    journal.open()
    try:
        positions = {}
        for n in range(3000):
            thread = f"t{n % 1000}"
            positions[thread] = await journal.append(thread, _line(n))
        assert journal.segment_count > 10
        for thread, position in positions.items():
            journal.mark_saved(thread, position)
        assert journal.segment_count == 0
        assert _files(tmp_path) == []
        assert journal.pinned_threads() == set()
        # Threads with nothing left in any segment are forgotten (bounded bookkeeping)...
        assert not journal._saved
        # ...and a thread seen again is tracked afresh.
        again = await journal.append("t1", _line(1))
        assert journal.segment_count == 1
        journal.mark_saved("t1", again)
        assert journal.segment_count == 0
    finally:
        await journal.close()


# --- what an earlier process left -----------------------------------------------------------

GARBAGE = b"\x1b\xff\x00 not a record \xfe"


def _kept(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _leftover(folder: Path, number: int, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{number:020d}.log"
    path.write_bytes(data)
    return path


async def test_unreadable_lines_are_kept_aside_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = _leftover(
        tmp_path, 3, _line(1) + GARBAGE + b"\n" + _line(2) + b"[1, 2]\n" + _line(3) + b'{"op":"ap'
    )
    clean = _leftover(tmp_path, 4, _line(4) + b'{"op":"append","n"')  # only a torn last record
    caplog.set_level(logging.INFO, logger="memory")
    journal = Journal(tmp_path, fsync="no")
    journal.open()
    try:
        assert [r.data["n"] for r in journal.read_leftovers()] == [1, 2, 3, 4]
        journal.discard_leftovers()
    finally:
        await journal.close()
    # The damaged segment is kept whole under a name no start reads again; the one that only
    # ends in a record a crash cut short held nothing unreadable, and goes.
    kept = _kept(tmp_path)
    assert list(kept) == [f"{damaged.name}.corrupt"]
    assert kept[f"{damaged.name}.corrupt"].count(GARBAGE) == 1
    assert not clean.exists()
    assert f"2 unreadable record(s) kept in {damaged.name}.corrupt" in caplog.text
    assert "torn last record" in caplog.text


async def test_a_damaged_tail_is_kept_but_a_torn_record_is_not(tmp_path: Path) -> None:
    """A crash mid-write leaves the start of a record (or zeros); anything else is damage."""
    torn = _leftover(tmp_path, 1, _line(1) + b'{"op":"append","thr')
    zeros = _leftover(tmp_path, 2, _line(2) + b"\0" * 512)
    damaged = _leftover(tmp_path, 3, _line(3) + GARBAGE)
    journal = Journal(tmp_path, fsync="no")
    journal.open()
    try:
        assert [r.data["n"] for r in journal.read_leftovers()] == [1, 2, 3]
        journal.discard_leftovers()
    finally:
        await journal.close()
    assert not torn.exists() and not zeros.exists()
    assert (tmp_path / f"{damaged.name}.corrupt").read_bytes() == _line(3) + GARBAGE


async def test_a_segment_set_aside_twice_keeps_both_copies(tmp_path: Path) -> None:
    for round_ in (1, 2):
        _leftover(tmp_path, 5, _line(round_) + GARBAGE + b"\n")
        journal = Journal(tmp_path, fsync="no")
        journal.open()
        try:
            assert [r.data["n"] for r in journal.read_leftovers()] == [round_]
            journal.discard_leftovers()
        finally:
            await journal.close()
    kept = _kept(tmp_path)
    name = f"{5:020d}.log"
    assert kept == {
        f"{name}.corrupt": _line(1) + GARBAGE + b"\n",
        f"{name}.corrupt.2": _line(2) + GARBAGE + b"\n",
    }


async def test_the_store_replays_what_it_can_read_and_keeps_what_it_cannot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A line that is JSON but no record this version can apply (a flipped byte in a field
    name, a bad id) is unreadable too: kept with its segment, not dropped."""
    data = tmp_path / "data"
    bad_message = json.loads(encode(Append("11", chat("x"))))
    bad_message["message"]["message_tipe"] = bad_message["message"].pop("message_type")
    bad_id = {**json.loads(encode(Append("11", chat("y")))), "thread_id": "eleven"}
    lines = [
        encode(Create(conversation("11"))),
        encode(Append("11", chat("before"))),
        json.dumps(bad_message).encode() + b"\n",
        GARBAGE + b"\n",
        json.dumps(bad_id).encode() + b"\n",
        encode(Append("11", chat("after"))),
    ]
    segment = _leftover(data / "journal", 9, b"".join(lines))
    caplog.set_level(logging.INFO, logger="memory")
    async with JsonFileStore(data) as store:
        loaded = await store.load("11")
    assert loaded is not None
    assert [m.message_content for m in loaded.history] == ["before", "after"]
    aside = data / "journal" / f"{segment.name}.corrupt"
    assert aside.read_bytes() == b"".join(lines)
    assert f"3 unreadable record(s) kept in {aside.name}" in caplog.text
    async with JsonFileStore(data) as store:  # the next start replays nothing twice
        again = await store.load("11")
    assert again is not None and len(again.history) == 2
    assert [p.name for p in (data / "journal").glob("*.corrupt*")] == [aside.name]


async def test_a_segment_of_garbage_is_a_few_log_lines_and_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = _leftover(tmp_path, 2, (GARBAGE + b"\n") * 5000 + _line(1))
    caplog.set_level(logging.INFO, logger="memory")
    journal = Journal(tmp_path, fsync="no")
    journal.open()
    try:
        assert [r.data["n"] for r in journal.read_leftovers()] == [1]
        journal.discard_leftovers()
    finally:
        await journal.close()
    assert len(caplog.records) <= 6, caplog.text
    assert f"5000 unreadable record(s) kept in {damaged.name}.corrupt" in caplog.text
