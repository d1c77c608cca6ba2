"""kill -9 at random moments: every acknowledged message survives, exactly once."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory import JsonFileStore

RECORDER = Path(__file__).with_name("recorder.py")


async def stored_contents(data: Path) -> collections.Counter[str]:
    """Open the folder as a new process would (recovering the journal) and count contents."""
    counts: collections.Counter[str] = collections.Counter()
    async with JsonFileStore(data) as store:
        for ref in await store.list_conversations():
            conv = await store.load(ref.thread_id)
            assert conv is not None, f"conversation {ref.thread_id} unreadable after a crash"
            counts.update(m.message_content for m in conv.history)
    return counts


def run_and_kill(data: Path, fsync: str, run: int, rng: random.Random) -> set[str]:
    """Start a recorder, SIGKILL it at a random moment, return the contents it acknowledged."""
    process = subprocess.Popen(
        [sys.executable, str(RECORDER), str(data), fsync, str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        first = process.stdout.readline()
        assert first == "ready\n", first + process.stderr.read()  # type: ignore[union-attr]
        # Kill somewhere between "just started recording" and "well into idle evictions".
        time.sleep(rng.uniform(0.02, 0.6))
        os.kill(process.pid, signal.SIGKILL)
        output, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, errors
    acked = set()
    for line in output.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "ack":
            acked.add(parts[2])
    return acked


@pytest.mark.parametrize(("fsync", "kills"), [("everysec", 8), ("always", 4)])
async def test_kill_9_loses_and_duplicates_nothing(tmp_path: Path, fsync: str, kills: int) -> None:
    data = tmp_path / "data"
    rng = random.Random(fsync)
    acknowledged: set[str] = set()
    total_acks = 0
    for run in range(kills):
        acked = await asyncio.to_thread(run_and_kill, data, fsync, run, rng)
        total_acks += len(acked)
        acknowledged |= acked
        # Check after some kills only, so that the next recorder also replays a crashed journal.
        if run % 2 == 1 or run == kills - 1:
            counts = await stored_contents(data)
            missing = acknowledged - counts.keys()
            duplicated = {c: n for c, n in counts.items() if n > 1}
            assert not missing, (
                f"lost {len(missing)} acknowledged messages, e.g. {sorted(missing)[:5]}"
            )
            assert not duplicated, f"duplicated: {list(duplicated.items())[:5]}"
    assert total_acks > 100  # the recorders really were recording when killed
