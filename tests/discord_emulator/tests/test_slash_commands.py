"""Proof: slash commands sync with ids and round-trip through the interaction endpoints."""

from __future__ import annotations

import asyncio

import discord
import pytest
from discord import app_commands

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot


def _guild(emu: DiscordEmulator) -> discord.Object:
    assert emu.world is not None
    return discord.Object(id=emu.world.guild.id)


async def test_guild_sync_assigns_ids_and_command_round_trips(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = _guild(emu)
    bot = make_bot()
    seen: list[tuple[str, int, str]] = []

    @bot.tree.command(name="echo", description="Repeat some text", guild=guild)
    @app_commands.describe(text="What to repeat", times="How many follow-ups")
    async def echo(interaction: discord.Interaction, text: str, times: int = 1) -> None:
        seen.append((text, interaction.user.id, type(interaction.channel).__name__))
        await interaction.response.send_message(f"echo: {text}")
        for i in range(times):
            await interaction.followup.send(f"follow-up {i + 1} for {interaction.user.name}")

    synced: list[app_commands.AppCommand] = []

    async def setup_hook() -> None:
        synced.extend(await bot.tree.sync(guild=guild))

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(
            world.guild.id, world.channel.id, world.user.id, "echo", {"text": "hi", "times": 2}
        )
        response = await handle.response()
        original = await handle.original()
        first = await handle.followup(0)
        second = await handle.followup(1)

    # The bulk overwrite was answered with Discord's ids, and discord.py took them.
    [put] = emu.requests_to("PUT", "/applications/{app_id}/guilds/{guild_id}/commands")
    assert put.path == f"/applications/{emu.application_id}/guilds/{world.guild.id}/commands"
    [command] = emu.commands(world.guild.id)
    assert [c.id for c in synced] == [command.id]
    assert synced[0].guild_id == world.guild.id
    assert put.response[0]["id"] == str(command.id)
    # The interaction arrived as a guild command, from alice, in #general.
    assert handle.payload["data"]["guild_id"] == str(world.guild.id)
    assert handle.payload["data"]["id"] == str(command.id)
    assert seen == [("hi", world.user.id, "TextChannel")]
    # Initial response, then follow-ups through the webhook.
    assert response["type"] == 4
    assert original["content"] == "echo: hi"
    assert original["type"] == 20
    assert original["interaction_metadata"]["user"]["id"] == str(world.user.id)
    assert [first["content"], second["content"]] == [
        "follow-up 1 for alice",
        "follow-up 2 for alice",
    ]
    [callback] = emu.requests_to("POST", "/interactions/{id}/{token}/callback")
    assert callback.query == {"with_response": "1"}
    assert len(emu.requests_to("POST", "/webhooks/{app_id}/{token}")) == 2


async def test_deferred_response_is_completed_by_editing_the_original(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = _guild(emu)
    bot = make_bot()

    @bot.tree.command(name="summarize", description="Think, then answer", guild=guild)
    async def summarize(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await asyncio.sleep(0.05)
        await interaction.edit_original_response(content="Here is the summary.")

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(
            world.guild.id, world.channel.id, world.user.id, "summarize"
        )
        response = await handle.response()
        loading = emu.get_message(handle.original_message_id or 0)
        assert loading.flags & 128  # "Echo is thinking..." until the edit lands
        original = await handle.original()

    assert response["type"] == 5
    assert handle.deferred
    assert original["content"] == "Here is the summary."
    assert not original["flags"] & 128
    assert emu.requests_to("PATCH", "/webhooks/{app_id}/{token}/messages/@original")


async def test_global_command_and_ephemeral_reply(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()

    @bot.tree.command(name="export", description="Export a conversation")
    @app_commands.describe(who="Whose conversation")
    async def export(interaction: discord.Interaction, who: discord.Member) -> None:
        await interaction.response.send_message(f"exporting for {who.display_name}", ephemeral=True)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(
            world.guild.id, world.channel.id, world.user.id, "export", {"who": world.user.id}
        )
        original = await handle.original()

    assert emu.requests_to("PUT", "/applications/{app_id}/commands")
    assert "guild_id" not in handle.payload["data"]
    assert handle.payload["data"]["resolved"]["users"][str(world.user.id)]["username"] == "alice"
    assert original["content"] == "exporting for Alice"
    assert original["flags"] & 64
    # Ephemeral: only the invoking user sees it, so no MESSAGE_CREATE reached the bot.
    message_creates = emu.gateway_frames("MESSAGE_CREATE", direction="send")
    assert all(f.d["id"] != original["id"] for f in message_creates)


async def test_late_first_response_gets_unknown_interaction(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.interaction_deadline = 0.2
    world = emu.world
    assert world is not None
    guild = _guild(emu)
    bot = make_bot()
    errors: list[discord.HTTPException] = []

    @bot.tree.command(name="slow", description="Answers too late", guild=guild)
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            errors.append(exc)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(world.guild.id, world.channel.id, world.user.id, "slow")
        await emu.wait_for(lambda: errors or None, timeout=5, what="the late response to fail")

    assert isinstance(errors[0], discord.NotFound)
    assert errors[0].code == 10062
    assert not handle.responded
    assert handle.rejected[0].code == 10062


async def test_invoking_a_command_the_bot_never_synced_is_refused(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    with pytest.raises(LookupError, match="never synced"):
        await emu.invoke_command(world.guild.id, world.channel.id, world.user.id, "save")


async def test_invalid_command_definition_is_rejected_like_discord(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    guild = _guild(emu)
    bot = make_bot()
    errors: list[discord.HTTPException] = []

    async def setup_hook() -> None:
        payload = [{"name": "Bad Name", "description": "x", "type": 1}]
        try:
            await bot.http.bulk_upsert_guild_commands(bot.application_id, guild.id, payload)
        except discord.HTTPException as exc:
            errors.append(exc)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        pass

    assert errors[0].status == 400
    assert errors[0].code == 50035
    assert emu.commands(guild.id) == []


async def test_modal_round_trip(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = _guild(emu)
    bot = make_bot()

    class Feedback(discord.ui.Modal, title="Feedback"):
        text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(
            label="Your feedback", custom_id="feedback-text"
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"thanks: {self.text.value}")

    @bot.tree.command(name="feedback", description="Tell us", guild=guild)
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        handle = await emu.invoke_command(
            world.guild.id, world.channel.id, world.user.id, "feedback"
        )
        response = await handle.response()
        submitted = await handle.submit_modal({"feedback-text": "great bot"})
        answer = await submitted.original()

    assert response["type"] == 9
    assert response["data"]["title"] == "Feedback"
    assert answer["content"] == "thanks: great bot"


async def test_subcommand_of_a_group_is_invoked_with_its_options(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = _guild(emu)
    bot = make_bot()
    memory = app_commands.Group(name="memory", description="Long-term memory", guild_ids=[guild.id])
    calls: list[int] = []

    @memory.command(name="generate", description="Distil memories now")
    @app_commands.describe(limit="How many conversations")
    async def generate(interaction: discord.Interaction, limit: int) -> None:
        calls.append(limit)
        await interaction.response.send_message(f"generating {limit}", ephemeral=True)

    bot.tree.add_command(memory)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        with pytest.raises(KeyError, match="required option 'limit'"):
            await emu.invoke_command(
                world.guild.id, world.channel.id, world.user.id, "memory generate"
            )
        handle = await emu.invoke_command(
            world.guild.id, world.channel.id, world.user.id, "memory generate", {"limit": 3}
        )
        original = await handle.original()

    assert calls == [3]
    assert original["content"] == "generating 3"
    [sub] = handle.payload["data"]["options"]
    assert (sub["name"], sub["type"]) == ("generate", 1)
    assert sub["options"] == [{"name": "limit", "type": 4, "value": 3}]
