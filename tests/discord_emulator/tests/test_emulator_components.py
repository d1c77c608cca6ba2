"""Proof: buttons the bot sends can be clicked, and discord.py's views answer the clicks.

A click is a MESSAGE_COMPONENT interaction built from the stored message, the way a
Discord client sends it; the view's callback answers through the interaction endpoints.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from discord.http import Route

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
