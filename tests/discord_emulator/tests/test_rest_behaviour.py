"""Proof: discord.py's own REST behaviour (rate limits, retries, limits) against the emulator."""

from __future__ import annotations

import logging

import discord
import pytest
from discord.http import Route

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot

MESSAGES = "/channels/{channel_id}/messages"


def _channel(bot: discord.Client, emu: DiscordEmulator) -> discord.TextChannel:
    assert emu.world is not None
    channel = bot.get_channel(emu.world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_rate_limited_message_is_retried_after_retry_after(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    fault = emu.fail_route("POST", MESSAGES, status=429, retry_after=0.3)
    bot = make_bot()
    async with running_bot(bot, emu):
        sent = await _channel(bot, emu).send("after the rate limit")

    posts = emu.requests_to("POST", MESSAGES)
    assert [r.status for r in posts] == [429, 200]
    assert posts[1].time - posts[0].time >= 0.3
    assert fault.hits == 1
    assert posts[0].response["retry_after"] == 0.3
    assert [m["content"] for m in emu.messages_in(sent.channel.id)] == ["after the rate limit"]


async def test_rate_limit_without_via_header_is_not_retried(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.fail_route("POST", MESSAGES, status=429, retry_after=0.1, via=False)
    bot = make_bot()
    async with running_bot(bot, emu):
        with pytest.raises(discord.HTTPException) as caught:
            await _channel(bot, emu).send("blocked")
    assert caught.value.status == 429
    assert len(emu.requests_to("POST", MESSAGES)) == 1


async def test_channel_message_bucket_is_waited_out_by_discord_py(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bucket = emu.limit_message_rate(limit=2, per=0.4)
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = _channel(bot, emu)
        for i in range(4):
            await channel.send(f"message {i}")

    posts = emu.requests_to("POST", MESSAGES)
    assert [r.status for r in posts] == [200, 200, 200, 200]
    assert bucket.throttled == 0  # the headers were enough: discord.py waited by itself
    assert posts[2].time - posts[0].time >= 0.4


async def test_server_error_is_retried_by_discord_py(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    emu.fail_route("POST", MESSAGES, status=500)
    bot = make_bot()
    async with running_bot(bot, emu):
        await _channel(bot, emu).send("second time lucky")

    assert [r.status for r in emu.requests_to("POST", MESSAGES)] == [500, 200]
    assert emu.requests_to("POST", MESSAGES)[0].response["message"] == "500: Internal Server Error"


async def test_content_over_2000_characters_is_refused_with_50035(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = _channel(bot, emu)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send("x" * 2001)
        exactly = await channel.send("y" * 2000)

    assert caught.value.status == 400
    assert caught.value.code == 50035
    assert "content" in caught.value.text and "2000 or fewer" in caught.value.text
    assert [len(m["content"]) for m in emu.messages_in(channel.id)] == [2000]
    assert exactly.content == "y" * 2000


async def test_allowed_mentions_are_recorded_and_decide_who_is_pinged(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    role = emu.create_role(world.guild.id, "helpers")
    bob = emu.create_user("bob")
    emu.add_member(world.guild.id, bob.id, roles=[role.id])
    text = f"<@{world.user.id}> <@{bob.id}> <@&{role.id}> @everyone"
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = _channel(bot, emu)
        only_alice = await channel.send(
            text,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(world.user.id)]
            ),
        )
        nobody = await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        default = await channel.send(text)

    first = emu.get_message(only_alice.id)
    assert first.allowed_mentions is not None
    assert (first.allowed_mentions["parse"], first.allowed_mentions["users"]) == (
        [],
        [world.user.id],
    )
    assert (first.mention_ids, first.mention_role_ids) == ([world.user.id], [])
    assert [u.id for u in only_alice.mentions] == [world.user.id]
    assert emu.get_message(nobody.id).mention_ids == []
    everything = emu.get_message(default.id)
    assert everything.allowed_mentions is None
    assert everything.mention_ids == [world.user.id, bob.id]
    assert everything.mention_role_ids == [role.id]
    assert not everything.mention_everyone  # the bot's role lacks MENTION_EVERYONE


async def test_reply_pings_the_author_only_when_allowed(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        posted = await emu.post_message(world.channel.id, world.user.id, "question")
        original = await _channel(bot, emu).fetch_message(int(posted["id"]))
        quiet = await original.reply("answer", mention_author=False)
        loud = await original.reply("answer")

    assert emu.get_message(quiet.id).mention_ids == []
    assert emu.get_message(loud.id).mention_ids == [world.user.id]
    assert emu.message_payload(emu.get_message(quiet.id))["type"] == 19


async def test_unknown_route_answers_discords_404_and_logs_an_error(
    discord_emulator: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu = discord_emulator
    bot = make_bot()
    async with running_bot(bot, emu):
        with pytest.raises(discord.NotFound) as caught:
            await bot.http.request(Route("GET", "/guilds/{guild_id}/emojis", guild_id=1))

    assert caught.value.code == 0
    assert caught.value.text == "404: Not Found"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("GET /guilds/1/emojis" in r.getMessage() for r in errors)


async def test_thread_edits_and_deletes_reach_the_bot(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    edits: list[tuple[str, str]] = []
    deletes: list[int] = []
    bot = make_bot()

    @bot.event
    async def on_message_edit(before: discord.Message, after: discord.Message) -> None:
        edits.append((before.content, after.content))

    @bot.event
    async def on_message_delete(message: discord.Message) -> None:
        deletes.append(message.id)

    async with running_bot(bot, emu):
        thread = await emu.create_thread(world.channel.id, "side chat", owner_id=world.user.id)
        await emu.wait_for(lambda: bot.get_channel(thread.id), timeout=5, what="thread cached")
        posted = await emu.post_message(thread.id, world.user.id, "first draft")
        await emu.wait_for(
            lambda: (bot.get_partial_messageable(thread.id) and bot.cached_messages) or None,
            timeout=5,
            what="message cached",
        )
        await emu.edit_message(thread.id, int(posted["id"]), "second draft")
        await emu.wait_for(lambda: edits or None, timeout=5, what="on_message_edit")
        await emu.delete_message(thread.id, int(posted["id"]))
        await emu.wait_for(lambda: deletes or None, timeout=5, what="on_message_delete")

    assert thread.type == 11
    [notice] = emu.messages_in(world.channel.id)  # "alice started a thread: side chat"
    assert (notice["type"], notice["content"]) == (18, "side chat")
    assert posted["channel_id"] == str(thread.id)
    assert edits == [("first draft", "second draft")]
    assert deletes == [int(posted["id"])]
