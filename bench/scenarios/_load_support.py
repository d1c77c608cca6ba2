"""What the load scenario runs on: the world process (``_load_world``), Echo built as
``python -m bot`` builds it, llmcord loaded unmodified from its folder, and the reading of
a timeline into per-message figures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import types
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.framework import BENCH_DIR
from bot.app import echo_app
from bot.config import load_settings
from bot.discord.client import EchoBot
from bot.discord.endpoints import apply_discord_endpoints

log = logging.getLogger(__name__)

LLMCORD = BENCH_DIR.parent.parent / "shared" / "peers" / "llmcord" / "llmcord.py"
if not LLMCORD.exists():  # a worktree beside the main clone: look from the main clone too
    LLMCORD = Path("/work/shared/peers/llmcord/llmcord.py")
LLMCORD = Path(os.environ.get("LLMCORD_PATH", str(LLMCORD)))


class World:
    """The world process and its control API."""

    def __init__(self, latency: float, think: float, token_gap: float, global_limit: int) -> None:
        self.args = [
            "--latency",
            str(latency),
            "--think",
            str(think),
            "--token-gap",
            str(token_gap),
            "--global-limit",
            str(global_limit),
        ]
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> World:
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
            [sys.executable, "-m", "bench.scenarios._load_world", *self.args],
            cwd=BENCH_DIR.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        if not line:
            raise RuntimeError("the load world process did not start")
        self.info = json.loads(line)
        self.http = aiohttp.ClientSession(base_url=self.info["control"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http is not None:
            await self.http.close()
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        assert self.http is not None
        async with self.http.request(method, path, json=body) as response:
            response.raise_for_status()
            return await response.json()


# --- Echo -------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_echo(world: World, data_dir: Path, **overrides: str) -> AsyncIterator[EchoBot]:
    """Echo built by ``echo_app`` (as ``python -m bot``), logged in to the world, ready."""
    info = world.info
    values = {
        "DISCORD_TOKEN": info["token"],
        "DISCORD_API_BASE": info["api_base"],
        "DISCORD_GATEWAY_URL": info["gateway_url"],
        "ECHO_DATA_DIR": str(data_dir),
        "ECHO_LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "openai",
        "LLM_BASE_URL": info["llm_base_url"],
        "LLM_API_KEY": info["llm_api_key"],
        "LLM_MODEL": "fake-model",
        "LLM_TIMEOUT_SECONDS": "60",
        **overrides,
    }
    settings = load_settings(values, env_file=None)
    async with echo_app(settings, guild_ready_timeout=0.05) as bot:
        task = asyncio.get_running_loop().create_task(bot.start(info["token"]))
        try:
            deadline = time.monotonic() + 60
            while not bot.is_ready():
                if task.done():
                    task.result()
                    raise RuntimeError("Echo stopped before it was ready")
                if time.monotonic() > deadline:
                    raise TimeoutError("Echo not ready after 60 s")
                await asyncio.sleep(0.01)
            yield bot
        finally:
            await bot.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
    apply_discord_endpoints()


# --- llmcord ----------------------------------------------------------------------------------


@dataclass
class Llmcord:
    """llmcord.py run unmodified in a thread of this process, with its own event loop.

    Its module body reads ``config.yaml`` from the working directory and ends in
    ``asyncio.run(main())``, so it is executed from its file in a thread, with the working
    directory set to a folder holding the config this bench wrote; discord.py is pointed at
    the emulator first (``Route.BASE`` and the gateway URL, process-wide).
    """

    folder: Path
    api_base: str
    gateway_url: str
    namespace: dict[str, Any] = field(default_factory=dict)
    thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> None:
        source = LLMCORD.read_text(encoding="utf-8")
        code = compile(source, str(LLMCORD), "exec")
        # A module of its own (its dataclasses look their module up in sys.modules), fresh at
        # each start: a restart forgets its message cache, as a new process would.
        module = types.ModuleType("llmcord")
        module.__file__ = str(LLMCORD)
        sys.modules["llmcord"] = module
        self.namespace = module.__dict__

        def run() -> None:
            try:
                exec(code, self.namespace)  # the file as published, run as its own script
            except BaseException as exc:
                self.error = exc

        apply_discord_endpoints(self.api_base, self.gateway_url)
        os.chdir(self.folder)
        self.thread = threading.Thread(target=run, name="llmcord", daemon=True)
        self.thread.start()

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            bot = self.namespace.get("discord_bot")
            if bot is not None and bot.is_ready():
                return
            if self.error is not None or (self.thread and not self.thread.is_alive()):
                raise RuntimeError(f"llmcord stopped: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("llmcord not ready")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        bot = self.namespace.get("discord_bot")
        if bot is not None and self.thread is not None and self.thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(bot.close(), bot.loop)
            # Once closed, its asyncio.run() ends and cancels what is left, this call included.
            with contextlib.suppress(asyncio.CancelledError, concurrent.futures.CancelledError):
                await asyncio.wrap_future(future)
        if self.thread is not None:
            await asyncio.to_thread(self.thread.join, 15)
        apply_discord_endpoints()


def write_llmcord_config(folder: Path, world: World) -> None:
    info = world.info
    config = {
        "bot_token": info["token"],
        "client_id": None,
        "status_message": None,
        "max_text": 100000,
        "max_images": 0,
        # Enough for the deepest conversation measured: llmcord reads it all, as Echo does.
        "max_messages": 64,
        "use_plain_responses": False,
        "allow_dms": True,
        "permissions": {
            "users": {"admin_ids": [], "allowed_ids": [], "blocked_ids": []},
            "roles": {"allowed_ids": [], "blocked_ids": []},
            "channels": {"allowed_ids": [], "blocked_ids": []},
        },
        "providers": {"fake": {"base_url": info["llm_base_url"], "api_key": info["llm_api_key"]}},
        "models": {"fake/fake-model": None},
        "system_prompt": "You are a helpful Discord bot.",
    }
    # JSON is YAML: no YAML writer needed.
    (folder / "config.yaml").write_text(json.dumps(config), encoding="utf-8")


# --- reading a timeline -----------------------------------------------------------------------


@dataclass
class Reading:
    """Per-message figures from one phase's timeline (times in ms)."""

    posted: int = 0
    answered_once: int = 0
    coalesced: int = 0  # covered by the reply to a later message of the same thread
    doubled: int = 0
    lost: int = 0
    queued: int = 0  # arrived while its thread's previous reply was still being written
    to_model: list[float] = field(default_factory=list)
    to_write: list[float] = field(default_factory=list)
    # The same timings, less what the reply spent in reported waits (``bot.discord.waits``):
    # a model slot, a cooldown, room in Discord's write budget. Left: Echo's own work.
    to_model_own: list[float] = field(default_factory=list)
    to_write_own: list[float] = field(default_factory=list)
    waited_to_model: int = 0  # of the timings above, how many held a wait
    waited_to_write: int = 0
    rate_limited: int = 0
    global_429: int = 0
    requests: int = 0
    replies: int = 0


WaitSpan = tuple[int | None, float, float]
"""A wait Echo reported: the channel it was for, its start and end (``time.monotonic()``)."""


def waited(spans: list[WaitSpan], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` covered by ``spans`` (overlapping waits counted once)."""
    clipped = sorted((max(a, start), min(b, end)) for _, a, b in spans if b > start and a < end)
    total, reach = 0.0, start
    for a, b in clipped:
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def read_timeline(
    timeline: dict[str, Any], *, by_reference: bool = True, waits: list[WaitSpan] | None = None
) -> Reading:
    """Match each posted message to the model request answering it (its marker is the newest
    user turn) and that request's first token to the bot's first write in the channel;
    ``waits`` (Echo's own reports) give each timing's part spent waiting."""
    out = Reading()
    waits_in: dict[int | None, list[WaitSpan]] = defaultdict(list)
    for span in waits or ():
        waits_in[span[0]].append(span)
    posted = {p["marker"]: p for p in timeline["posted"]}
    out.posted = len(posted)
    writes_by_channel: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for w in timeline["rest"]:
        typing = w["route"] == "/channels/{channel_id}/typing"
        if w["channel"] is not None and not typing and w["method"] in ("POST", "PATCH", "DELETE"):
            writes_by_channel[w["channel"]].append(w)
    out.requests = sum(1 for w in timeline["rest"] if w["method"] != "GET")
    out.rate_limited = timeline["rate_limited"]
    out.global_429 = sum(1 for w in timeline["rest"] if w["status"] == 429 and w["global"])
    newest: dict[int, list[dict[str, Any]]] = defaultdict(list)
    covered: set[int] = set()
    for request in timeline["model"]:
        for marker in request["last"]:
            newest[marker].append(request)
        covered.update(request["all"])
    references: dict[int, int] = defaultdict(int)
    for writes in writes_by_channel.values():
        for w in writes:
            if w["method"] == "POST" and w["ref"] and w["status"] == 200:
                references[w["ref"]] += 1
    for marker, p in posted.items():
        answering = newest.get(marker, [])
        if len(answering) > 1 or (by_reference and references.get(p["id"], 0) > 1):
            out.doubled += 1
        if answering:
            out.answered_once += len(answering) == 1
        elif marker in covered:
            out.coalesced += 1
        else:
            out.lost += 1
        if not answering or p["dispatched"] is None:
            continue
        request = answering[0]
        writes = writes_by_channel.get(p["channel"], [])
        # Queued behind the thread's previous reply: a write of that reply came after this
        # message arrived and before this request (a wait by design, not overhead).
        if any(p["dispatched"] < w["time"] < request["arrived"] for w in writes):
            out.queued += 1
            continue
        spans = waits_in.get(p["channel"], [])
        total = request["arrived"] - p["dispatched"]
        wait = waited(spans, p["dispatched"], request["arrived"])
        out.to_model.append(total * 1000)
        out.to_model_own.append((total - wait) * 1000)
        out.waited_to_model += wait > 0
        if request["first_token"] is not None:
            first = next((w for w in writes if w["time"] >= request["first_token"]), None)
            if first is not None:
                total = first["time"] - request["first_token"]
                wait = waited(spans, request["first_token"], first["time"])
                out.to_write.append(total * 1000)
                out.to_write_own.append((total - wait) * 1000)
                out.waited_to_write += wait > 0
                out.replies += 1
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def lag_monitor(stop: asyncio.Event, lags: list[float], cpu: list[float]) -> None:
    """How late 1 ms sleeps wake on this loop (the stall a heartbeat or a reply would see),
    and the loop thread's CPU time during each: the work that held the loop, without the
    time the machine gave the cores to other processes."""
    while not stop.is_set():
        start = time.perf_counter()
        start_cpu = time.thread_time()
        await asyncio.sleep(0.001)
        lags.append(max(0.0, time.perf_counter() - start - 0.001) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
