"""The side-by-side half of the load scenario: Echo and llmcord, one message at a time, at
conversation depths 1, 10 and 40, just after a (re)start and in steady state, on the same
world (``_load_world``) with Discord's limits on. See ``load.py`` for what is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.framework import Row, Target, package_version, scratch_dir
from bench.scenarios._load_support import (
    LLMCORD,
    Llmcord,
    World,
    running_echo,
    write_llmcord_config,
)
from bot.app import echo_core
from bot.config import load_settings
from memory import Message, MessageType

DEPTHS = (1, 10, 40)
ECHO_SLOTS = "64"  # ECHO_MAX_CONCURRENT_REPLIES, as in the load


# --- side by side with llmcord ----------------------------------------------------------------


async def side_by_side(world: World, reps: int, latency: float) -> dict[str, Any]:
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
        f"the same emulator (limits on, {latency * 1000:.0f} ms per REST call) and model; "
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
