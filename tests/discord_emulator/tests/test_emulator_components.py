"""Proof: buttons the bot sends can be clicked, and discord.py's views answer the clicks.

A click is a MESSAGE_COMPONENT interaction built from the stored message, the way a
Discord client sends it; the view's callback answers through the interaction endpoints.
"""

from __future__ import annotations

from typing import Any

import discord
import pytest

from tests.discord_emulator import ClickRefused, DiscordEmulator, InteractionHandle
from tests.discord_emulator.fixtures import make_bot, running_bot

FLAG_EPHEMERAL = 1 << 6


class Confirm(discord.ui.View):
    """Confirm / Cancel, as a destructive command asks before acting."""

    def __init__(self) -> None:
        super().__init__(timeout=30)
        self.clicks: list[tuple[str, int, int | None]] = []
        self.results: list[discord.InteractionCallbackResponse[Any] | None] = []

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger, custom_id="confirm")
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        message_id = interaction.message.id if interaction.message else None
        self.clicks.append(("confirm", interaction.user.id, message_id))
        self.results.append(await interaction.response.edit_message(content="Done", view=None))
        self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="cancel")
    async def cancel(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        self.clicks.append(("cancel", interaction.user.id, None))
        await interaction.response.edit_message(content="Cancelled", view=None)
        self.stop()


def _bot_with_forget(emu: DiscordEmulator, views: list[Confirm]) -> discord.Client:
    """A bot with ``/forget``, answered ephemerally with a Confirm / Cancel view."""
    assert emu.world is not None
    guild = discord.Object(id=emu.world.guild.id)
    bot = make_bot()

    @bot.tree.command(name="forget", description="Forget this channel", guild=guild)
    async def forget(interaction: discord.Interaction) -> None:
        view = Confirm()
        views.append(view)
        await interaction.response.send_message("Forget everything?", view=view, ephemeral=True)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


async def _forget(emu: DiscordEmulator) -> tuple[InteractionHandle, dict[str, Any]]:
    world = emu.world
    assert world is not None
    handle = await emu.invoke_command(world.guild.id, world.channel.id, world.user.id, "forget")
    return handle, await handle.original()


async def test_confirm_on_an_ephemeral_view_edits_it_to_done(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    views: list[Confirm] = []

    async with running_bot(_bot_with_forget(emu, views), emu):
        _, prompt = await _forget(emu)
        click = await emu.click(int(prompt["id"]), "confirm", world.user.id)
        response = await click.response()
        done = await emu.wait_for(
            lambda: views[0].clicks or None, timeout=5, what="the Confirm callback"
        )

    # The prompt carried both buttons, as stored and returned by Discord.
    [row] = prompt["components"]
    assert [(b["custom_id"], b["label"], b["style"]) for b in row["components"]] == [
        ("confirm", "Confirm", 4),
        ("cancel", "Cancel", 2),
    ]
    assert prompt["flags"] & FLAG_EPHEMERAL
    # The click went to the view's callback, from alice, on that very message.
    assert done == [("confirm", world.user.id, int(prompt["id"]))]
    assert click.payload["message"]["flags"] & FLAG_EPHEMERAL
    # UPDATE_MESSAGE replaced the content and removed the buttons.
    assert response["type"] == 7
    # discord.py parsed the with_response body: the updated message.
    [result] = views[0].results
    assert result is not None and result.message_id == int(prompt["id"])
    assert isinstance(result.resource, discord.InteractionMessage)
    assert result.resource.content == "Done" and result.resource.components == []
    stored = emu.get_message(int(prompt["id"]))
    assert stored.content == "Done"
    assert stored.components == []
    assert emu.messages_in(world.channel.id)[-1]["components"] == []
    # Ephemeral: the edit is not dispatched to the bot as MESSAGE_UPDATE.
    assert not [f for f in emu.gateway_frames("MESSAGE_UPDATE") if f.d["id"] == prompt["id"]]


async def test_another_user_cannot_click_an_ephemeral_message(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bob = emu.create_user("bob")
    emu.add_member(world.guild.id, bob.id)
    views: list[Confirm] = []

    async with running_bot(_bot_with_forget(emu, views), emu):
        _, prompt = await _forget(emu)
        with pytest.raises(ClickRefused, match="ephemeral"):
            await emu.click(int(prompt["id"]), "confirm", bob.id)
        with pytest.raises(ClickRefused, match="no button 'delete'"):
            await emu.click(int(prompt["id"]), "delete", world.user.id)

    assert views[0].clicks == []
    assert not emu.gateway_frames("INTERACTION_CREATE")[1:]  # only the /forget itself
    assert emu.get_message(int(prompt["id"])).content == "Forget everything?"


async def test_a_disabled_button_cannot_be_clicked(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Sold out", custom_id="buy", disabled=True))
    view.add_item(discord.ui.Button(label="Docs", url="https://example.invalid/docs"))

    async with running_bot(bot, emu):
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Shop", view=view)
        with pytest.raises(ClickRefused, match="disabled"):
            await emu.click(sent.id, "buy", world.user.id)

    stored = emu.get_message(sent.id)
    [row] = stored.components
    assert row["components"][0]["disabled"] is True
    assert row["components"][1]["url"] == "https://example.invalid/docs"
    assert "custom_id" not in row["components"][1]
    assert not emu.gateway_frames("INTERACTION_CREATE")


async def test_click_on_a_channel_message_is_a_full_message_component_interaction(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    seen: list[tuple[int | None, str | None, int, type[Any]]] = []

    class Poll(discord.ui.View):
        @discord.ui.button(label="Yes", emoji="👍", custom_id="poll:yes")
        async def yes(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            message_id = interaction.message.id if interaction.message else None
            seen.append((message_id, button.custom_id, interaction.user.id, type(interaction.user)))
            await interaction.response.send_message(f"{interaction.user.name} voted yes")

    async with running_bot(bot, emu):
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Lunch at noon?", view=Poll(timeout=None))
        click = await emu.click(sent.id, "poll:yes", world.user.id)
        answer = await click.original()

    payload = click.payload
    assert payload["type"] == 3
    assert payload["data"] == {"custom_id": "poll:yes", "component_type": 2}
    assert payload["application_id"] == str(emu.application_id)
    assert payload["version"] == 1 and payload["token"] == click.token
    assert payload["guild_id"] == str(world.guild.id)
    assert payload["channel_id"] == payload["channel"]["id"] == str(world.channel.id)
    member = payload["member"]
    assert member["user"]["id"] == str(world.user.id)
    assert "roles" in member and "permissions" in member
    assert "user" not in payload
    assert payload["message"]["id"] == str(sent.id)
    assert payload["message"]["content"] == "Lunch at noon?"
    assert payload["message"]["components"][0]["components"][0]["custom_id"] == "poll:yes"
    assert payload["message"]["components"][0]["components"][0]["emoji"]["name"] == "👍"
    assert not payload["message"]["flags"] & FLAG_EPHEMERAL
    for key in ("app_permissions", "locale", "guild_locale", "attachment_size_limit"):
        assert payload[key], key
    assert payload["entitlements"] == []
    assert payload["authorizing_integration_owners"] == {"0": str(world.guild.id)}
    assert payload["context"] == 0
    # discord.py routed it to the button, with the clicked message and a Member.
    assert seen == [(sent.id, "poll:yes", world.user.id, discord.Member)]
    # CHANNEL_MESSAGE_WITH_SOURCE: a new message, replying to the clicked one.
    assert answer["content"] == "alice voted yes"
    assert answer["interaction_metadata"]["type"] == 3
    assert answer["interaction_metadata"]["interacted_message_id"] == str(sent.id)
    assert answer["message_reference"]["message_id"] == str(sent.id)
    assert emu.get_message(sent.id).content == "Lunch at noon?"
