"""Scenario 8, shards: 1,000 servers over 4 shards in 2 ``python -m bot`` processes.

* The Discord emulator of the tests (``tests/discord_emulator``) holds 1,000 guilds, each with
  a text channel and a member; it routes each guild's events to the session of its shard,
  ``(guild_id >> 22) % 4``, as Discord does. The guilds are made a millisecond apart, so their
  snowflakes spread over the four shards.
* Two real ``python -m bot`` processes share one Redis (``REDIS_URL``, a prefix of the run's
  own, deleted afterwards): ``ECHO_SHARD_IDS=0,1`` and ``2,3`` of ``ECHO_SHARD_COUNT=4``, the
  offline echo model, a data folder each.
* Start-up: from the spawn to the process's ``ready:`` line (every shard of it identified and
  its guilds received; discord.py waits 5 s between two IDENTIFYs of one process, as Discord's
  identify limit asks); the slower of the two processes.
* RSS of each process once ready (``/proc/<pid>/status``).
* Mentions answered per second: one mention in each of the first N guilds, posted at once;
  from the first post until every thread has Echo's finished answer.

No peer: what is measured is Echo's own sharding on the emulator (the emulator and the bench
share the machine's two cores with the bots).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.framework import Row, Scenario, scratch_dir

NAME = "shards"
TITLE = "Shards: 1,000 servers over 4 shards in 2 processes"

ROOT = Path(__file__).resolve().parents[2]
SHARDS = 4
PROCESSES = ("0,1", "2,3")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _wait_for_line(process: asyncio.subprocess.Process, lines: list[str], text: str) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(120):
        while not any(text in line for line in lines):
            raw = await process.stdout.readline()
            if not raw:
                raise RuntimeError(f"the bot exited before {text!r}:\n" + "\n".join(lines[-20:]))
            lines.append(raw.decode().rstrip("\n"))


async def _drain(process: asyncio.subprocess.Process, lines: list[str]) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        lines.append(raw.decode().rstrip("\n"))


async def _one_run(guilds: int, mentions: int, redis_url: str, folder: Path) -> dict[str, Any]:
    from memory import RedisStore
    from tests.discord_emulator import DiscordEmulator

    prefix = f"echobench{uuid.uuid4().hex[:10]}"
    async with DiscordEmulator() as emu:
        world = emu.populate()
        channels = [world.channel]
        while len(channels) < guilds:
            await asyncio.sleep(0.001)  # a snowflake's shard is its millisecond
            guild = emu.create_guild(f"server {len(channels)}")
            emu.add_member(guild.id, world.user.id)
            channels.append(emu.create_text_channel(guild.id, "general"))
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("ECHO_", "DISCORD_", "LLM_"))
        }
        base |= {
            "DISCORD_TOKEN": emu.token,
            "DISCORD_API_BASE": emu.api_base,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
            "DEV_GUILD_ID": str(world.guild.id),
            "ECHO_STORE": "redis",
            "REDIS_URL": redis_url,
            "ECHO_REDIS_PREFIX": prefix,
            "ECHO_SHARD_COUNT": str(SHARDS),
            "ECHO_USER_COOLDOWN_SECONDS": "0",
            "ECHO_MAX_CONCURRENT_REPLIES": "16",
        }
        processes: list[asyncio.subprocess.Process] = []
        logs: list[list[str]] = []
        readers: list[asyncio.Task[None]] = []
        try:
            started = time.perf_counter()
            for ids in PROCESSES:
                env = base | {"ECHO_SHARD_IDS": ids, "ECHO_DATA_DIR": str(folder / ids)}
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        env=env,
                        cwd=ROOT,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                )
                logs.append([])
            pairs = list(zip(processes, logs, strict=True))
            await asyncio.gather(*(_wait_for_line(p, lines, "ready:") for p, lines in pairs))
            ready = time.perf_counter() - started
            rss = [_rss_mib(p.pid) for p in processes]
            readers = [asyncio.get_running_loop().create_task(_drain(p, ls)) for p, ls in pairs]

            targets = channels[:mentions]
            posted = time.perf_counter()
            for channel in targets:
                await emu.post_message(channel.id, world.user.id, f"<@{emu.bot_user.id}> hello")
            threads = [await emu.wait_for_thread(c.id, timeout=60) for c in targets]

            def answered() -> bool | None:
                done = sum(
                    1
                    for t in threads
                    if any(
                        m.author_id == emu.bot_user.id and not m.content.endswith("▌")
                        for m in emu.store.channel_messages(t.id)
                    )
                )
                return True if done == len(threads) else None

            await emu.wait_for(answered, timeout=120, what="every mention answered")
            rate = len(threads) / (time.perf_counter() - posted)
        finally:
            for process in processes:
                if process.returncode is None:
                    process.terminate()
            for process in processes:
                await process.wait()
            for reader in readers:
                reader.cancel()
        async with RedisStore(redis_url, prefix=prefix) as store:
            async for key in store.redis.scan_iter(match=f"{prefix}:*"):  # the run's own
                await store.redis.delete(key)
    return {"ready": ready, "rss": rss, "rate": rate}


def run(quick: bool) -> Scenario:
    guilds = 200 if quick else 1000
    mentions = 40 if quick else 200
    runs = 1 if quick else 3
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    samples: dict[str, list[float]] = {"ready": [], "rss": [], "rate": []}
    with scratch_dir("shards") as folder:
        for n in range(runs):
            result = asyncio.run(_one_run(guilds, mentions, redis_url, folder / str(n)))
            samples["ready"].append(result["ready"])
            samples["rss"].append(max(result["rss"]))
            samples["rate"].append(result["rate"])
    group = f"{guilds:,} servers, {SHARDS} shards, 2 processes"
    rows = [
        Row(
            "Echo: spawn to every shard ready",
            "s",
            samples["ready"],
            higher_is_better=False,
            group=group,
        ),
        Row(
            "Echo: RSS per process, ready",
            "MiB",
            samples["rss"],
            higher_is_better=False,
            group=group,
        ),
        Row(f"Echo: {mentions} mentions answered", "mentions/s", samples["rate"], group=group),
    ]
    notes = [
        f"{runs} run(s); each: {guilds:,} guilds in the emulator, 2 python -m bot processes "
        f"(shards 0,1 and 2,3 of {SHARDS}) on one Redis, the offline echo model; the emulator and "
        "the bench run on the same cores as the bots.",
        "Start-up includes discord.py's 5 s pause between the two IDENTIFYs of each process "
        "(Discord's identify limit) and its wait for the last GUILD_CREATE.",
    ]
    return Scenario(NAME, TITLE, rows, [], notes)
