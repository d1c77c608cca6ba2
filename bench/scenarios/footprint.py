"""Scenario 5, footprint: the memory of 10,000 active conversations of 20 messages against the
size of their JSON, and the cost of the idle clock at 100,000 active conversations.

* RAM: a fresh process writes the conversations (``_workload``: a person's 40-60-word message
  and Echo's answer in turn) as Echo's files; another fresh process opens the store and the
  manager and makes all of them active (``get_or_resume``: parsed from their files, as after a
  restart). Its RSS growth is set against the bytes of those files on disk (the baseline).
  Each process is a subprocess, so nothing of another scenario is in its RSS.
* Idle clock: ``IdleClock`` (one ordered dict for every conversation, one sweeper task) with
  100,000 keys, against the naive ways: one ``loop.call_later`` timer per conversation
  (cancelled and made again at every message), and one asyncio task per conversation sleeping
  until it is idle (cancelled and started again at every message). Python heap per
  conversation (tracemalloc) and the cost of one message's "activity" (us), each in a fresh
  process.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.framework import Row, Scenario, Target, scratch_dir

NAME = "footprint"
TITLE = "Footprint: RAM of active conversations, idle clock at 100,000"

ROOT = Path(__file__).resolve().parents[2]
GOAL_X = 4.0
_DISTINCT = 500
IDLE = 300.0


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# --- child processes ---------------------------------------------------------------------------


def _write(folder: Path, count: int, per: int) -> None:
    """The conversations as the store writes them (``Conversation.to_json``, the bytes
    ``JsonFileStore.save`` renders), straight to their files. The text of 500 conversations is
    made and used again for the others, with their own thread id (the messages' ids repeat
    from one conversation to another, never inside one): making 200,000 messages of text
    would cost more than the measurement, and it changes nothing in it."""
    from bench.scenarios import _workload as w
    from memory import Conversation

    guild = folder / "guilds" / w.GUILD_ID
    guild.mkdir(parents=True, exist_ok=True)
    made: list[str] = []
    for i in range(count):
        conversation = Conversation(
            thread_id=w.thread_id(i),
            channel_id=w.CHANNEL_ID,
            guild_id=w.GUILD_ID,
            guild_name="Bench guild",
            requester=w.requester(i),
            created_at=w.START,
            updated_at=w.START,
        )
        if i < _DISTINCT:
            for message in w.conversation_messages(i, per):
                conversation.add_message(message)
            made.append(conversation.to_json())
            text = made[-1]
        else:
            base = i % _DISTINCT  # the same requester: both are i modulo 50
            old, new = f'"thread_id": "{w.thread_id(base)}"', f'"thread_id": "{w.thread_id(i)}"'
            text = made[base].replace(old, new, 1)
        (guild / conversation.filename).write_bytes(text.encode())


async def _resume(folder: Path, count: int) -> dict[str, Any]:
    from bench.scenarios import _workload as w
    from memory import InMemoryConversationManager, JsonFileStore

    store = JsonFileStore(folder, fsync="no")
    async with InMemoryConversationManager(store=store, idle_time=3600) as manager:
        gc.collect()
        before = _rss()
        started = time.perf_counter()
        for first in range(0, count, 64):
            threads = [w.thread_id(i) for i in range(first, min(count, first + 64))]
            resumed = await asyncio.gather(*(manager.get_or_resume(t) for t in threads))
            assert all(c is not None for c in resumed)
        seconds = time.perf_counter() - started
        gc.collect()
        after = _rss()
        active = len(manager.get_all_conversations())
        held = manager.get_all_conversations()
        text = sum(len(m.message_content) for c in held for m in c.history)
        messages = sum(len(c.history) for c in held)
        locations = [ref.location for ref in await store.list_conversations(w.GUILD_ID)]
    return {
        "rss_before": before,
        "rss_growth": after - before,
        "rss_after": after,
        "locations": locations,
        "active": active,
        "resume_s": seconds,
        "text_chars": text,
        "messages": messages,
    }


def _idle(kind: str, count: int, touches: int) -> dict[str, Any]:
    keys = [str(1_100_000_000_000_000_000 + i) for i in range(count)]
    rng = random.Random(5)
    order = [rng.choice(keys) for _ in range(touches)]

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        if kind == "clock":
            from memory.recording.idle import IdleClock

            clock = IdleClock(IDLE)
            for key in keys:
                clock.touch(key)
            held = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            started = time.perf_counter()
            for key in order:
                clock.touch(key)
            per_touch = (time.perf_counter() - started) / touches
            assert len(clock) == count and not clock.pop_expired()
        elif kind == "timers":
            fired: list[str] = []
            timers = {key: loop.call_later(IDLE, fired.append, key) for key in keys}
            held = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            started = time.perf_counter()
            for key in order:
                timers[key].cancel()
                timers[key] = loop.call_later(IDLE, fired.append, key)
            await asyncio.sleep(0)  # the loop drops cancelled timers from its heap here
            per_touch = (time.perf_counter() - started) / touches
            for timer in timers.values():
                timer.cancel()
        else:  # one task per conversation

            async def wait_idle(key: str) -> None:
                await asyncio.sleep(IDLE)

            tasks = {key: loop.create_task(wait_idle(key)) for key in keys}
            await asyncio.sleep(0)  # every task starts and sleeps
            held = tracemalloc.get_traced_memory()[0] - base
            tracemalloc.stop()
            started = time.perf_counter()
            for key in order:
                tasks[key].cancel()
                tasks[key] = loop.create_task(wait_idle(key))
            await asyncio.sleep(0)  # the cancelled ones finish, the new ones start
            await asyncio.sleep(0)
            per_touch = (time.perf_counter() - started) / touches
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        return {"bytes_per_key": held / count, "touch_us": per_touch * 1e6}

    return asyncio.run(main())


def _child(argv: list[str]) -> None:
    command = argv[0]
    if command == "write":
        _write(Path(argv[1]), int(argv[2]), int(argv[3]))
        result: dict[str, Any] = {}
    elif command == "resume":
        result = asyncio.run(_resume(Path(argv[1]), int(argv[2])))
        result["json_bytes"] = sum(os.path.getsize(p) for p in result.pop("locations"))
    else:
        result = _idle(argv[1], int(argv[2]), int(argv[3]))
    print(json.dumps(result))


def _spawn(*args: object) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.footprint", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"footprint child {args[0]} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the scenario ------------------------------------------------------------------------------


def run(quick: bool) -> Scenario:
    count, per = 10_000, 20
    runs = 1 if quick else 3
    keys = 100_000
    touches = 50_000 if quick else 300_000
    rows: list[Row] = []
    notes: list[str] = []
    growth: list[float] = []
    json_mib: list[float] = []
    ratio: list[float] = []
    resume_s: list[float] = []
    overhead: list[float] = []
    with scratch_dir("footprint") as work:
        folder = work / "data"
        _spawn("write", folder, count, per)
        for _ in range(runs):
            got = _spawn("resume", folder, count)
            if got["active"] != count:
                raise RuntimeError(f"{got['active']} active conversations, not {count}")
            growth.append(got["rss_growth"] / 2**20)
            json_mib.append(got["json_bytes"] / 2**20)
            ratio.append(got["rss_growth"] / got["json_bytes"])
            resume_s.append(got["resume_s"])
            overhead.append((got["rss_growth"] - got["text_chars"]) / got["messages"])
    group = f"{count:,} active conversations x {per} messages"
    rows += [
        Row("Echo: RSS growth with them active", "MiB", growth, "echo", False, group),
        Row("their JSON files on disk", "MiB", json_mib, "baseline", False, group),
        Row("Echo: RSS growth / JSON size", "x JSON size", ratio, "echo", False, group),
        Row("Echo: memory per message beside its text", "bytes", overhead, "echo", False, group),
        Row("Echo: resuming them (get_or_resume, 64 at once)", "s", resume_s, "echo", False, group),
    ]
    idle_group = f"idle clock, {keys:,} active conversations"
    subjects = {
        "clock": ("Echo IdleClock (one ordered dict, one sweeper)", "echo"),
        "timers": ("a loop.call_later timer per conversation", "peer"),
        "tasks": ("an asyncio task per conversation", "peer"),
    }
    measured: dict[str, list[dict[str, float]]] = {kind: [] for kind in subjects}
    for _ in range(runs):
        for kind in subjects:
            # A task per message is slow enough that fewer messages measure it as well.
            many = touches if kind != "tasks" else touches // 4
            measured[kind].append(_spawn("idle", kind, keys, many))
    for kind, (subject, role) in subjects.items():
        got = measured[kind]
        per_key = [g["bytes_per_key"] for g in got]
        rows.append(Row(subject, "bytes/conversation", per_key, role, False, idle_group))
    for kind, (subject, role) in subjects.items():
        got = measured[kind]
        per_touch = [g["touch_us"] for g in got]
        rows.append(Row(subject, "us per message", per_touch, role, False, idle_group))
    median_ratio = sorted(ratio)[len(ratio) // 2]
    targets = [
        Target(
            f"RSS of {count:,} active conversations vs their JSON",
            median_ratio,
            GOAL_X,
            higher_is_better=False,
            unit="x",
        )
    ]
    notes.append(
        f"messages: a person's and Echo's in turn, 40-60 words each (bench/scenarios/_workload.py);"
        f" RSS measured in a fresh process before and after resuming all {count:,}"
    )
    return Scenario(NAME, TITLE, rows, targets, notes)


if __name__ == "__main__":
    _child(sys.argv[1:])
