"""Buttons and selects through the emulator, continued: deferred answers and followups, the
3-second deadline (10062), components Discord refuses (50035), a view's timeout edit, clicks
in a DM, and views in followups and click responses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.http import Route

from tests.discord_emulator import ClickRefused, DiscordEmulator
from tests.discord_emulator.fixtures import make_bot, running_bot

from .test_emulator_components import FLAG_EPHEMERAL


async def test_deferred_update_then_followup_and_original_edit(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()

    class Export(discord.ui.View):
        @discord.ui.button(label="Export", custom_id="export")
        async def export(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            await interaction.response.defer()  # DEFERRED_UPDATE_MESSAGE for a component
            await interaction.followup.send("Exporting...", ephemeral=True)
            await interaction.edit_original_response(content="Exported", view=None)

    async with running_bot(bot, emu):
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Export this chat", view=Export(timeout=None))
        click = await emu.click(sent.id, "export", world.user.id)
        response = await click.response()
        note = await click.followup(0)
        edited = await click.original(predicate=lambda m: m["content"] == "Exported")
        await emu.wait_for_gateway("MESSAGE_UPDATE")

    assert response["type"] == 6
    assert click.deferred
    assert note["content"] == "Exporting..." and note["flags"] & FLAG_EPHEMERAL
    assert int(note["id"]) != sent.id
    # "@original" of a click is the message the button is on.
    assert edited["id"] == str(sent.id)
    assert edited["components"] == []
    assert emu.requests_to("PATCH", "/webhooks/{app_id}/{token}/messages/@original")
    [update] = emu.gateway_frames("MESSAGE_UPDATE")
    assert update.d["id"] == str(sent.id) and update.d["components"] == []


async def test_a_click_answered_after_the_deadline_gets_10062(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.interaction_deadline = 0.2
    world = emu.world
    assert world is not None
    bot = make_bot()
    errors: list[discord.HTTPException] = []

    class Slow(discord.ui.View):
        @discord.ui.button(label="Go", custom_id="go")
        async def go(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            await asyncio.sleep(0.3)
            try:
                await interaction.response.edit_message(content="too late", view=None)
            except discord.HTTPException as exc:
                errors.append(exc)

    async with running_bot(bot, emu):
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("Slow", view=Slow(timeout=None))
        click = await emu.click(sent.id, "go", world.user.id)
        await emu.wait_for(lambda: errors or None, timeout=5, what="the late answer to fail")

    assert isinstance(errors[0], discord.NotFound)
    assert errors[0].code == 10062
    assert not click.responded
    assert click.rejected[0].code == 10062
    assert emu.get_message(sent.id).content == "Slow"
    assert emu.get_message(sent.id).components


def _row(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(buttons)}


def _button(custom_id: str, label: str = "B", **extra: Any) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": label, "custom_id": custom_id, **extra}


INVALID_COMPONENTS: list[tuple[str, list[dict[str, Any]], str]] = [
    ("six rows", [_row(_button(f"b{i}")) for i in range(6)], "components"),
    ("six buttons in a row", [_row(*[_button(f"b{i}") for i in range(6)])], "components.0"),
    ("custom_id of 101", [_row(_button("x" * 101))], "components.0.components.0.custom_id"),
    ("label of 81", [_row(_button("b", "L" * 81))], "components.0.components.0.label"),
    (
        "link button without url",
        [_row({"type": 2, "style": 5, "label": "Docs"})],
        "components.0.components.0.url",
    ),
    ("duplicate custom_id", [_row(_button("b"), _button("b"))], "components.0.components.1"),
    ("a button outside a row", [_button("b")], "components.0.type"),
]


async def test_invalid_components_are_refused_with_50035(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    errors: dict[str, discord.HTTPException] = {}
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=world.channel.id)

    async with running_bot(bot, emu):
        for name, components, _ in INVALID_COMPONENTS:
            try:
                await bot.http.request(route, json={"content": "x", "components": components})
            except discord.HTTPException as exc:
                errors[name] = exc
        # An edit is checked the same way, and leaves the message as it was.
        ok = await bot.http.request(
            route, json={"content": "ok", "components": [_row(_button("fine"))]}
        )
        edit = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=world.channel.id,
            message_id=ok["id"],
        )
        with pytest.raises(discord.HTTPException) as edit_error:
            await bot.http.request(edit, json={"components": INVALID_COMPONENTS[2][1]})

    assert sorted(errors) == sorted(name for name, _, _ in INVALID_COMPONENTS)
    for name, _, path in INVALID_COMPONENTS:
        assert (errors[name].status, errors[name].code) == (400, 50035), name
        [record] = [
            r
            for r in emu.requests_to("POST", "/channels/{channel_id}/messages")
            if r.json["components"] == next(c for n, c, _ in INVALID_COMPONENTS if n == name)
        ]
        node = record.response["errors"]
        for part in path.split("."):
            node = node[part]
        assert node, name
    assert edit_error.value.code == 50035
    # Discord's spec refuses them too, where a schema can say so (six rows are within its
    # 40 components; a link button's url and unique custom_ids are beyond a schema).
    # Taken, so that the violations this test provokes on purpose do not fail it.
    provoked = emu.spec.take()
    assert {v.direction for v in provoked} == {"request"}
    assert {(v.operation_id, v.field) for v in provoked} == {
        ("create_message", "$.components[0].components"),
        ("create_message", "$.components[0].components[0].custom_id"),
        ("create_message", "$.components[0].components[0].label"),
        ("create_message", "$.components[0]"),
        ("update_message", "$.components[0].components[0].custom_id"),
    }
    assert [m["content"] for m in emu.messages_in(world.channel.id)] == ["ok"]
    assert emu.get_message(int(ok["id"])).components[0]["components"][0]["custom_id"] == "fine"


async def test_view_timeout_edits_the_message_through_rest(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()

    class Expiring(discord.ui.View):
        message: discord.Message | None = None

        @discord.ui.button(label="Claim", custom_id="claim")
        async def claim(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            await interaction.response.defer()

        async def on_timeout(self) -> None:
            if self.message is not None:
                await self.message.edit(content="Offer expired", view=None)

    async with running_bot(bot, emu):
        channel = bot.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        view = Expiring(timeout=0.1)
        view.message = await channel.send("Claim your prize", view=view)
        expired = await emu.wait_for_message(
            world.channel.id, predicate=lambda m: m["content"] == "Offer expired"
        )
        with pytest.raises(ClickRefused, match="no button 'claim'"):
            await emu.click(int(expired["id"]), "claim", world.user.id)

    assert expired["components"] == []
    assert expired["edited_timestamp"] is not None


async def test_click_in_a_dm_carries_the_user_not_a_member(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    bot = make_bot()
    users: list[type[Any]] = []

    class Ack(discord.ui.View):
        @discord.ui.button(label="Got it", custom_id="ack")
        async def ack(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            users.append(type(interaction.user))
            await interaction.response.edit_message(content="Acknowledged", view=None)

    async with running_bot(bot, emu):
        user = await bot.fetch_user(world.user.id)
        sent = await user.send("Reminder", view=Ack(timeout=None))
        click = await emu.click(sent.id, "ack", world.user.id)
        await click.original(predicate=lambda m: m["content"] == "Acknowledged")

    payload = click.payload
    assert "guild_id" not in payload and "member" not in payload
    assert payload["user"]["id"] == str(world.user.id)
    assert payload["channel"]["type"] == 1
    assert payload["context"] == 1
    assert users == [discord.User]
    assert emu.get_message(sent.id).components == []
    # Not ephemeral: the UPDATE_MESSAGE reached the bot as MESSAGE_UPDATE.
    [update] = emu.gateway_frames("MESSAGE_UPDATE")
    assert update.d["id"] == str(sent.id) and update.d["content"] == "Acknowledged"


async def test_views_in_followups_and_click_responses_are_clickable(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    guild = discord.Object(id=world.guild.id)
    bot = make_bot()
    picked: list[str] = []

    class Size(discord.ui.View):
        @discord.ui.button(label="Large", custom_id="size:large")
        async def large(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            picked.append("large")
            await interaction.response.edit_message(content="Large it is", view=None)

    class Kind(discord.ui.View):
        @discord.ui.button(label="Coffee", custom_id="kind:coffee")
        async def coffee(
            self, interaction: discord.Interaction, button: discord.ui.Button[Any]
        ) -> None:
            picked.append("coffee")
            await interaction.response.send_message("Which size?", view=Size(), ephemeral=True)

    @bot.tree.command(name="order", description="Order a drink", guild=guild)
    async def order(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("What would you like?", view=Kind(), ephemeral=True)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async with running_bot(bot, emu):
        command = await emu.invoke_command(world.guild.id, world.channel.id, world.user.id, "order")
        menu = await command.followup(0)  # fills the deferred ephemeral response
        kind = await emu.click(int(menu["id"]), "kind:coffee", world.user.id)
        question = await kind.original()
        size = await emu.click(int(question["id"]), "size:large", world.user.id)
        final = await size.original(predicate=lambda m: m["content"] == "Large it is")

    assert picked == ["coffee", "large"]
    assert menu["flags"] & FLAG_EPHEMERAL and question["flags"] & FLAG_EPHEMERAL
    assert question["components"][0]["components"][0]["custom_id"] == "size:large"
    assert final["id"] == question["id"] and final["components"] == []
    assert emu.get_message(int(menu["id"])).components  # the first menu is untouched
