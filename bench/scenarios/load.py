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
thread's previous reply is counted apart (``queued``), not as overhead.

Side by side: llmcord (``../shared/peers/llmcord``, unmodified, MIT), which rebuilds each
conversation from Discord's REST history, against Echo, which reads its own store; the same
two timings at conversation depths 1, 10 and 40, just after a (re)start of the bot and in
steady state, on the same emulator with the same limits and latency, in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.framework import OUT_DIR, Row, Scenario, Target, package_version, scratch_dir
from bench.scenarios._load_support import (
    LLMCORD,
    Llmcord,
    World,
    lag_monitor,
    percentile,
    read_timeline,
    rss_mib,
    running_echo,
    write_llmcord_config,
)
from bot.app import echo_core
from bot.config import load_settings
from memory import Message, MessageType

NAME = "load"
TITLE = "Under load, and the reply overhead against llmcord (ms, lower is better)"

LATENCY = 0.05  # s added to every REST answer
THINK = 0.3  # s before the model's first token
TOKEN_GAP = 0.02  # s between streamed tokens
GLOBAL_LIMIT = 50  # requests/s
INTERVAL = 10.0  # mean seconds between two messages of one thread
DEPTHS = (1, 10, 40)
ECHO_SLOTS = "64"  # ECHO_MAX_CONCURRENT_REPLIES: enough model calls for the load's rate


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
        side = await _side_by_side(world, reps)
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
        lags: list[float] = []
        stop = asyncio.Event()
        monitor = asyncio.get_running_loop().create_task(lag_monitor(stop, lags))
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
    reading = read_timeline(timeline)
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
        Row("Echo: event-loop lag p99", "ms", [percentile(lags, 99)], higher_is_better=False,
            group=group),
        Row("Echo: CPU per 1,000 replies", "s", [cpu / replies * 1000], higher_is_better=False,
            group=group),
        Row("Echo: RSS at the end", "MiB", [rss], higher_is_better=False, group=group),
        Row("429s received", "count", [float(reading.rate_limited)], higher_is_better=False,
            group=group),
        Row("replies left unfinished", "count", [float(unfinished)], higher_is_better=False,
            group=group),
    ]  # fmt: skip
    overhead_p99 = max(percentile(reading.to_model, 99), percentile(reading.to_write, 99))
    targets = [
        Target("200 threads: Echo's overhead p99 (model and Discord time excluded)",
               overhead_p99, 10.0, higher_is_better=False, unit=" ms"),
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
        f"CPU {cpu:.1f} s for {replies} replies; loop lag max {max(lags, default=0):.1f} ms"
    )
    return {
        "rows": rows,
        "targets": targets,
        "note": note,
        "lost": lost,
        "doubled": reading.doubled,
    }


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


# --- side by side with llmcord ----------------------------------------------------------------


async def _side_by_side(world: World, reps: int) -> dict[str, Any]:
    rows: list[Row] = []
    notes: list[str] = []
    targets: list[Target] = []
    await world.call("POST", "/forget")
    await world.call("POST", "/limits", {"on": True})
    results: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    with scratch_dir("load-echo") as folder:
        results |= await _echo_depths(world, folder / "data", reps)
    version = "llmcord"
    if LLMCORD.exists():
        with scratch_dir("load-llmcord") as folder:
            try:
                results |= await _llmcord_depths(world, folder, reps)
            except Exception as exc:  # reported, the Echo rows still stand
                notes.append(f"llmcord could not run: {type(exc).__name__}: {exc}")
    else:
        notes.append(f"llmcord not found at {LLMCORD}: its rows are absent")
    await world.call("POST", "/limits", {"on": False})
    for state in ("just after a restart", "steady state"):
        for depth in DEPTHS:
            for index, what in enumerate(("message -> model request", "first token -> write")):
                group = f"{what}, depth {depth}, {state}"
                for subject, role in (("Echo", "echo"), (version, "peer")):
                    key = (subject, state, depth)
                    if key in results:
                        samples = results[key][index]
                        rows.append(Row(subject, "ms", samples, role=role, higher_is_better=False,
                                        group=group))  # fmt: skip
    echo = results.get(("Echo", "just after a restart", 40))
    peer = results.get((version, "just after a restart", 40))
    if echo and peer:
        import statistics

        echo_total = statistics.median(echo[0]) + statistics.median(echo[1])
        peer_total = statistics.median(peer[0]) + statistics.median(peer[1])
        targets.append(
            Target(
                "depth 40 just after a restart: llmcord's overhead / Echo's (message -> model "
                "request + first token -> first write, medians)",
                peer_total / echo_total if echo_total else float("nan"),
                1.0,
                higher_is_better=True,
                unit="x",
            )
        )
    notes.append(
        f"side by side: {reps} conversations per depth and state, one message at a time, on "
        f"the same emulator (limits on, {LATENCY * 1000:.0f} ms per REST call) and model; "
        "times include the REST calls each bot awaits on the way (llmcord: typing, then one "
        "fetch per earlier message it has not cached); depth d = the d-th message of the "
        "conversation. 'Just after a restart': the bot was started fresh and has not seen the "
        "conversation (Echo reads it from its store, llmcord from Discord); 'steady state': it "
        "answered the message before. llmcord: "
        f"{LLMCORD} (unmodified; httpx {package_version('httpx')}, PyYAML "
        f"{package_version('PyYAML')})"
    )
    return {"rows": rows, "targets": targets, "notes": notes}


def _measure(timeline: dict[str, Any], marker: int) -> tuple[float, float] | None:
    posted = next(p for p in timeline["posted"] if p["marker"] == marker)
    request = next((r for r in timeline["model"] if marker in r["last"]), None)
    if request is None or posted["dispatched"] is None or request["first_token"] is None:
        return None
    writes = [
        w
        for w in timeline["rest"]
        if w["channel"] == posted["channel"]
        and w["method"] == "POST"
        and w["route"] == "/channels/{channel_id}/messages"
        and w["time"] >= request["first_token"]
    ]
    if not writes:
        return None
    return (
        (request["arrived"] - posted["dispatched"]) * 1000,
        (writes[0]["time"] - request["first_token"]) * 1000,
    )


async def _ask(world: World, channel: int, user: int, text: str, **extra: Any) -> dict[str, Any]:
    """Post one message and wait until the bot's answer to it is final."""
    entry = await world.call(
        "POST", "/post", {"channel": channel, "user": user, "text": text, **extra}
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        timeline = await world.call("GET", "/timeline")
        answered = any(entry["marker"] in r["last"] for r in timeline["model"])
        mine = [m for m in timeline["bot_messages"] if m["channel"] == channel]
        if answered and mine and all(m["final"] for m in mine):
            later = [m for m in mine if m["id"] > entry["id"]]
            if later:
                await asyncio.sleep(0.3)  # the final edit's answer
                entry["reply"] = max(m["id"] for m in later)
                return entry
    raise TimeoutError(f"no final answer to message {entry['marker']}")


async def _echo_depths(
    world: World, data_dir: Path, reps: int
) -> dict[tuple[str, str, int], tuple[list[float], list[float]]]:
    info = world.info
    made = await world.call("POST", "/threads", {"count": 2 * reps * len(DEPTHS)})
    plan = []  # (thread, user, depth, state)
    for i, (depth, state) in enumerate(
        (d, s) for d in DEPTHS for s in ("restart", "steady") for _ in range(reps)
    ):
        plan.append((made[i]["thread"], made[i]["user"], depth, state))
    # The conversations as they stand before the restart: in the store, as Echo recorded them.
    settings = load_settings(
        {"ECHO_DATA_DIR": str(data_dir), "ECHO_LOG_LEVEL": "WARNING"}, env_file=None
    )
    async with echo_core(settings) as core:
        now = datetime.now(UTC) - timedelta(hours=1)
        for thread, user, depth, state in plan:
            seeded = depth - 1 if state == "restart" else depth - 3
            if seeded < 0:
                seeded = -1  # depth 1 steady: the warm-up message opens the conversation
            if seeded < 0 and state == "steady":
                continue
            await core.manager.create_conversation(
                thread_id=str(thread),
                guild_id=str(info["guild_id"]),
                requester=str(user),
                channel_id=str(info["channel_id"]),
            )
            for k in range(seeded):
                await core.manager.add_message_to_conversation(
                    str(thread), _history_message(k, user, now + timedelta(seconds=k))
                )
    results: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    # No per-person cooldown here (llmcord has none): one person asks twice in a row.
    slots = {"ECHO_MAX_CONCURRENT_REPLIES": ECHO_SLOTS, "ECHO_USER_COOLDOWN_SECONDS": "0"}
    async with running_echo(world, data_dir, **slots):
        await world.call("POST", "/forget")
        markers: list[tuple[int, str, int]] = []
        for thread, user, depth, state in plan:
            if state != "restart":
                continue
            ping = depth == 1  # a new conversation starts with a mention
            entry = await _ask(world, thread, user, "and what about this?", mention=ping)
            markers.append((entry["marker"], "just after a restart", depth))
        for thread, user, depth, state in plan:
            if state != "steady":
                continue
            await _ask(world, thread, user, "first, this", mention=depth == 1)
            if depth == 1:
                continue  # depth 1 steady: a conversation's first message, on a warm bot
            entry = await _ask(world, thread, user, "and what about this?")
            markers.append((entry["marker"], "steady state", depth))
        steady_one = [t for t in plan if t[2] == 1 and t[3] == "steady"]
        # depth 1 in steady state: a new conversation on a bot that has been answering
        for _thread, user, _depth, _state in steady_one:
            extra = await world.call("POST", "/threads", {"count": 1})
            entry = await _ask(world, extra[0]["thread"], user, "hello", mention=True)
            markers.append((entry["marker"], "steady state", 1))
        timeline = await world.call("GET", "/timeline")
    for marker, state, depth in markers:
        figures = _measure(timeline, marker)
        if figures is None:
            continue
        slot = results.setdefault(("Echo", state, depth), ([], []))
        slot[0].append(figures[0])
        slot[1].append(figures[1])
    return results


def _history_message(k: int, user: int, at: datetime) -> Message:
    if k % 2 == 0:
        return Message(
            message_type=MessageType.CHAT,
            message_content=f"question {k}: tell me more about the thing we discussed",
            requester=str(user),
            message_id=str(10**15 + k + user % 10**9 * 100),
            created_at=at,
            meta={"author_name": "user"},
        )
    return Message(
        message_type=MessageType.CHAT,
        message_content=f"answer {k}: here is more about it, in a sentence or two of text.",
        created_at=at,
    )


async def _llmcord_depths(
    world: World, folder: Path, reps: int
) -> dict[tuple[str, str, int], tuple[list[float], list[float]]]:
    info = world.info
    write_llmcord_config(folder, world)
    channels = await world.call("POST", "/channels", {"count": 2 * reps * len(DEPTHS)})
    user, bot_id = info["user_id"], info["bot_id"]
    plan = []
    for i, (depth, state) in enumerate(
        (d, s) for d in DEPTHS for s in ("restart", "steady") for _ in range(reps)
    ):
        plan.append((channels[i], depth, state))
    last: dict[int, int | None] = {}
    # The conversations as they stand before the restart: a reply chain in Discord.
    for channel, depth, state in plan:
        seeded = depth - 1 if state == "restart" else max(0, depth - 3)
        previous = None
        for k in range(seeded):
            author = user if k % 2 == 0 else bot_id
            entry = await world.call(
                "POST",
                "/post",
                {
                    "channel": channel,
                    "user": author,
                    "text": f"turn {k}: some words about the thing we discussed",
                    "mention": author == user,
                    "reply_to": previous,
                },
            )
            previous = entry["id"]
        last[channel] = previous
    cwd = Path.cwd()
    bot = Llmcord(folder, info["api_base"], info["gateway_url"])
    markers: list[tuple[int, str, int]] = []
    try:
        bot.start()
        await bot.wait_ready()
        await world.call("POST", "/forget")
        for channel, depth, state in plan:
            if state != "restart":
                continue
            entry = await _ask(
                world, channel, user, "and what about this?", mention=True, reply_to=last[channel]
            )
            markers.append((entry["marker"], "just after a restart", depth))
        for channel, depth, state in plan:
            if state != "steady":
                continue
            first = await _ask(
                world, channel, user, "first, this", mention=True, reply_to=last[channel]
            )
            if depth == 1:
                markers.append((first["marker"], "steady state", 1))
                continue
            entry = await _ask(
                world, channel, user, "and what about this?", mention=True, reply_to=first["reply"]
            )
            markers.append((entry["marker"], "steady state", depth))
        timeline = await world.call("GET", "/timeline")
    finally:
        with contextlib.suppress(Exception):
            await bot.stop()
        os.chdir(cwd)
    results: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    for marker, state, depth in markers:
        figures = _measure(timeline, marker)
        if figures is None:
            continue
        slot = results.setdefault(("llmcord", state, depth), ([], []))
        slot[0].append(figures[0])
        slot[1].append(figures[1])
    return results
