"""The whole bot on ECHO_STORE=redis: it answers, Redis holds everything, and an outage of
Redis is one log line, not a silent bot or a lost message."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import pytest

from memory import RedisStore
from tests.discord_emulator import DiscordEmulator
from tests.redis_support import PrivateRedis

from .echo_harness import running_echo


def redis_settings(url: str, prefix: str = "echo") -> dict[str, str]:
    return {"ECHO_STORE": "redis", "REDIS_URL": url, "ECHO_REDIS_PREFIX": prefix}


async def test_echo_records_in_redis_and_writes_no_conversation_files(
    discord_emulator: DiscordEmulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    async with running_echo(
        discord_emulator, tmp_path, **redis_settings(redis_url, redis_prefix)
    ) as echo:
        thread = await echo.mention("remember the blue door")
        await echo.answer_in(thread.id)
        await echo.say(thread.id, "and the red key")
        await echo.answer_in(thread.id, lambda m: "red key" in m["content"])
        guild = str(echo.world.guild.id)

    async with RedisStore(redis_url, prefix=redis_prefix) as store:
        stored = await store.load(str(thread.id))
        listed = await store.list_conversations(guild)
    assert stored is not None
    texts = [m.message_content for m in stored.history]
    assert len(texts) == 4
    assert "remember the blue door" in texts[0] and texts[2] == "and the red key"
    assert [r.thread_id for r in listed] == [str(thread.id)]
    assert echo.files() == []  # Redis is the store: no JSON conversation files


async def test_echo_keeps_answering_while_redis_is_away_and_loses_nothing(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="memory.stores.redis")
    async with running_echo(
        discord_emulator, tmp_path, **redis_settings(private_redis.url)
    ) as echo:
        thread = await echo.mention("first, with Redis")
        await echo.answer_in(thread.id)
        private_redis.stop()
        for n in range(3):
            await echo.say(thread.id, f"during the outage {n}")
            await echo.answer_in(thread.id, lambda m, n=n: f"outage {n}" in m["content"])
        private_redis.start()
        await echo.say(thread.id, "after it came back")
        await echo.answer_in(thread.id, lambda m: "came back" in m["content"])
        store = echo.bot.manager.store
        assert isinstance(store, RedisStore)
        deadline = time.monotonic() + 20
        while not store.online:
            assert time.monotonic() < deadline, "the spool was never flushed"
            await asyncio.sleep(0.05)

    async with RedisStore(private_redis.url) as fresh:
        stored = await fresh.load(str(thread.id))
    assert stored is not None
    people = [m.message_content for m in stored.history if m.requester is not None]
    assert len(people) == 5
    assert people[1:] == [
        "during the outage 0",
        "during the outage 1",
        "during the outage 2",
        "after it came back",
    ]
    assert len(stored.history) == 10  # each answered once, nothing twice
    away = [r for r in caplog.records if "is unreachable" in r.getMessage()]
    back = [r for r in caplog.records if "is back:" in r.getMessage()]
    assert len(away) == 1 and len(back) == 1, [r.getMessage() for r in caplog.records]


async def test_the_real_bot_waits_for_redis_at_start_up_then_answers(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    from tests.redis_support import PrivateRedis

    from .test_echo_process import emulator_env, start_bot

    emu = discord_emulator
    world = emu.world
    assert world is not None
    server = PrivateRedis(tmp_path / "late-redis", persist=True)
    env = emulator_env(emu, tmp_path, **redis_settings(server.url))
    bot = await start_bot(env, tmp_path)
    try:
        await bot.wait_for_line("retrying in")
        await asyncio.to_thread(server.start)
        await bot.wait_for_line("ready:")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> late")
        thread = await emu.wait_for_thread(world.channel.id, timeout=10)
        await emu.wait_for_message(
            thread.id, predicate=lambda m: not m["content"].endswith("▌"), timeout=10
        )
        code = await bot.stop(signal.SIGTERM)
        async with RedisStore(server.url) as store:
            stored = await store.load(str(thread.id))
    finally:
        await bot.kill()
        server.stop()
    assert code == 0, bot.log
    assert stored is not None and len(stored.history) == 2


async def test_a_signal_while_waiting_for_redis_stops_cleanly(tmp_path: Path) -> None:
    from tests.redis_support import free_port

    from .test_echo_process import bot_env, start_bot

    env = bot_env(
        tmp_path,
        DISCORD_TOKEN="x",
        ECHO_DATA_DIR=str(tmp_path / "data"),
        **redis_settings(f"redis://127.0.0.1:{free_port()}/0"),
    )
    bot = await start_bot(env, tmp_path)
    try:
        await bot.wait_for_line("retrying in")
        code = await bot.stop(signal.SIGTERM)
    finally:
        await bot.kill()
    assert code == 0, bot.log
    assert "signal received during start-up" in bot.log


def redis_values(url: str, prefix: str) -> str:
    """Everything stored under the prefix, as one text (strings, lists, hashes, sets, streams)."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(url, decode_responses=True)
    parts: list[str] = []
    try:
        for key in client.scan_iter(match=f"{prefix}:*"):
            kind = client.type(key)
            if kind == "string":
                parts.append(client.get(key) or "")
            elif kind == "list":
                parts.extend(client.lrange(key, 0, -1))
            elif kind == "hash":
                parts.extend(f"{k}={v}" for k, v in client.hgetall(key).items())
            elif kind in ("set", "zset"):
                parts.extend(client.smembers(key) if kind == "set" else client.zrange(key, 0, -1))
            elif kind == "stream":
                parts.extend(str(e) for e in client.xrange(key))
    finally:
        client.close()
    return "\n".join(parts)


async def test_forget_on_redis_leaves_nothing_of_them_in_redis_or_the_index(
    discord_emulator: DiscordEmulator, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from .test_echo_memory import FAST, confirm_id, talk_and_let_idle

    emu = discord_emulator
    settings = FAST | redis_settings(redis_url, redis_prefix)
    async with running_echo(emu, tmp_path, **settings) as echo:
        guild = echo.world.guild.id
        alice = echo.world.user.id
        bob = emu.create_user("bob")
        emu.add_member(guild, bob.id)
        await talk_and_let_idle(echo, "My kumquat allergy is serious.")
        await emu.post_message(echo.world.channel.id, bob.id, echo.ping("Planning a picnic."))
        bobs = await emu.wait_for_thread(
            echo.world.channel.id, predicate=lambda t: "picnic" in t.name.lower()
        )
        await echo.answer_in(bobs.id)
        await echo.say(bobs.id, "I'll bring kumquat tarts.", author_id=alice)
        await echo.emu.wait_for(
            lambda: len(emu.messages_in(bobs.id)) == 3 or None, timeout=5, what="answer"
        )
        await echo.emu.wait_for(
            lambda: echo.conversation(bobs.id) is None or None, timeout=5, what="idle"
        )
        report = await echo.bot.memories.generate()
        assert report.generated == 2
        assert "kumquat" in redis_values(redis_url, redis_prefix).lower()

        handle = await emu.invoke_command(guild, echo.world.channel.id, alice, "memory forget")
        warning = await handle.original()
        click = await emu.click(int(warning["id"]), confirm_id(warning), alice)
        done = await click.original(predicate=lambda m: m["content"].startswith("Done"))
    assert "1 conversation(s) deleted" in done["content"]
    stored = redis_values(redis_url, redis_prefix)
    assert "Planning a picnic" in stored  # bob's conversation stays
    assert "kumquat" not in stored.lower()
    assert str(alice) not in stored
    index = list((echo.data_dir / "index").rglob("*.sqlite3*"))
    assert index and all(b"kumquat" not in p.read_bytes().lower() for p in index)


async def test_an_outage_answers_idle_threads_and_new_mentions_and_lands_them_merged(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis stopped, a message in a thread whose conversation was evicted and a new
    mention are both answered; once Redis is back, both land in it exactly once, in order,
    after the history Redis held."""
    caplog.set_level(logging.INFO)
    emu = discord_emulator
    settings = redis_settings(private_redis.url) | {"ECHO_IDLE_SECONDS": "0.3"}
    async with running_echo(emu, tmp_path, **settings) as echo:
        old = await echo.mention("the old question")
        await echo.answer_in(old.id)
        await echo.say(old.id, "the old follow-up")
        await echo.answer_in(old.id, lambda m: "old follow-up" in m["content"])
        await emu.wait_for(
            lambda: echo.conversation(old.id) is None or None, timeout=5, what="idle eviction"
        )
        private_redis.stop()

        await echo.say(old.id, "back in the old thread while Redis is away")
        await echo.answer_in(old.id, lambda m: "while Redis is away" in m["content"])
        await echo.say(old.id, "and once more")
        await echo.answer_in(old.id, lambda m: "once more" in m["content"])
        await emu.post_message(echo.world.channel.id, echo.world.user.id, echo.ping("brand new"))
        new = await emu.wait_for_thread(
            echo.world.channel.id, predicate=lambda t: "brand new" in t.name
        )
        await echo.answer_in(new.id, lambda m: "brand new" in m["content"])
        await echo.say(new.id, "second in the new thread")
        await echo.answer_in(new.id, lambda m: "second in the new" in m["content"])

        private_redis.start()
        store = echo.bot.manager.store
        assert isinstance(store, RedisStore)
        deadline = time.monotonic() + 20
        while not store.online:
            assert time.monotonic() < deadline, "the spool was never flushed"
            await asyncio.sleep(0.05)
        # Back online, the thread is answered with its whole history again.
        await echo.say(old.id, "after Redis came back")
        await echo.answer_in(old.id, lambda m: "came back" in m["content"])

    async with RedisStore(private_redis.url) as fresh:
        kept_old = await fresh.load(str(old.id))
        kept_new = await fresh.load(str(new.id))
    assert kept_old is not None and kept_new is not None
    said_old = [m.message_content for m in kept_old.history if m.requester is not None]
    assert [s.removeprefix("@Echo ") for s in said_old] == [
        "the old question",
        "the old follow-up",
        "back in the old thread while Redis is away",
        "and once more",
        "after Redis came back",
    ]
    assert len(kept_old.history) == 10  # each answered once, nothing twice
    ids = [m.message_id for m in kept_old.history if m.message_id]
    assert len(ids) == len(set(ids))
    assert kept_old.requester == str(echo.world.user.id)
    said_new = [m.message_content for m in kept_new.history if m.requester is not None]
    assert [s.removeprefix("@Echo ") for s in said_new] == [
        "brand new",
        "second in the new thread",
    ]
    assert len(kept_new.history) == 4
    lines = [r.getMessage() for r in caplog.records]
    holding = [line for line in lines if "answering with what this process holds" in line]
    assert len(holding) == 1 and str(old.id) in holding[0], lines
    silent = [x for x in lines if "cannot read the conversation" in x and "holds" not in x]
    assert not silent, silent
