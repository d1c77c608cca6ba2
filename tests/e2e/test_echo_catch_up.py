"""Messages posted while Echo was down are read back from Discord, recorded once, answered once.

The emulator, like Discord, replays nothing to a fresh session: a message posted while no bot
is connected reaches the next ``python -m bot`` only through the thread's history.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from memory import RedisStore
from tests.discord_emulator import DiscordEmulator

from .test_echo_process import BotProcess, emulator_env, start_bot


def answers(emu: DiscordEmulator, thread_id: int) -> list[str]:
    """Echo's finished messages in a thread (a streamed one still growing ends with ▌)."""
    return [
        m.content
        for m in emu.store.channel_messages(thread_id)
        if m.author_id == emu.bot_user.id and not m.content.endswith("▌")
    ]


async def answered(emu: DiscordEmulator, thread_id: int, count: int) -> None:
    """Wait until Echo has finished ``count`` answers in the thread."""
    await emu.wait_for(
        lambda: True if len(answers(emu, thread_id)) >= count else None,
        timeout=15,
        what=f"{count} answer(s) in thread {thread_id}",
    )


def people(history: list[dict[str, Any]]) -> list[str]:
    return [m["message_content"] for m in history if m["meta"].get("requester")]


async def started(env: dict[str, str], cwd: Path) -> BotProcess:
    bot = await start_bot(env, cwd)
    await bot.wait_for_line("ready:")
    return bot


async def test_messages_posted_while_echo_was_stopped_are_recorded_and_answered_once(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    env = emulator_env(emu, tmp_path, ECHO_USER_COOLDOWN_SECONDS="0")
    bot = await started(env, tmp_path)
    try:
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hi")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await answered(emu, thread.id, 1)
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()

    # Echo is down: two messages in its thread.
    await emu.post_message(thread.id, world.user.id, "first while you were away")
    await emu.post_message(thread.id, world.user.id, "second while you were away")

    bot = await started(env, tmp_path)
    try:
        await bot.wait_for_line("caught up 1 thread(s): 2 message(s) recorded")
        await answered(emu, thread.id, 2)
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()
    # One answer, to the newest, with the other as context.
    assert answers(emu, thread.id)[1].endswith("You said: second while you were away")

    # A restart with nothing new records nothing and answers nothing again.
    bot = await started(env, tmp_path)
    try:
        await bot.wait_for_line("caught up 1 thread(s): 0 message(s) recorded")
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()
    assert len(answers(emu, thread.id)) == 2

    [path] = list((tmp_path / "data" / "guilds").glob("*/*.json"))
    history = json.loads(path.read_text())["history"]
    assert people(history) == [
        "@Echo hi",
        "first while you were away",
        "second while you were away",
    ]
    assert len(history) == 5  # three messages, two answers: nothing twice


async def test_edits_and_deletes_made_while_echo_was_down_reach_the_record(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    env = emulator_env(emu, tmp_path, ECHO_USER_COOLDOWN_SECONDS="0")
    bot = await started(env, tmp_path)
    try:
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hi")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await answered(emu, thread.id, 1)
        kept = await emu.post_message(thread.id, world.user.id, "a typo here")
        await answered(emu, thread.id, 2)
        gone = await emu.post_message(thread.id, world.user.id, "a secret")
        await answered(emu, thread.id, 3)
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()

    await emu.edit_message(thread.id, int(kept["id"]), "no typo here")
    await emu.delete_message(thread.id, int(gone["id"]))

    bot = await started(env, tmp_path)
    try:
        await bot.wait_for_line("caught up 1 thread(s): 0 message(s) recorded, 1 edited, 1 deleted")
        assert await bot.stop(signal.SIGTERM) == 0
    finally:
        await bot.kill()
    [path] = list((tmp_path / "data" / "guilds").glob("*/*.json"))
    history = json.loads(path.read_text())["history"]
    assert people(history) == ["@Echo hi", "no typo here"]
    assert "secret" not in [m["message_content"] for m in history]
    assert len(answers(emu, thread.id)) == 3  # an edit seen late is not answered again


async def test_a_killed_shard_process_catches_up_its_threads_on_restart(
    discord_emulator: DiscordEmulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from .test_echo_shards import SHARDS, guilds_on_every_shard

    emu = discord_emulator
    world = emu.world
    assert world is not None
    channels = guilds_on_every_shard(emu)
    shared = {
        "ECHO_STORE": "redis",
        "REDIS_URL": redis_url,
        "ECHO_REDIS_PREFIX": redis_prefix,
        "ECHO_SHARD_COUNT": str(SHARDS),
        "ECHO_USER_COOLDOWN_SECONDS": "0",
    }
    envs = {
        ids: emulator_env(
            emu, tmp_path, **shared, ECHO_SHARD_IDS=ids, ECHO_DATA_DIR=str(tmp_path / ids)
        )
        for ids in ("0,1", "2,3")
    }
    a = await started(envs["0,1"], tmp_path)
    b = await started(envs["2,3"], tmp_path)
    try:
        threads = {}
        for shard, channel in sorted(channels.items()):
            await emu.post_message(channel.id, world.user.id, f"<@{emu.bot_user.id}> shard {shard}")
            threads[shard] = await emu.wait_for_thread(channel.id, timeout=15)
        for thread in threads.values():
            await answered(emu, thread.id, 1)
        await b.kill()  # SIGKILL: shards 2 and 3 go silent
        for shard in (2, 3):
            await emu.post_message(threads[shard].id, world.user.id, f"missed on shard {shard}")
        await emu.post_message(threads[0].id, world.user.id, "live on shard 0")
        await answered(emu, threads[0].id, 2)

        b = await started(envs["2,3"], tmp_path)
        for shard in (2, 3):
            await answered(emu, threads[shard].id, 2)
    finally:
        await a.stop()
        await b.stop()
    # Each shard caught up its own server's thread, once.
    caught = [line for line in b.log.splitlines() if "caught up" in line]
    assert len(caught) == 2, b.log
    assert all("caught up 1 thread(s): 1 message(s) recorded" in line for line in caught)
    assert "caught up" not in a.log  # the other process's threads were never away
    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        for shard, thread in threads.items():
            stored = await store.load(str(thread.id))
            assert stored is not None
            said = [m.message_content for m in stored.history if m.requester is not None]
            expected = "live on shard 0" if shard == 0 else f"missed on shard {shard}"
            if shard == 1:
                assert len(said) == 1
            else:
                assert said[1:] == [expected], said
            assert len(answers(emu, thread.id)) == len(said)  # each answered once
