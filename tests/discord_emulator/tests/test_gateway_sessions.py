"""Proof: dropped gateway connections are resumed, and what Discord refuses is refused."""

from __future__ import annotations

import discord
import pytest

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import emulated_discord, make_bot, running_bot


def _content_bot(seen: list[str]) -> discord.Client:
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    return bot


@pytest.mark.parametrize("close_code", [4000, None], ids=["close-4000", "abnormal"])
async def test_dropped_connection_resumes_and_replays_missed_events(
    discord_emulator: DiscordEmulator, close_code: int | None
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[str] = []
    bot = _content_bot(seen)

    async with running_bot(bot, emu):
        await emu.post_message(world.channel.id, world.user.id, "before the drop")
        await emu.wait_for(lambda: "before the drop" in seen or None, timeout=5, what="message 1")
        assert await emu.drop_gateway(close_code) == 1
        # Posted while the bot has no connection: Discord keeps it for the resume.
        await emu.post_message(world.channel.id, world.user.id, "during the gap")
        await emu.wait_for_gateway("RESUMED", direction="send")
        await emu.wait_for(lambda: "during the gap" in seen or None, timeout=5, what="replay")
        await emu.post_message(world.channel.id, world.user.id, "after the resume")
        await emu.wait_for(lambda: "after the resume" in seen or None, timeout=5, what="message 3")

    assert seen == ["before the drop", "during the gap", "after the resume"]
    assert emu.identify_count == 1
    assert emu.resume_count == 1
    [resume] = emu.gateway_frames("RESUME", direction="recv")
    [ready] = emu.gateway_frames("READY", direction="send")
    assert resume.d["session_id"] == ready.d["session_id"]
    assert resume.path == "/resume"  # READY's resume_gateway_url, as discord.py must use
    replayed = [f for f in emu.gateway_log if f.replayed]
    assert [f.name for f in replayed] == ["MESSAGE_CREATE"]
    assert replayed[0].d["content"] == "during the gap"
    assert resume.d["seq"] == replayed[0].s - 1


async def test_reconnect_opcode_is_answered_with_resume(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    bot = make_bot()
    async with running_bot(bot, emu):
        await emu.send_reconnect()
        await emu.wait_for_gateway("RESUMED", direction="send")
    assert (emu.identify_count, emu.resume_count) == (1, 1)


async def test_invalid_session_makes_the_client_identify_again(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        thread_parent = bot.get_channel(world.channel.id)
        assert isinstance(thread_parent, discord.TextChannel)
        thread = await thread_parent.create_thread(
            name="kept", type=discord.ChannelType.public_thread
        )
        await emu.invalidate_session()
        # discord.py's before_identify_hook sleeps 5 s before every re-IDENTIFY.
        await emu.wait_for_gateway("READY", direction="send", count=2, timeout=10)
        await emu.wait_for_gateway("GUILD_CREATE", direction="send", count=2)
        # The fresh session learns the thread from GUILD_CREATE's active threads.
        await emu.wait_for(
            lambda: isinstance(bot.get_channel(thread.id), discord.Thread) or None,
            timeout=5,
            what="the thread in the new session's cache",
        )
    assert emu.identify_count == 2
    second_guild_create = emu.gateway_frames("GUILD_CREATE", direction="send")[1]
    assert [t["id"] for t in second_guild_create.d["threads"]] == [str(thread.id)]


async def test_restarted_bot_sees_active_threads_in_its_cache(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    posted = await emu.post_message(world.channel.id, world.user.id, "start here")
    thread = await emu.create_thread(
        world.channel.id,
        "an earlier conversation",
        owner_id=emu.bot_user.id,
        message_id=int(posted["id"]),
    )
    seen: list[tuple[str, str]] = []
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.append((type(message.channel).__name__, message.content))

    async with running_bot(bot, emu):
        cached = bot.get_channel(thread.id)
        await emu.post_message(thread.id, world.user.id, "back again")
        await emu.wait_for(lambda: seen or None, timeout=5, what="on_message")

    assert isinstance(cached, discord.Thread)
    assert cached.parent_id == world.channel.id
    assert seen == [("Thread", "back again")]


async def test_wrong_token_fails_login() -> None:
    async with emulated_discord() as emu:
        bot = make_bot()
        with pytest.raises(discord.LoginFailure):
            async with running_bot(bot, emu, token="not-the-token"):
                pass
        assert emu.requests[-1].status == 401
        assert emu.identify_count == 0


async def test_privileged_intent_not_enabled_closes_with_4014() -> None:
    async with emulated_discord(privileged_intents=()) as emu:
        bot = make_bot()  # asks for message_content
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with running_bot(bot, emu):
                pass
        assert emu.gateway_frames("CLOSE 4014")


async def test_without_message_content_intent_content_is_empty_unless_mentioned(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[str] = []
    bot = make_bot(intents=discord.Intents.default())

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    async with running_bot(bot, emu):
        await emu.post_message(world.channel.id, world.user.id, "nobody asked the bot")
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hello")
        await emu.wait_for(lambda: len(seen) == 2 or None, timeout=5, what="two messages")

    assert seen == ["", f"<@{emu.bot_user.id}> hello"]
    [identify] = emu.gateway_frames("IDENTIFY")
    assert identify.d["intents"] == discord.Intents.default().value


async def test_without_guild_messages_intent_no_message_events(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    intents = discord.Intents.default()
    intents.guild_messages = False
    bot = make_bot(intents=intents)
    async with running_bot(bot, emu):
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hi")
    assert emu.gateway_frames("MESSAGE_CREATE") == []


async def test_a_bot_that_ignores_recommended_sharding_is_refused(
    discord_emulator: DiscordEmulator,
) -> None:
    """What Discord does past 2,500 servers: an IDENTIFY without a shard is closed, 4011."""
    emu = discord_emulator
    emu.recommended_shards = 2
    bot = make_bot()
    try:
        async with running_bot(bot, emu):
            raise AssertionError("an unsharded bot got in")
    except discord.ConnectionClosed as exc:
        assert exc.code == 4011
