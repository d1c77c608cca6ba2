"""Proof: DMs, repeated deliveries of one event, and the REST details replies and exports use."""

from __future__ import annotations

import io

import discord
import pytest

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot

EPHEMERAL = 64


def _channel(bot: discord.Client, emu: DiscordEmulator) -> discord.TextChannel:
    assert emu.world is not None
    channel = bot.get_channel(emu.world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


def _recording_bot(seen: list[discord.Message], **options: object) -> discord.Client:
    bot = make_bot(**options)

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            seen.append(message)

    return bot


# -- direct messages ----------------------------------------------------------------------


async def test_dm_reaches_on_message_and_the_answer_lands_in_the_dm_channel(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[tuple[object, str, str]] = []
    # No message_content intent: DMs are exempt, their content still arrives.
    bot = make_bot(intents=discord.Intents.default())

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        seen.append((message.guild, type(message.channel).__name__, message.content))
        await message.channel.send(f"you said: {message.content}")

    async with running_bot(bot, emu):
        posted = await emu.post_dm(world.user.id, "hello in private")
        dm = emu.dm_channel(world.user.id)
        answer = await emu.wait_for_message(dm.id)

    assert seen == [(None, "DMChannel", "hello in private")]
    assert answer["content"] == "you said: hello in private"
    assert posted["channel_id"] == answer["channel_id"] == str(dm.id)
    assert "guild_id" not in answer
    [user_dm, bot_dm] = [f.d for f in emu.gateway_frames("MESSAGE_CREATE")]
    assert user_dm["id"] == posted["id"]
    assert "guild_id" not in user_dm and "member" not in user_dm
    assert bot_dm["author"]["id"] == str(emu.bot_user.id)
    # The DM channel has Discord's shape, and it is the same channel every time.
    assert emu.dm_channel(world.user.id) is dm
    assert (dm.type, dm.guild_id, dm.recipient_ids) == (1, None, [world.user.id])


async def test_without_the_dm_messages_intent_dms_are_not_dispatched(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[discord.Message] = []
    intents = discord.Intents.default()
    intents.dm_messages = False
    bot = _recording_bot(seen, intents=intents)

    async with running_bot(bot, emu):
        await emu.post_dm(world.user.id, "anyone?")
        # A guild message afterwards: once it arrived, the DM would have arrived before it.
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> ping")
        await emu.wait_for(lambda: seen or None, timeout=5, what="the guild message")

    assert [m.guild for m in seen] == [bot.get_guild(world.guild.id)]
    [frame] = emu.gateway_frames("MESSAGE_CREATE")
    assert frame.d["guild_id"] == str(world.guild.id)


async def test_user_send_opens_the_dm_channel_once(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        user = await bot.fetch_user(world.user.id)
        first = await user.send("a note for you")
        second = await user.send("and another")
        dm = emu.dm_channel(world.user.id)
        await emu.wait_for_message(dm.id, predicate=lambda m: m["content"] == "and another")

    assert isinstance(first.channel, discord.DMChannel)
    assert first.guild is None
    assert first.channel.id == second.channel.id == dm.id
    assert [m["content"] for m in emu.messages_in(dm.id)] == ["a note for you", "and another"]
    [opened] = emu.requests_to("POST", "/users/@me/channels")  # discord.py caches the DM
    assert opened.json == {"recipient_id": world.user.id}
    assert opened.response["type"] == 1
    assert opened.response["id"] == str(dm.id)
    assert [r["id"] for r in opened.response["recipients"]] == [str(world.user.id)]
    assert "guild_id" not in opened.response


async def test_dm_to_a_user_with_closed_dms_is_forbidden(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    world.user.accepts_dms = False
    bot = make_bot()
    async with running_bot(bot, emu):
        user = await bot.fetch_user(world.user.id)
        with pytest.raises(discord.Forbidden) as caught:
            await user.send("you will not see this")

    assert caught.value.code == 50007
    assert emu.messages_in(emu.dm_channel(world.user.id).id) == []


async def test_dm_reply_and_deletes_follow_discords_dm_rules(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[discord.Message] = []
    bot = _recording_bot(seen)
    async with running_bot(bot, emu):
        await emu.post_dm(world.user.id, "reply to me")
        await emu.wait_for(lambda: seen or None, timeout=5, what="the DM")
        reply = await seen[0].reply("replying")
        await reply.delete()  # the bot's own DM message: allowed
        with pytest.raises(discord.Forbidden) as caught:
            await seen[0].delete()  # the user's: not in a DM

    assert caught.value.code == 50003
    stored = emu.get_message(reply.id)
    assert stored.deleted
    assert stored.message_reference == {
        "type": 0,
        "message_id": str(seen[0].id),
        "channel_id": str(seen[0].channel.id),
    }
    assert [m["content"] for m in emu.messages_in(seen[0].channel.id)] == ["reply to me"]


# -- the same event delivered twice --------------------------------------------------------


async def test_redelivered_message_create_reaches_on_message_twice(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[discord.Message] = []
    bot = _recording_bot(seen)
    async with running_bot(bot, emu):
        posted = await emu.post_message(world.channel.id, world.user.id, "only once, please")
        await emu.wait_for(lambda: len(seen) == 1 or None, timeout=5, what="first delivery")
        assert await emu.redeliver_message(int(posted["id"])) == 1
        await emu.wait_for(lambda: len(seen) == 2 or None, timeout=5, what="second delivery")

    assert [m.id for m in seen] == [int(posted["id"])] * 2
    assert [m.content for m in seen] == ["only once, please"] * 2
    first, again = emu.gateway_frames("MESSAGE_CREATE")
    assert first.d == again.d
    assert again.s is not None and first.s is not None and again.s > first.s
    assert (first.redelivered, again.redelivered) == (False, True)


async def test_redelivered_dm_keeps_its_dm_shape(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[discord.Message] = []
    bot = _recording_bot(seen)
    async with running_bot(bot, emu):
        posted = await emu.post_dm(world.user.id, "private, twice")
        await emu.wait_for(lambda: seen or None, timeout=5, what="first delivery")
        await emu.redeliver_message(int(posted["id"]))
        await emu.wait_for(lambda: len(seen) == 2 or None, timeout=5, what="second delivery")

    assert [(m.id, m.guild, type(m.channel).__name__) for m in seen] == [
        (int(posted["id"]), None, "DMChannel")
    ] * 2


async def test_resume_can_replay_an_event_the_bot_already_received(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    seen: list[discord.Message] = []
    bot = _recording_bot(seen)
    async with running_bot(bot, emu):
        posted = await emu.post_message(world.channel.id, world.user.id, "handled already")
        await emu.wait_for(lambda: len(seen) == 1 or None, timeout=5, what="first delivery")
        [original] = emu.gateway_frames("MESSAGE_CREATE")
        assert original.s is not None
        await emu.drop_gateway(4000, replay_from=original.s)
        await emu.wait_for_gateway("RESUMED", direction="send")
        await emu.wait_for(lambda: len(seen) == 2 or None, timeout=5, what="the replay")
        # The session goes on normally after the replay.
        await emu.post_message(world.channel.id, world.user.id, "something new")
        await emu.wait_for(lambda: len(seen) == 3 or None, timeout=5, what="a new message")

    assert [m.content for m in seen] == ["handled already", "handled already", "something new"]
    assert seen[0].id == seen[1].id == int(posted["id"])
    [resume] = emu.gateway_frames("RESUME", direction="recv")
    assert resume.d["seq"] >= original.s  # the bot had acknowledged it already...
    replayed = [f for f in emu.gateway_log if f.replayed and f.name == "MESSAGE_CREATE"]
    assert [(f.s, f.d["id"]) for f in replayed] == [(original.s, posted["id"])]  # ...yet again
    assert (emu.identify_count, emu.resume_count) == (1, 1)


async def test_replay_from_outside_the_session_is_refused(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bot = make_bot()
    async with running_bot(bot, emu):
        [session] = emu.gateway.sessions.values()
        with pytest.raises(ValueError, match="never dispatched"):
            await emu.drop_gateway(4000, replay_from=session.seq + 1)
    assert emu.gateway_frames("CLOSE 4000") == []


# -- replies, edits and exported files -----------------------------------------------------


async def test_reply_to_a_deleted_message_without_fail_if_not_exists(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = _channel(bot, emu)
        posted = await emu.post_message(world.channel.id, world.user.id, "soon gone")
        original = await channel.fetch_message(int(posted["id"]))
        await emu.delete_message(world.channel.id, original.id)
        with pytest.raises(discord.HTTPException) as caught:
            await original.reply("too late")
        sent = await channel.send(
            "answer anyway", reference=original.to_reference(fail_if_not_exists=False)
        )

    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert "Unknown message" in caught.value.text
    assert sent.reference is None
    payload = emu.message_payload(emu.get_message(sent.id))
    assert payload["type"] == 0
    assert "message_reference" not in payload
    [failed, ok] = emu.requests_to("POST", "/channels/{channel_id}/messages")
    assert failed.status == 400
    assert ok.json["message_reference"]["fail_if_not_exists"] is False


async def test_reply_to_a_message_in_another_channel_is_refused(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = _channel(bot, emu)
        posted = await emu.post_message(world.channel.id, world.user.id, "start a thread")
        original = await channel.fetch_message(int(posted["id"]))
        thread = await original.create_thread(name="elsewhere")
        with pytest.raises(discord.HTTPException) as caught:
            await thread.send("replying across channels", reference=original)
        in_thread = await thread.send("fine without a reference")

    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert "Cannot reply to a message in a different channel" in caught.value.text
    assert [m["id"] for m in emu.messages_in(thread.id)] == [str(in_thread.id)]


async def test_edit_replaces_attachments_and_applies_allowed_mentions(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    async with running_bot(bot, emu):
        sent = await _channel(bot, emu).send(
            "v1", file=discord.File(io.BytesIO(b"first"), filename="a.txt")
        )
        edited = await sent.edit(
            content=f"<@{world.user.id}> v2",
            attachments=[sent.attachments[0], discord.File(io.BytesIO(b"second"), "b.txt")],
            allowed_mentions=discord.AllowedMentions.none(),
        )
        after_two = emu.files(sent.id)
        await edited.edit(attachments=[])

    assert after_two == {"a.txt": b"first", "b.txt": b"second"}
    assert [a.filename for a in edited.attachments] == ["a.txt", "b.txt"]
    stored = emu.get_message(sent.id)
    assert stored.attachments == []
    assert stored.content == f"<@{world.user.id}> v2"
    assert stored.mention_ids == []  # allowed_mentions=none on the edit
    assert stored.allowed_mentions == {"parse": []}
    assert stored.edited_timestamp is not None


async def test_ephemeral_follow_ups_with_files_after_a_deferred_response(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = discord.Object(id=world.guild.id)
    bot = make_bot()

    @bot.tree.command(name="export", description="Export as JSON", guild=guild)
    async def export(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        for name in ("conversation.json", "summary.json"):
            data = f'{{"file": "{name}"}}'.encode()
            await interaction.followup.send(
                f"here is {name}", file=discord.File(io.BytesIO(data), name), ephemeral=True
            )

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(world.guild.id, world.channel.id, world.user.id, "export")
        first = await handle.followup(0)
        second = await handle.followup(1)

    assert handle.deferred and handle.rejected == []
    # The first follow-up fills the deferred ("thinking") response, as on Discord.
    assert first["id"] == str(handle.original_message_id)
    for message, name in ((first, "conversation.json"), (second, "summary.json")):
        assert message["flags"] & EPHEMERAL
        assert message["content"] == f"here is {name}"
        assert [a["filename"] for a in message["attachments"]] == [name]
        assert emu.files(message) == {name: f'{{"file": "{name}"}}'.encode()}
    # Ephemeral messages are never dispatched to the bot.
    assert emu.gateway_frames("MESSAGE_CREATE") == []
