"""Interactions: INTERACTION_CREATE built from a synced command or a clicked button, and
the bot's answers.

The bot answers an interaction through three different REST paths (the callback, the
``@original`` webhook message, follow-up webhook messages); ``InteractionService``
enforces Discord's rules on them and ``InteractionHandle`` gathers them so a test can
simply await "the response", "the original message once it stopped loading" or "the
second follow-up".

A click (MESSAGE_COMPONENT, type 3) is built only from a button the bot put on a stored
message, as a Discord client would send it: never for a disabled button, a link button,
an unknown ``custom_id`` or someone else's ephemeral message (``ClickRefused``). Its
``UPDATE_MESSAGE`` / ``DEFERRED_UPDATE_MESSAGE`` answers and ``@original`` edits act on
the message the button is on.
"""

from __future__ import annotations

import copy
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.discord_emulator import payloads
from tests.discord_emulator.commands import build_options, nest_subcommands
from tests.discord_emulator.errors import (
    ALREADY_ACKNOWLEDGED,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordAPIError,
    form_error,
    not_found,
)
from tests.discord_emulator.state import (
    CHAT_INPUT_COMMAND,
    DEFAULT_MESSAGE,
    Channel,
    Command,
    Message,
    UploadedFile,
)
from tests.discord_emulator.validation import (
    BUTTON,
    BUTTON_LINK,
    BUTTON_PREMIUM,
    FLAG_EPHEMERAL,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    INTERACTION_FLAGS,
    iter_components,
    validate_components,
    validate_embeds,
    validate_message_body,
)

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld

log = logging.getLogger(__name__)

# Interaction callback types
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Interaction types
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5

# Interaction contexts
CONTEXT_GUILD = 0
CONTEXT_BOT_DM = 1

# What Discord grants an app in a DM with it (discord.py's Permissions._dm_permissions()).
DM_APP_PERMISSIONS = 4011158005075008


class ClickRefused(Exception):
    """A click no Discord client would send (disabled, unknown or link button, wrong user)."""


@dataclass(eq=False)
class InteractionHandle:
    """One INTERACTION_CREATE sent to the bot, and everything the bot did with it."""

    world: DiscordWorld
    id: int
    token: str
    type: int
    command: Command | None
    guild_id: int | None
    channel_id: int
    user_id: int
    payload: dict[str, Any]
    created_at: float
    deadline: float
    token_expires: float
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[DiscordAPIError] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    # clicks (and modals opened from them): the message the component is on
    message_id: int | None = None
    custom_id: str | None = None
    # a modal's submission: the command or click that opened the modal
    opened_by: InteractionHandle | None = None

    @property
    def responded(self) -> bool:
        return bool(self.callbacks)

    @property
    def deferred(self) -> bool:
        return bool(self.callbacks) and self.callbacks[0]["type"] in (
            DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
            DEFERRED_UPDATE_MESSAGE,
        )

    def expired(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return not self.responded and now > self.deadline

    def _message(self, message_id: int | None) -> dict[str, Any] | None:
        if message_id is None:
            return None
        message = self.world.store.messages.get(message_id)
        if message is None or message.deleted:
            return None
        return self.world.message_payload(message)

    @property
    def followups(self) -> list[dict[str, Any]]:
        return [m for m in (self._message(i) for i in self.followup_ids) if m is not None]

    async def response(
        self,
        *,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The first callback the bot sent: ``{"type": ..., "data": ..., "time": ...}``."""
        return await self.world.wait_for(
            lambda: self.callbacks[0] if self.callbacks else None,
            timeout=timeout,
            what=f"a response to interaction {self.id}",
        )

    async def original(
        self,
        *,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The original response message once it matches (default: no longer loading)."""

        def check() -> dict[str, Any] | None:
            message = self._message(self.original_message_id)
            if message is None:
                return None
            if predicate is None:
                return None if message["flags"] & FLAG_LOADING else message
            return message if predicate(message) else None

        return await self.world.wait_for(
            check, timeout=timeout, what=f"the original response of interaction {self.id}"
        )

    async def followup(
        self,
        index: int = 0,
        *,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The ``index``-th follow-up message (0-based)."""

        def check() -> dict[str, Any] | None:
            if len(self.followup_ids) <= index:
                return None
            return self._message(self.followup_ids[index])

        return await self.world.wait_for(
            check, timeout=timeout, what=f"follow-up #{index} of interaction {self.id}"
        )

    async def submit_modal(self, values: dict[str, str]) -> InteractionHandle:
        """Answer the modal the bot opened, as the same user (a MODAL_SUBMIT interaction)."""
        if self.modal is None:
            raise RuntimeError(f"interaction {self.id} did not open a modal")
        return await self.world.interactions.submit_modal(self, values)


class InteractionService:
    """Interactions end to end: INTERACTION_CREATE out, callbacks and webhooks back in.

    Keyed by interaction id (callbacks) and by token (webhooks), with Discord's rules:
    one first response within the deadline, follow-ups only after it, tokens that expire.
    """

    def __init__(self, world: DiscordWorld) -> None:
        self.world = world
        self.handles: dict[int, InteractionHandle] = {}

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

    # -- clicks ---------------------------------------------------------------

    def _live_message(self, message_id: int | None) -> Message | None:
        if message_id is None:
            return None
        message = self.world.store.messages.get(message_id)
        return None if message is None or message.deleted else message

    def _message_object(self, message: Message) -> dict[str, Any]:
        """The message a component is on, as an interaction's ``message`` field carries it."""
        return payloads.message(message, self.world.store, url_base=self.world.url_base)

    @staticmethod
    def shown_to(message: Message) -> int | None:
        """The one user an ephemeral message was shown to (None: everyone in the channel)."""
        if not message.flags & FLAG_EPHEMERAL or message.interaction_metadata is None:
            return None
        return int(message.interaction_metadata["user"]["id"])

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

    def _metadata(self, handle: InteractionHandle, *, followup: bool) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(handle.id),
            "type": handle.type,
            "user": payloads.user(self.world.store.user(handle.user_id)),
            "authorizing_integration_owners": {"0": str(handle.guild_id or 0)},
        }
        if handle.command is not None:
            metadata["name"] = handle.command.name
            metadata["command_type"] = handle.command.type
        if handle.type == MESSAGE_COMPONENT and handle.message_id is not None:
            metadata["interacted_message_id"] = str(handle.message_id)
        if handle.opened_by is not None:
            metadata["triggering_interaction_metadata"] = self._metadata(
                handle.opened_by, followup=False
            )
        original = self._live_message(handle.original_message_id)
        if followup and original is not None and original.interaction_id == handle.id:
            metadata["original_response_message_id"] = str(original.id)
        return metadata

    def _message(
        self,
        handle: InteractionHandle,
        data: dict[str, Any],
        files: list[UploadedFile],
        *,
        flags: int,
        followup: bool = False,
    ) -> Message:
        channel = self.world.store.channel(handle.channel_id)
        mtype: int | None = CHAT_INPUT_COMMAND
        reference = None
        if handle.type == MESSAGE_COMPONENT:
            mtype = DEFAULT_MESSAGE
            if not followup and self._live_message(handle.message_id) is not None:
                # The response to a click is shown as a reply to the message clicked.
                mtype = None
                reference = {"message_id": str(handle.message_id), "fail_if_not_exists": False}
        return self.world.new_message(
            channel,
            self.world.bot_user.id,
            content=data.get("content") or "",
            embeds=validate_embeds(data.get("embeds")),
            attachments=self.world.build_attachments(data, files),
            components=validate_components(
                data.get("components"), v2=bool(flags & FLAG_IS_COMPONENTS_V2)
            ),
            flags=flags,
            reference=reference,
            allowed_mentions=data.get("allowed_mentions"),
            tts=bool(data.get("tts")),
            mtype=mtype,
            webhook_id=self.world.application_id,
            interaction_metadata=self._metadata(handle, followup=followup),
            interaction_id=handle.id,
        )

    async def callback(
        self,
        interaction_id: int,
        token: str,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        with_response: bool,
    ) -> dict[str, Any] | None:
        handle = self.handles.get(int(interaction_id))
        if handle is None or handle.token != token:
            raise DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if handle.responded:
            error = DiscordAPIError(
                400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
            )
            handle.rejected.append(error)
            raise error
        if handle.expired():
            error = DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
            handle.rejected.append(error)
            log.warning(
                "interaction %s answered %.2fs after its %.1fs deadline",
                handle.id,
                time.monotonic() - handle.deadline,
                self.world.interaction_deadline,
            )
            self.world.notify()
            raise error
        ctype = body.get("type")
        data = body.get("data") or {}
        valid = {
            APPLICATION_COMMAND: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                MODAL,
            ),
            MESSAGE_COMPONENT: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
                MODAL,
            ),
            MODAL_SUBMIT: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
            ),
        }[handle.type]
        if ctype not in valid:
            raise form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
        message: Message | None = None
        updated: Message | None = None  # type 6/7: the message the component is on
        if ctype in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and handle.message_id is not None:
            updated = self._live_message(handle.message_id)
            if updated is None:
                raise DiscordAPIError(404, UNKNOWN_MESSAGE, "Unknown Message")
            if ctype == UPDATE_MESSAGE:
                # Validated (and refused with 50035) before the interaction is acknowledged.
                await self.world.edit_message_body(
                    updated, data, files, allow_flags=INTERACTION_FLAGS
                )
        if ctype == CHANNEL_MESSAGE_WITH_SOURCE:
            validate_message_body(data, file_count=len(files), allow_flags=INTERACTION_FLAGS)
            message = self._message(handle, data, files, flags=data.get("flags") or 0)
        elif ctype == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = FLAG_LOADING | ((data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._message(handle, {}, [], flags=flags)
        elif ctype == MODAL:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise form_error(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            handle.modal = data
        handle.callbacks.append({"type": ctype, "data": data, "time": time.monotonic()})
        if message is not None:
            handle.original_message_id = message.id
            await self.world.dispatch_message("MESSAGE_CREATE", message)
        elif updated is not None:
            # For a component, "@original" is the message the component is on.
            handle.original_message_id = updated.id
        self.world.notify()
        if not with_response:
            return None
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        answered = message if message is not None else updated
        if answered is not None:
            interaction["response_message_id"] = str(answered.id)
            interaction["response_message_loading"] = bool(answered.flags & FLAG_LOADING)
            interaction["response_message_ephemeral"] = bool(answered.flags & FLAG_EPHEMERAL)
        result: dict[str, Any] = {"interaction": interaction}
        # Discord describes a resource only for a message it made or changed (types 4 and
        # 7); a defer (5, 6) or a modal (9) answers with the interaction alone.
        if ctype == CHANNEL_MESSAGE_WITH_SOURCE and message is not None:
            result["resource"] = {"type": ctype, "message": self._message_object(message)}
        elif ctype == UPDATE_MESSAGE and updated is not None:
            result["resource"] = {"type": ctype, "message": self._message_object(updated)}
        return result

    def by_webhook(self, webhook_id: int, token: str) -> InteractionHandle:
        """The interaction behind an interaction webhook (app id + interaction token)."""
        handle = None
        if int(webhook_id) == self.world.application_id:
            handle = next((h for h in self.handles.values() if h.token == token), None)
        if handle is None or not handle.responded:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        if time.monotonic() > handle.token_expires:
            raise DiscordAPIError(401, 50027, "Invalid Webhook Token")
        return handle

    def webhook_message(self, handle: InteractionHandle, message_id: str) -> Message:
        if message_id == "@original":
            mid = handle.original_message_id
        else:
            mid = int(message_id) if message_id.isdigit() else None
            if mid != handle.original_message_id and mid not in handle.followup_ids:
                mid = None
        message = self.world.store.messages.get(mid) if mid is not None else None
        if message is None or message.deleted:
            raise DiscordAPIError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    async def followup(
        self, handle: InteractionHandle, body: dict[str, Any], files: list[UploadedFile]
    ) -> Message:
        validate_message_body(body, file_count=len(files), allow_flags=INTERACTION_FLAGS)
        if handle.deferred and handle.original_message_id is not None:
            original = self.world.store.messages.get(handle.original_message_id)
            if original is not None and original.flags & FLAG_LOADING:
                # Discord fills a still-loading deferred response with the first follow-up.
                await self.world.edit_message_body(
                    original, body, files, allow_flags=INTERACTION_FLAGS
                )
                handle.followup_ids.append(original.id)
                self.world.notify()
                return original
        message = self._message(handle, body, files, flags=body.get("flags") or 0, followup=True)
        handle.followup_ids.append(message.id)
        await self.world.dispatch_message("MESSAGE_CREATE", message)
        return message
