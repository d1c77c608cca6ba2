"""Several ``python -m bot`` processes on Discord's own sharding, sharing Redis.

The emulator routes each guild's events to the session of its shard, ``(guild_id >> 22) %
shard_count``, as Discord does; the processes split the shards with ECHO_SHARD_COUNT and
ECHO_SHARD_IDS.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from memory import RedisStore
from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.state import Channel

from .echo_harness import running_echo
from .test_echo_process import BotProcess, emulator_env, start_bot

SHARDS = 4


def shard_of(guild_id: int, count: int = SHARDS) -> int:
    return (guild_id >> 22) % count


def guilds_on_every_shard(emu: DiscordEmulator) -> dict[int, Channel]:
    """A text channel in a guild of each shard (the default guild's among them)."""
    world = emu.world
    assert world is not None
    channels = {shard_of(world.guild.id): world.channel}
    while len(channels) < SHARDS:
        time.sleep(0.001)  # a snowflake's shard comes from its timestamp
        guild = emu.create_guild(f"guild {len(channels)}")
        if shard_of(guild.id) in channels:
            continue
        emu.add_member(guild.id, world.user.id)
        channels[shard_of(guild.id)] = emu.create_text_channel(guild.id, "general")
    return channels


def command_syncs(emu: DiscordEmulator) -> int:
    return sum(1 for r in emu.requests if r.method == "PUT" and r.path.endswith("/commands"))


async def test_two_processes_split_four_shards_and_answer_each_mention_once(
    discord_emulator: DiscordEmulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    channels = guilds_on_every_shard(emu)
    shared = {
        "ECHO_STORE": "redis",
        "REDIS_URL": redis_url,
        "ECHO_REDIS_PREFIX": redis_prefix,
        "ECHO_SHARD_COUNT": str(SHARDS),
        "ECHO_USER_COOLDOWN_SECONDS": "0",  # alice mentions Echo in four servers at once
    }
    processes: list[BotProcess] = []
    try:
        for name, ids in (("a", "0,1"), ("b", "2-3")):
            env = emulator_env(
                emu,
                tmp_path,
                **shared,
                ECHO_SHARD_IDS=ids,
                ECHO_DATA_DIR=str(tmp_path / name),
            )
            processes.append(await start_bot(env, tmp_path))
        for process in processes:
            await process.wait_for_line("ready:", timeout=40)

        threads = {}
        for shard, channel in sorted(channels.items()):
            await emu.post_message(channel.id, world.user.id, f"<@{emu.bot_user.id}> shard {shard}")
            threads[shard] = await emu.wait_for_thread(channel.id, timeout=15)
        for shard, thread in threads.items():
            await emu.wait_for_message(
                thread.id,
                predicate=lambda m, s=shard: (
                    f"shard {s}" in m["content"] and not m["content"].endswith("▌")
                ),
                timeout=15,
            )
        await asyncio.sleep(1.0)  # time for a second process to answer too, were it to
    finally:
        for process in processes:
            await process.stop()
    logs = [p.log for p in processes]

    # Each shard was identified once, by the process running it.
    assert sorted(s for s in emu.gateway.identified if s is not None) == [
        (n, SHARDS) for n in range(SHARDS)
    ]
    assert None not in emu.gateway.identified
    assert "running shard(s) 0,1 of 4" in logs[0] and "running shard(s) 2,3 of 4" in logs[1]
    # Commands are synced once per bot: by the process of shard 0.
    assert command_syncs(emu) == 1
    assert "synced" in logs[0] and "synced" not in logs[1]
    # Every mention: one thread, one answer, recorded once in the shared Redis.
    for shard, thread in threads.items():
        answers = [
            m for m in emu.store.channel_messages(thread.id) if m.author_id == emu.bot_user.id
        ]
        assert len(answers) == 1, (shard, [m.content for m in answers])
    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        for thread in threads.values():
            stored = await store.load(str(thread.id))
            assert stored is not None and len(stored.history) == 2


async def test_with_no_shard_settings_echo_runs_the_count_discord_recommends(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    """Past 2,500 servers Discord asks for shards (an unsharded IDENTIFY is closed with 4011,
    see the emulator's self-test); Echo asks /gateway/bot and runs them all."""
    emu = discord_emulator
    emu.recommended_shards = 2
    async with running_echo(emu, tmp_path) as echo:
        assert echo.bot.shard_count == 2 and sorted(echo.bot.shards) == [0, 1]
        thread = await echo.mention("hello, sharded")
        await echo.answer_in(thread.id, lambda m: "hello, sharded" in m["content"])
    assert sorted(s for s in emu.gateway.identified if s is not None) == [(0, 2), (1, 2)]
    assert None not in emu.gateway.identified
