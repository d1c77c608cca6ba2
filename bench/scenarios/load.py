"""Scenario 8, under load: hundreds of busy threads through the real Echo client, within
Discord's rate limits, and the reply overhead a user feels, side by side with llmcord.

The far end runs in a process of its own (``_load_world``): the project's Discord emulator
enforcing Discord's limits (5 message writes per 5 s per channel, edits included; 50
requests per second globally; a 429 with ``retry_after``, ``Via`` and the ``X-RateLimit-*``
headers discord.py reads) and holding every REST answer back ``LATENCY`` seconds, the fake
model answering after ``THINK`` seconds with tokens ``TOKEN_GAP`` apart, and the users. This
process holds only the bot: Echo built by ``bot.app.echo_app`` as ``python -m bot`` builds it
(the cogs, the agent, the JSON store in a temporary folder), so its CPU time, RSS and
event-loop lag are Echo's own.

Load: N threads, each started by a user mentioning Echo, then a message every ``INTERVAL``
seconds on average (0.5-1.5x, random) for ``DURATION``; then the backlog drains. Every
timestamp is taken in the world process: the gateway dispatch of each message, the model
request's arrival, its first streamed token, each REST write's arrival. Echo's own overhead
is (model request - dispatch) and (first write - first token): the configured latencies lie
outside both (Echo awaits no REST call on either path), and a message that waited for its
thread's previous reply is counted apart (``queued``), not as overhead. Both timings include
what Echo waited on meanwhile: room in Discord's write budget, a model slot (at most
``ECHO_MAX_CONCURRENT_REPLIES`` model calls at once), a cooldown. Echo reports each such
wait (``bot.discord.waits``), so each timing is given twice: whole, and less the part of it
spent in those waits, which is Echo's own work.

Side by side: llmcord (``../shared/peers/llmcord``, unmodified, MIT), which rebuilds each
conversation from Discord's REST history, against Echo, which reads its own store; the same
two timings at conversation depths 1, 10 and 40, just after a (re)start of the bot and in
steady state, on the same emulator with the same limits and latency, in the same run.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from pathlib import Path
from typing import Any

from bench.framework import OUT_DIR, Row, Scenario, Target, scratch_dir
from bench.scenarios._load_side import ECHO_SLOTS, side_by_side
from bench.scenarios._load_support import (
    WaitSpan,
    World,
    lag_monitor,
    percentile,
    read_timeline,
    rss_mib,
    running_echo,
)
from bot.discord.waits import Wait

NAME = "load"
TITLE = "Under load, and the reply overhead against llmcord (ms, lower is better)"

LATENCY = 0.05  # s added to every REST answer
THINK = 0.3  # s before the model's first token
TOKEN_GAP = 0.02  # s between streamed tokens
GLOBAL_LIMIT = 50  # requests/s
INTERVAL = 10.0  # mean seconds between two messages of one thread


def _sizes(quick: bool) -> tuple[tuple[int, ...], float, int]:
    if quick:
        return (50, 200), 20.0, 3
    return (200, 1000), 60.0, 5


def run(quick: bool) -> Scenario:
    return asyncio.run(_run(quick))


async def _run(quick: bool) -> Scenario:
    sizes, duration, reps = _sizes(quick)
    rows: list[Row] = []
    targets: list[Target] = []
    notes: list[str] = []
    async with World(LATENCY, THINK, TOKEN_GAP, GLOBAL_LIMIT) as world:
        for threads in sizes:
            with scratch_dir("load") as folder:
                phase = await _load_phase(world, folder, threads, duration)
            rows += phase["rows"]
            notes.append(phase["note"])
            if threads == 200:
                targets += phase["targets"]
            targets.append(
                Target(
                    f"{threads} threads: messages lost + answered twice",
                    phase["lost"] + phase["doubled"],
                    0,
                    higher_is_better=False,
                )
            )
        side = await side_by_side(world, reps, LATENCY)
        rows += side["rows"]
        targets += side["targets"]
        notes += side["notes"]
    notes.append(
        f"emulator: {LATENCY * 1000:.0f} ms added to every REST answer, 5 message writes per 5 s "
        f"per channel (edits included), {GLOBAL_LIMIT} requests/s globally, 429s as Discord "
        f"sends them; model: first token after {THINK * 1000:.0f} ms, then 4-character tokens "
        f"{TOKEN_GAP * 1000:.0f} ms apart (a 150-character answer); Echo with "
        f"ECHO_MAX_CONCURRENT_REPLIES={ECHO_SLOTS}, other settings default; the world (emulator, "
        "model, users) in a process of its own, timestamps taken there"
    )
    return Scenario(NAME, TITLE, rows, targets, notes)


# --- the load ---------------------------------------------------------------------------------


async def _load_phase(world: World, folder: Path, threads: int, duration: float) -> dict[str, Any]:
    await world.call("POST", "/forget")
    await world.call("POST", "/limits", {"on": False})
    made = await world.call("POST", "/threads", {"count": threads})
    group = f"{threads} threads"
    async with running_echo(world, folder / "data", ECHO_MAX_CONCURRENT_REPLIES=ECHO_SLOTS) as bot:
        await world.call("POST", "/forget")
        await world.call("POST", "/limits", {"on": True})
        # Echo's own reports of what its replies waited on (bot.discord.waits), to split the
        # timings below into waits and Echo's own work.
        waits: list[WaitSpan] = []
        kinds: dict[str, int] = {}

        def observe(wait: Wait) -> None:
            waits.append((wait.channel_id, wait.started, wait.ended))
            kinds[wait.kind] = kinds.get(wait.kind, 0) + 1

        bot.waits.subscribe(observe)
        lags: list[float] = []
        loop_cpu: list[float] = []
        stop = asyncio.Event()
        monitor = asyncio.get_running_loop().create_task(lag_monitor(stop, lags, loop_cpu))
        usage0 = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        plan = await world.call(
            "POST",
            "/load",
            {
                "threads": [m["thread"] for m in made],
                "users": [m["user"] for m in made],
                "interval": INTERVAL,
                "duration": duration,
                "seed": threads,
            },
        )
        drained = await _drain(world, bot, plan["planned"], duration)
        elapsed = time.monotonic() - started
        usage1 = resource.getrusage(resource.RUSAGE_SELF)
        stop.set()
        await monitor
        rss = rss_mib()
        timeline = await world.call("GET", "/timeline")
        recorded = await _recorded(bot, timeline)
        # Every timestamp of the phase, for a closer look (bench/out is ignored by git).
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / f"load-timeline-{threads}.json").write_text(json.dumps(timeline))
        await world.call("POST", "/limits", {"on": False})
    reading = read_timeline(timeline, waits=waits)
    world_lag = timeline.get("world_lag", {})
    world_p99 = float(world_lag.get("p99", float("nan")))
    world_max = float(world_lag.get("max", float("nan")))
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    replies = max(1, len(timeline["model"]))
    lost = reading.lost + (reading.posted - recorded)
    unfinished = sum(1 for m in timeline["bot_messages"] if not m["final"])
    rows = [
        Row("Echo: gateway event -> model request, p50", "ms", [percentile(reading.to_model, 50)],
            higher_is_better=False, group=group),
        Row("Echo: gateway event -> model request, p99", "ms", [percentile(reading.to_model, 99)],
            higher_is_better=False, group=group),
        Row("Echo: first token -> first Discord write, p50", "ms",
            [percentile(reading.to_write, 50)], higher_is_better=False, group=group),
        Row("Echo: first token -> first Discord write, p99", "ms",
            [percentile(reading.to_write, 99)], higher_is_better=False, group=group),
        Row("Echo: gateway event -> model request, own work p50", "ms",
            [percentile(reading.to_model_own, 50)], higher_is_better=False, group=group),
        Row("Echo: gateway event -> model request, own work p99", "ms",
            [percentile(reading.to_model_own, 99)], higher_is_better=False, group=group),
        Row("Echo: first token -> first Discord write, own work p50", "ms",
            [percentile(reading.to_write_own, 50)], higher_is_better=False, group=group),
        Row("Echo: first token -> first Discord write, own work p99", "ms",
            [percentile(reading.to_write_own, 99)], higher_is_better=False, group=group),
        Row("event -> model request timings that held a wait (model slot, cooldown)", "count",
            [float(reading.waited_to_model)], higher_is_better=False, group=group),
        Row("first token -> first write timings that held a wait (write budget)", "count",
            [float(reading.waited_to_write)], higher_is_better=False, group=group),
        Row("Echo: event-loop lag p99", "ms", [percentile(lags, 99)], higher_is_better=False,
            group=group),
        Row("Echo: event-loop lag p99, loop-thread CPU", "ms", [percentile(loop_cpu, 99)],
            higher_is_better=False, group=group),
        Row("Echo: CPU per 1,000 replies", "s", [cpu / replies * 1000], higher_is_better=False,
            group=group),
        Row("Echo: RSS at the end", "MiB", [rss], higher_is_better=False, group=group),
        Row("429s received", "count", [float(reading.rate_limited)], higher_is_better=False,
            group=group),
        Row("replies left unfinished", "count", [float(unfinished)], higher_is_better=False,
            group=group),
        # Context, not Echo: the lag of the loop every timestamp above is taken on.
        Row("world process (emulator, model, users): event-loop lag p99", "ms", [world_p99],
            role="baseline", higher_is_better=False, group=f"{group}, world process"),
    ]  # fmt: skip
    # The target excludes model and Discord time: Echo's own work, its waits for a
    # model slot and for room in Discord's write budget subtracted. The whole timings, waits
    # included, are the rows above.
    own_p99 = max(percentile(reading.to_model_own, 99), percentile(reading.to_write_own, 99))
    targets = [
        Target("200 threads: Echo's overhead p99, model and Discord time excluded (own work: "
               "its waits for a model slot and for room in Discord's write budget subtracted)",
               own_p99, 10.0, higher_is_better=False, unit=" ms"),
        Target("200 threads: event-loop lag p99", percentile(lags, 99), 5.0,
               higher_is_better=False, unit=" ms"),
    ]  # fmt: skip
    note = (
        f"{threads} threads: {reading.posted} messages in {duration:.0f} s "
        f"({reading.posted / duration:.0f}/s), all answered {elapsed:.0f} s after the start"
        + ("" if drained else " (NOT drained: gave up waiting)")
        + f"; {reading.answered_once} answered once, {reading.coalesced} answered together with "
        f"a later message of their thread (one reply per burst, by design), {reading.doubled} "
        f"answered twice, {lost} lost ({reading.posted - recorded} missing from the store); "
        f"{reading.queued} waited for their thread's previous reply (left out of the overhead); "
        f"{len(timeline['model'])} model requests, {reading.requests} REST writes, "
        f"{reading.rate_limited} 429s ({reading.global_429} global); {unfinished} replies "
        "left unfinished on Discord (a cursor still showing); "
        f"CPU {cpu:.1f} s for {replies} replies; loop lag max {max(lags, default=0):.1f} ms; "
        f"the world process's own loop lag (the resolution of every timestamp) p99 "
        f"{world_p99:.1f} ms, max {world_max:.0f} ms; "
        f"waits Echo reported: {_kinds(kinds)}; of the timings, {reading.waited_to_model} of "
        f"{len(reading.to_model)} event -> model request and {reading.waited_to_write} of "
        f"{len(reading.to_write)} first token -> first write held one ('own work' is the "
        "timing less the part of it spent in such waits)"
    )
    return {
        "rows": rows,
        "targets": targets,
        "note": note,
        "lost": lost,
        "doubled": reading.doubled,
    }


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none"


async def _drain(world: World, bot: Any, planned: int, duration: float) -> bool:
    """Wait until every planned message is posted and no reply is being written."""
    deadline = time.monotonic() + duration + 300
    quiet = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        status = await world.call("GET", "/load")
        busy = not status["done"] or any(not t.done() for t in bot.reply_tasks)
        quiet = 0 if busy else quiet + 1
        if quiet >= 2:
            return True
    return False


async def _recorded(bot: Any, timeline: dict[str, Any]) -> int:
    """How many posted messages Echo's conversations hold (saved ones included)."""
    count = 0
    for p in timeline["posted"]:
        conversation = await bot.manager.get_or_resume(str(p["channel"]))
        if conversation is not None and conversation.has_message_id(str(p["id"])):
            count += 1
    return count
