"""INTERACTION_CREATE built and sent: a command invoked, a modal submitted, a button clicked.

A click (MESSAGE_COMPONENT, type 3) is built only from a button the bot put on a stored
message, as a Discord client would send it: never for a disabled button, a link button,
an unknown ``custom_id`` or someone else's ephemeral message (``ClickRefused``). Every
interaction gets a fresh id and token and an ``InteractionHandle``. A mixin of
``service.InteractionService``.
"""

from __future__ import annotations

import copy
import itertools
import logging
import secrets
import time
from typing import Any

from tests.discord_emulator import payloads
from tests.discord_emulator.commands import build_options, nest_subcommands
from tests.discord_emulator.interactions.model import (
    APPLICATION_COMMAND,
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    DM_APP_PERMISSIONS,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    ClickRefused,
    InteractionHandle,
)
from tests.discord_emulator.state import Channel, Command
from tests.discord_emulator.validation import BUTTON, BUTTON_LINK, BUTTON_PREMIUM, iter_components

log = logging.getLogger(__name__)


class CreateOps:
    """Interactions sent to the bot: a mixin of ``service.InteractionService``."""

    def _base(
        self, itype: int, channel: Channel, user_id: int, locale: str
    ) -> tuple[int, str, dict[str, Any]]:
        """The fields every INTERACTION_CREATE has, in a guild channel or a DM with the bot."""
        interaction_id = self.world.store.next_id()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(120)
        store = self.world.store
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.world.application_id),
            "type": itype,
            "token": token,
            "version": 1,
        }
        if channel.guild_id is None:
            if int(user_id) not in channel.recipient_ids:
                raise LookupError(f"user {user_id} is not the recipient of DM {channel.id}")
            payload.update(
                {
                    "channel_id": str(channel.id),
                    "channel": payloads.channel(channel, store=store),
                    "user": payloads.user(store.user(user_id)),
                    "app_permissions": str(DM_APP_PERMISSIONS),
                    "locale": locale,
                    "entitlements": [],
                    "entitlement_sku_ids": [],
                    # guild-installed app, in the bot's DM: "0" (no guild)
                    "authorizing_integration_owners": {"0": "0"},
                    "context": CONTEXT_BOT_DM,
                    "attachment_size_limit": payloads.ATTACHMENT_SIZE_LIMIT,
                }
            )
            return interaction_id, token, payload
        guild = store.guild(channel.guild_id)
        if user_id not in guild.members:
            raise LookupError(f"user {user_id} is not a member of guild {guild.id}")
        user_perms = store.permissions(guild.id, user_id)
        channel_payload = payloads.channel(channel)
        channel_payload["permissions"] = str(user_perms)
        payload.update(
            {
                "guild_id": str(guild.id),
                "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
                "channel_id": str(channel.id),
                "channel": channel_payload,
                "member": payloads.member(guild.members[user_id], store, permissions=user_perms),
                "app_permissions": str(store.permissions(guild.id, self.world.bot_user.id)),
                "locale": locale,
                "guild_locale": "en-US",
                "entitlements": [],
                "entitlement_sku_ids": [],
                "authorizing_integration_owners": {"0": str(guild.id)},
                "context": CONTEXT_GUILD,
                "attachment_size_limit": payloads.ATTACHMENT_SIZE_LIMIT,
            }
        )
        return interaction_id, token, payload

    def _new_handle(
        self,
        itype: int,
        interaction_id: int,
        token: str,
        payload: dict[str, Any],
        command: Command | None,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
    ) -> InteractionHandle:
        now = time.monotonic()
        handle = InteractionHandle(
            world=self.world,
            id=interaction_id,
            token=token,
            type=itype,
            command=command,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            created_at=now,
            deadline=now + self.world.interaction_deadline,
            token_expires=now + self.world.interaction_token_ttl,
        )
        self.handles[interaction_id] = handle
        return handle

    async def invoke_command(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """A user runs ``/name`` (``"group sub"`` for subcommands) with these option values."""
        guild = self.world.store.guild(guild_id)
        channel = self.world.store.channel(channel_id)
        if channel.guild_id != guild.id:
            raise LookupError(f"channel {channel_id} is not in guild {guild_id}")
        parts = name.split()
        command = self.world.command_registry.find_chat_input(guild.id, parts[0])
        specs, chain = nest_subcommands(command.body, parts[1:])
        options_out, resolved = build_options(
            specs, dict(options or {}), store=self.world.store, guild=guild, payloads=payloads
        )
        if chain:
            for outer, inner in itertools.pairwise(chain):
                outer["options"] = [inner]
            chain[-1]["options"] = options_out
            options_out = [chain[0]]
        data: dict[str, Any] = {
            "id": str(command.id),
            "name": command.name,
            "type": command.type,
            "options": options_out,
        }
        if resolved:
            data["resolved"] = resolved
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        interaction_id, token, payload = self._base(APPLICATION_COMMAND, channel, user_id, locale)
        payload["data"] = data
        handle = self._new_handle(
            APPLICATION_COMMAND,
            interaction_id,
            token,
            payload,
            command,
            guild.id,
            channel.id,
            user_id,
        )
        log.info("interaction %s: /%s %s by %s", interaction_id, name, options or {}, user_id)
        await self.world.emit(
            "INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id=guild.id
        )
        return handle

    async def submit_modal(
        self, opened: InteractionHandle, values: dict[str, str]
    ) -> InteractionHandle:
        modal = opened.modal or {}
        channel = self.world.store.channel(opened.channel_id)
        known: set[str] = set()

        def submitted(component: dict[str, Any]) -> dict[str, Any]:
            custom_id = component.get("custom_id") or ""
            known.add(custom_id)
            value = values.get(custom_id, component.get("value") or "")
            if component.get("required", True) and not value:
                raise ValueError(f"modal field {custom_id!r} is required")
            return {"type": component.get("type", 4), "custom_id": custom_id, "value": value}

        rows: list[dict[str, Any]] = []
        for row in modal.get("components") or []:
            if row.get("type") == 18:  # a label wraps one component
                rows.append({"type": 18, "component": submitted(row.get("component") or {})})
            else:
                inputs = [submitted(c) for c in row.get("components") or []]
                rows.append({"type": 1, "components": inputs})
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"the modal has no fields {sorted(unknown)}; it has {sorted(known)}")
        interaction_id, token, payload = self._base(
            MODAL_SUBMIT, channel, opened.user_id, opened.payload.get("locale", "en-US")
        )
        payload["data"] = {"custom_id": modal.get("custom_id"), "components": rows}
        source = self._live_message(opened.message_id)
        if source is not None:  # a modal opened from a button carries that message
            payload["message"] = self._message_object(source)
        handle = self._new_handle(
            MODAL_SUBMIT,
            interaction_id,
            token,
            payload,
            opened.command,
            channel.guild_id,
            channel.id,
            opened.user_id,
        )
        handle.message_id = opened.message_id
        handle.opened_by = opened
        await self.world.emit(
            "INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id=channel.guild_id
        )
        return handle

    async def click(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        *,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """``user_id`` clicks the button ``custom_id`` on a message (MESSAGE_COMPONENT)."""
        message = self._live_message(int(message_id))
        if message is None:
            raise LookupError(f"message {message_id} does not exist (or was deleted)")
        viewer = self.shown_to(message)
        if viewer is not None and viewer != int(user_id):
            raise ClickRefused(
                f"message {message.id} is ephemeral, shown only to user {viewer}: "
                f"user {user_id} cannot see it, let alone click it"
            )
        buttons = [c for c in iter_components(message.components) if c.get("type") == BUTTON]
        button = next((b for b in buttons if b.get("custom_id") == custom_id), None)
        if button is None:
            other = next(
                (c for c in iter_components(message.components) if c.get("custom_id") == custom_id),
                None,
            )
            if other is not None:
                raise ClickRefused(
                    f"{custom_id!r} on message {message.id} is a component of type "
                    f"{other.get('type')}, not a button"
                )
            known = [b.get("custom_id") or f"<link {b.get('url')}>" for b in buttons]
            raise ClickRefused(
                f"message {message.id} has no button {custom_id!r}; its buttons: {known}"
            )
        if button.get("style") in (BUTTON_LINK, BUTTON_PREMIUM):
            raise ClickRefused(f"button {custom_id!r} opens a link/SKU: no interaction is sent")
        if button.get("disabled"):
            raise ClickRefused(f"button {custom_id!r} on message {message.id} is disabled")
        channel = self.world.store.channel(message.channel_id)
        interaction_id, token, payload = self._base(MESSAGE_COMPONENT, channel, user_id, locale)
        payload["message"] = self._message_object(message)
        payload["data"] = {"custom_id": custom_id, "component_type": BUTTON}
        handle = self._new_handle(
            MESSAGE_COMPONENT,
            interaction_id,
            token,
            payload,
            None,
            channel.guild_id,
            channel.id,
            int(user_id),
        )
        handle.message_id = message.id
        handle.custom_id = custom_id
        log.info(
            "interaction %s: %s clicks %r on message %s",
            interaction_id,
            user_id,
            custom_id,
            message.id,
        )
        await self.world.emit(
            "INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id=channel.guild_id
        )
        return handle
