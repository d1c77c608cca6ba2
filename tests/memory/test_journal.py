"""The journal's bookkeeping: which segments may go, which threads pin them."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.journal import Journal

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
