"""Scenario 3, event-loop stalls: how long the loop is held while Echo records a steady
1,000 messages/s across many conversations and, now and then, saves a 5,000-message
conversation that went idle.

Set-up (not measured): a manager on a ``JsonFileStore`` (journal ``everysec``) with a short
idle time, started as ``python -m bot`` starts (its start-up objects frozen out of garbage
collections); then 200 ordinary conversations and a few big ones of 5,000 messages, made and
recorded after it, as a bot's messages arrive after its start-up. Measured window: a producer
task records 1,000 messages/s, one turn of each live conversation in turn; big conversation
``j`` stops receiving messages at second ``j + 1``, so the idle sweeper saves and evicts one
5,000-message conversation about every second, while the recording goes on. A monitor task
sleeps 1 ms at a time and records how late each wake-up is: that lateness is the stall
another task (Discord's heartbeat, a reply) would see.

The baseline is the same monitor on an event loop doing nothing else, in the same run: the
noise floor of the machine (the scheduler, the neighbours on shared cores). Full garbage
collections during the windows are counted, with the CPU each took: they are the stalls no
code of Echo's is running in.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from bench.framework import Row, Scenario, Target, scratch_dir
from bench.scenarios import _workload as w
from bot.startup import freeze_start_up_objects
from memory import ConversationEvent, InMemoryConversationManager, JsonFileStore

NAME = "stalls"
TITLE = "Event-loop stalls (ms, lower is better)"

RATE = 1000.0  # messages/s
IDLE_TIME = 1.0
BIG = 5000
SMALL = 200


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def _monitor(stop: asyncio.Event, lags: list[float], cpu: list[float]) -> None:
    """Wall-clock lateness of 1 ms sleeps, and the loop thread's CPU time during each."""
    while not stop.is_set():
        start = time.perf_counter()
        start_cpu = time.thread_time()
        await asyncio.sleep(0.001)
        lags.append(max(0.0, time.perf_counter() - start - 0.001) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)


class _FullCollections:
    """The full (generation 2) garbage collections while it is on, and the CPU each took:
    the stalls the monitor sees that are no code of Echo's."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._start = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.durations.append((time.thread_time() - self._start) * 1000)


async def _baseline(seconds: float) -> tuple[list[float], list[float]]:
    lags: list[float] = []
    cpu: list[float] = []
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(_monitor(stop, lags, cpu))
    await asyncio.sleep(seconds)
    stop.set()
    await task
    return lags, cpu


async def _echo(
    folder: object, big_count: int
) -> tuple[list[float], list[float], dict[str, float]]:
    window = big_count + IDLE_TIME + 1.5
    store = JsonFileStore(folder, fsync="everysec")  # type: ignore[arg-type]
    saves: list[float] = []
    async with InMemoryConversationManager(store=store, idle_time=IDLE_TIME) as manager:
        # What python -m bot does once started (a no-op after the first run of the process).
        freeze_start_up_objects()
        # The messages are made after it, as a bot's arrive after its start-up: made before,
        # they would be frozen start-up objects that no collection walks.
        smalls = [w.conversation_messages(i, 60) for i in range(SMALL)]
        bigs = [w.conversation_messages(10_000 + j, BIG + 200) for j in range(big_count)]

        def listener(event: ConversationEvent) -> None:
            if event.kind == "idle" and event.conversation is not None:
                saves.append(len(event.conversation.history))

        manager.add_listener(listener)
        small_ids = [w.thread_id(i) for i in range(SMALL)]
        big_ids = [w.thread_id(10_000 + j) for j in range(big_count)]
        await w.create_conversations(manager, small_ids + big_ids)
        # The big conversations, recorded in turn so that none goes idle before the window.
        add = manager.add_message_to_conversation
        for k in range(BIG):
            for j, thread in enumerate(big_ids):
                await add(thread, bigs[j][k])
            if k % 500 == 0:
                for i, thread in enumerate(small_ids):
                    await add(thread, smalls[i][k // 500])
        next_small = [BIG // 500 + 1] * SMALL
        next_big = [BIG] * big_count

        lags: list[float] = []
        cpu: list[float] = []
        stop = asyncio.Event()
        collections = _FullCollections()
        collections.start()
        monitor = asyncio.get_running_loop().create_task(_monitor(stop, lags, cpu))
        start = time.perf_counter()
        sent = 0
        turn = 0
        while True:
            now = time.perf_counter() - start
            if now >= window:
                break
            due = start + sent / RATE
            if time.perf_counter() < due:
                await asyncio.sleep(due - time.perf_counter())
            live = [j for j in range(big_count) if now < j + 1]
            slots = SMALL + len(live)
            slot = turn % slots
            turn += 1
            if slot < SMALL:
                k = next_small[slot] % len(smalls[slot])
                next_small[slot] += 1
                # Past the prepared messages, reuse them with fresh ids by salting: a message
                # id already recorded would be a no-op and not journaled.
                message = smalls[slot][k] if next_small[slot] <= len(smalls[slot]) else None
                if message is None:
                    message = w.conversation_messages(slot, 1, salt=next_small[slot])[0]
                await add(small_ids[slot], message)
            else:
                j = live[slot - SMALL]
                await add(big_ids[j], bigs[j][next_big[j]])
                next_big[j] += 1
            sent += 1
        elapsed = time.perf_counter() - start
        stop.set()
        await monitor
        collections.stop()
        manager.remove_listener(listener)
    info = {
        "rate": sent / elapsed,
        "idle_saves": float(sum(1 for n in saves if n >= BIG)),
        "window": elapsed,
        "full_gcs": float(len(collections.durations)),
        "longest_full_gc": max(collections.durations, default=0.0),
    }
    return lags, cpu, info


def run(quick: bool) -> Scenario:
    runs = 2 if quick else 3
    big_count = 3 if quick else 8
    stats: dict[str, list[float]] = {}
    rates: list[float] = []
    saves: list[float] = []
    full_gcs: list[float] = []
    longest_full_gc = 0.0
    samples = 0

    def keep(who: str, lags: list[float], cpu: list[float]) -> None:
        stats.setdefault(f"{who} wall p99", []).append(_percentile(lags, 99))
        stats.setdefault(f"{who} wall max", []).append(max(lags))
        stats.setdefault(f"{who} cpu p99", []).append(_percentile(cpu, 99))
        stats.setdefault(f"{who} cpu max", []).append(max(cpu))

    for _ in range(runs):
        keep("base", *asyncio.run(_baseline(2.0 if quick else 5.0)))
        with scratch_dir(NAME) as folder:
            lags, cpu, info = asyncio.run(_echo(folder, big_count))
        keep("echo", lags, cpu)
        rates.append(info["rate"])
        saves.append(info["idle_saves"])
        full_gcs.append(info["full_gcs"])
        longest_full_gc = max(longest_full_gc, info["longest_full_gc"])
        samples += len(lags)
    rows: list[Row] = []
    for kind, label in (("wall", "wall clock"), ("cpu", "loop-thread CPU")):
        for stat in ("p99", "max"):
            group = f"{stat}, {label}"
            rows.append(
                Row(
                    "Echo recording + idle saves",
                    "ms",
                    stats[f"echo {kind} {stat}"],
                    higher_is_better=False,
                    group=group,
                )
            )
            rows.append(
                Row(
                    "idle event loop",
                    "ms",
                    stats[f"base {kind} {stat}"],
                    role="baseline",
                    higher_is_better=False,
                    group=group,
                )
            )
    targets = [
        Target(
            "p99 loop stall (wall clock)",
            statistics.median(stats["echo wall p99"]),
            5.0,
            False,
            " ms",
        ),
        Target(
            "p99 loop stall (loop-thread CPU: the neighbours' share left out)",
            statistics.median(stats["echo cpu p99"]),
            5.0,
            False,
            " ms",
        ),
    ]
    notes = [
        f"{runs} runs; each: {SMALL} conversations + {big_count} of {BIG:,} messages, "
        f"{big_count + IDLE_TIME + 1.5:.1f} s at a median {statistics.median(rates):,.0f} "
        f"messages/s, idle time {IDLE_TIME:.0f} s; {statistics.median(saves):.0f} idle saves "
        f"of {BIG:,}-message conversations per run (median); {samples:,} wake-ups measured "
        "(1 ms sleeps; a stall is how late one wakes).",
        "wall clock: what another task sees, including time the OS gave the cores to other "
        "processes; loop-thread CPU: the CPU time the loop thread spent during each 1 ms sleep "
        "(thread_time), i.e. the work that held the loop, without the machine's noise.",
        f"full garbage collections (generation 2) during the measured windows: "
        f"{sum(full_gcs):.0f} in {runs} runs"
        + (f", the longest {longest_full_gc:.1f} ms of CPU" if sum(full_gcs) else "")
        + "; one skips the start-up objects (frozen first, as python -m bot does) and walks "
        "the messages of the active conversations, tracked like any object.",
    ]
    return Scenario(NAME, TITLE, rows, targets, notes)
