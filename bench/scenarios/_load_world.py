"""The far end of the load scenario, in a process of its own: the Discord emulator, the fake
model and the users, driven over a small loopback control API.

``python -m bench.scenarios._load_world --latency 0.05 --think 0.3 ...`` prints one JSON line
(the addresses) and serves until stdin closes. It runs apart from the bot under test so that
the bot's process holds only the bot: its CPU time, memory and event-loop lag are its own, and
every timestamp here (the gateway dispatch of a user's message, the model request's arrival,
the first streamed token, each REST write's arrival) is taken outside the bot, on the
system-wide monotonic clock both processes share.

Control API (JSON over HTTP on 127.0.0.1): ``POST /threads {count}`` makes that many users
and a thread of each in #general; ``POST /limits {on}`` turns Discord's limits on or off;
``POST /load {threads, users, interval, duration, seed}`` starts the users posting (the first
message of each thread mentions the bot), ``GET /load`` says how far it got; ``POST /post``
posts one message; ``GET /timeline`` hands back what happened; ``POST /forget`` clears the
logs between phases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import sys
import time
from typing import Any

from aiohttp import web

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm import FakeLLM

log = logging.getLogger(__name__)

MARKER = re.compile(r"\[q(\d+)\]")
WRITE_METHODS = ("POST", "PATCH", "DELETE")
ANSWER = (
    "Sure. Here is a short answer that streams in a few dozen small pieces, as a model's "
    "tokens arrive, so that the reply grows on screen while it is written."
)


class World:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.emu = DiscordEmulator(rest_latency=args.latency)
        self.llm = FakeLLM(
            default_reply=ANSWER,
            default_delay=args.think,
            default_chunk_delay=args.token_gap,
            default_chunk_size=4,
        )
        self.posted: list[dict[str, Any]] = []  # marker, id, channel, time of the post
        self.load_task: asyncio.Task[None] | None = None
        self.next_marker = 0
        self.planned = 0
        # How late this process's own loop runs: every timestamp here is taken on it, so its
        # lag is the resolution of the timings the scenario reports.
        self.lags: list[float] = []
        self.lag_task: asyncio.Task[None] | None = None

    async def start(self) -> web.AppRunner:
        await self.emu.start()
        self.emu.populate()
        await self.llm.start()
        self.lag_task = asyncio.get_running_loop().create_task(self._watch_lag())
        app = web.Application()
        app.router.add_post("/threads", self.threads)
        app.router.add_post("/channels", self.channels)
        app.router.add_post("/limits", self.limits)
        app.router.add_post("/load", self.load)
        app.router.add_get("/load", self.load_status)
        app.router.add_post("/post", self.post)
        app.router.add_get("/timeline", self.timeline)
        app.router.add_post("/forget", self.forget)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        control = runner.addresses[0][1]
        assert self.emu.world is not None
        print(
            json.dumps(
                {
                    "control": f"http://127.0.0.1:{control}",
                    "api_base": self.emu.api_base,
                    "gateway_url": self.emu.gateway_url,
                    "token": self.emu.token,
                    "bot_id": self.emu.bot_user.id,
                    "guild_id": self.emu.world.guild.id,
                    "channel_id": self.emu.world.channel.id,
                    "user_id": self.emu.world.user.id,
                    "llm_base_url": self.llm.base_url,
                    "llm_api_key": self.llm.api_key,
                }
            ),
            flush=True,
        )
        return runner

    async def _watch_lag(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            self.lags.append(max(0.0, time.perf_counter() - start - 0.001) * 1000)

    # -- control ----------------------------------------------------------------------------

    async def threads(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert self.emu.world is not None
        world = self.emu.world
        made = []
        for i in range(int(body["count"])):
            user = self.emu.create_user(f"user{len(self.emu.store.users)}-{i}")
            self.emu.add_member(world.guild.id, user.id)
            thread = await self.emu.create_thread(world.channel.id, f"load {i}", owner_id=user.id)
            made.append({"thread": thread.id, "user": user.id})
        return web.json_response(made)

    async def channels(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert self.emu.world is not None
        guild = self.emu.world.guild.id
        made = [
            self.emu.create_text_channel(guild, f"chain-{i}").id for i in range(int(body["count"]))
        ]
        return web.json_response(made)

    async def limits(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("on"):
            self.emu.limit_message_rate(limit=5, per=5.0)
            self.emu.limit_global_rate(limit=self.args.global_limit, per=1.0)
        else:
            self.emu.message_rate = None
            self.emu.global_rate = None
        return web.json_response({})

    def _content(self, text: str, *, mention: bool) -> tuple[int, str]:
        marker = self.next_marker
        self.next_marker += 1
        ping = f"<@{self.emu.bot_user.id}> " if mention else ""
        return marker, f"{ping}{text} [q{marker}]"

    async def _post(
        self, channel: int, user: int, text: str, *, mention: bool, reply_to: int | None = None
    ) -> dict[str, Any]:
        marker, content = self._content(text, mention=mention)
        payload = await self.emu.post_message(channel, user, content, reply_to=reply_to)
        entry = {"marker": marker, "id": int(payload["id"]), "channel": channel}
        self.posted.append(entry)
        return entry

    async def load(self, request: web.Request) -> web.Response:
        body = await request.json()
        rng = random.Random(body.get("seed", 1))
        pairs = list(zip(body["threads"], body["users"], strict=True))
        interval, duration = float(body["interval"]), float(body["duration"])
        self.planned = 0
        plans = []
        for thread, user in pairs:
            at = rng.uniform(0, interval)  # the threads start spread over one interval
            times = []
            while at < duration:
                times.append(at)
                at += rng.uniform(0.5 * interval, 1.5 * interval)
            self.planned += len(times)
            plans.append((thread, user, times))
        self.load_task = asyncio.get_running_loop().create_task(self._drive(plans))
        return web.json_response({"planned": self.planned})

    async def _drive(self, plans: list[tuple[int, int, list[float]]]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        events = sorted(
            (at, k, thread, user) for thread, user, times in plans for k, at in enumerate(times)
        )
        for at, k, thread, user in events:
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._post(thread, user, f"message {k} in this thread", mention=k == 0)

    async def load_status(self, request: web.Request) -> web.Response:
        done = self.load_task is not None and self.load_task.done()
        status = {"posted": len(self.posted), "planned": self.planned, "done": done}
        return web.json_response(status)

    async def post(self, request: web.Request) -> web.Response:
        body = await request.json()
        entry = await self._post(
            int(body["channel"]),
            int(body["user"]),
            body.get("text", "hello"),
            mention=bool(body.get("mention")),
            reply_to=body.get("reply_to"),
        )
        return web.json_response(entry)

    async def timeline(self, request: web.Request) -> web.Response:
        """What happened, as plain numbers (monotonic seconds)."""
        dispatched: dict[int, float] = {}
        for frame in self.emu.gateway_frames("MESSAGE_CREATE", direction="send"):
            message_id = int(frame.d["id"])
            dispatched.setdefault(message_id, frame.time)
        posted = [{**p, "dispatched": dispatched.get(p["id"])} for p in self.posted]
        model = []
        for r in self.llm.chat_requests:
            users = [m for m in r.messages if m.get("role") == "user"]
            last = users[-1]["content"] if users else ""
            text = last if isinstance(last, str) else json.dumps(last)
            every = " ".join(
                m["content"] if isinstance(m.get("content"), str) else "" for m in users
            )
            model.append(
                {
                    "arrived": r.arrived,
                    "first_token": r.first_content_at[0] if r.first_content_at else None,
                    "last": [int(x) for x in MARKER.findall(text)],
                    "all": [int(x) for x in MARKER.findall(every)],
                    "messages": len(r.messages),
                }
            )
        writes = []
        for r in self.emu.requests:
            if r.method not in (*WRITE_METHODS, "GET"):
                continue
            ref = None
            if isinstance(r.json, dict) and isinstance(r.json.get("message_reference"), dict):
                ref = int(r.json["message_reference"].get("message_id") or 0) or None
            channel = r.path.split("/")[2] if r.path.startswith("/channels/") else None
            writes.append(
                {
                    "method": r.method,
                    "route": r.route,
                    "channel": int(channel) if channel and channel.isdigit() else None,
                    "status": r.status,
                    "time": r.time,
                    "ref": ref,
                    "global": isinstance(r.response, dict) and r.response.get("global") is True,
                }
            )
        bot_messages = [
            {"id": m.id, "channel": m.channel_id, "final": _final(m.content, m.embeds)}
            for m in self.emu.store.messages.values()
            if m.author_id == self.emu.bot_user.id and not m.deleted
        ]
        return web.json_response(
            {
                "posted": posted,
                "model": model,
                "rest": writes,
                "bot_messages": bot_messages,
                "rate_limited": self.emu.rate_limited,
                "world_lag": _lag_summary(self.lags),
            }
        )

    async def forget(self, request: web.Request) -> web.Response:
        self.emu.requests.clear()
        self.emu.gateway.log.clear()
        self.llm.requests.clear()
        self.posted.clear()
        self.lags.clear()
        return web.json_response({})


def _lag_summary(lags: list[float]) -> dict[str, float]:
    ordered = sorted(lags) or [0.0]
    return {
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


def _final(content: str, embeds: list[dict[str, Any]]) -> bool:
    """Not still streaming: no cursor (Echo's) or streaming indicator (llmcord's, in embeds)."""
    if content.endswith("▌"):
        return False
    return not any(str(e.get("description") or "").endswith("⚪") for e in embeds or [])


async def _main(args: argparse.Namespace) -> None:
    world = World(args)
    runner = await world.start()
    loop = asyncio.get_running_loop()
    # Serve until the parent closes our stdin (or dies).
    await loop.run_in_executor(None, sys.stdin.read)
    if world.lag_task is not None:
        world.lag_task.cancel()
    await runner.cleanup()
    await world.llm.close()
    await world.emu.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--think", type=float, default=0.3)
    parser.add_argument("--token-gap", type=float, default=0.02)
    parser.add_argument("--global-limit", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
