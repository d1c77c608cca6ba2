"""Proof: the emulator's logs show real discord.py traffic for a whole bot session."""

from __future__ import annotations

import discord

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot


async def test_log_shows_identify_ready_thread_post_sync_callback_and_resume(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = discord.Object(id=world.guild.id)
    bot = make_bot()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if not message.author.bot and bot.user in message.mentions:
            thread = await message.create_thread(name="conversation")
            await thread.send("Hi, I am listening.")

    @bot.tree.command(name="save", description="Save this conversation", guild=guild)
    async def save(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Saved.")

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        await emu.post_message(world.channel.id, world.user.id, f"<@{emu.bot_user.id}> hello")
        thread = await emu.wait_for_thread(world.channel.id)
        await emu.wait_for_message(thread.id)
        handle = await emu.invoke_command(world.guild.id, thread.id, world.user.id, "save")
        await handle.original()
        await emu.drop_gateway(4000)
        await emu.wait_for_gateway("RESUMED", direction="send")

    received = [f.name for f in emu.gateway_log if f.direction == "recv" and f.op != 1]
    sent = [f.name for f in emu.gateway_log if f.direction == "send" and f.op not in (None, 11)]
    assert received == ["IDENTIFY", "RESUME"]
    assert sent[:3] == ["HELLO", "READY", "GUILD_CREATE"]
    for event in ("THREAD_CREATE", "MESSAGE_CREATE", "INTERACTION_CREATE", "RESUMED"):
        assert event in sent, event
    routes = [(r.method, r.route) for r in emu.requests]
    expected = [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
        ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands"),
        ("POST", "/channels/{channel_id}/messages/{message_id}/threads"),
        ("POST", "/channels/{channel_id}/messages"),
        ("POST", "/interactions/{interaction_id}/{token}/callback"),
    ]
    assert routes == expected
    assert all(r.status in (200, 201) for r in emu.requests)
    # The slash command ran inside the thread, and its answer landed there.
    assert handle.payload["channel"]["type"] == 11
    assert [m["content"] for m in emu.messages_in(thread.id)] == ["Hi, I am listening.", "Saved."]
