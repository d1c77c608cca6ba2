"""Messages: sending, editing, deleting, and dispatching them as Discord would.

The same operations for the bot (REST) and for test users: references and mentions are
resolved, content is hidden per session by intents, and MESSAGE_CREATE / UPDATE / DELETE
go through the world's ordered event queue. A mixin of ``DiscordWorld``
(``world/core.py``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

from tests.discord_emulator import message_payloads
from tests.discord_emulator.errors import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    CANNOT_SEND_TO_USER,
    EMPTY_MESSAGE,
    DiscordAPIError,
    form_error,
)
from tests.discord_emulator.gateway.protocol import DIRECT_MESSAGES, GUILD_MESSAGES, MESSAGE_CONTENT
from tests.discord_emulator.gateway.sessions import GatewaySession
from tests.discord_emulator.mentions import filter_mentions, parse_mentions
from tests.discord_emulator.state import (
    DEFAULT_MESSAGE,
    PERM_MENTION_EVERYONE,
    REPLY,
    Attachment,
    Channel,
    Message,
    UploadedFile,
    iso,
)
from tests.discord_emulator.validation import (
    FLAG_EPHEMERAL,
    FLAG_HAS_THREAD,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    SENDABLE_FLAGS,
    validate_components,
    validate_embeds,
    validate_message_body,
)

log = logging.getLogger(__name__)


class MessageOps:
    """Messages stored, edited, deleted and dispatched."""

    def message_payload(self, m: Message) -> dict[str, Any]:
        """A message as the REST API returns it, plus ``guild_id`` for test convenience."""
        payload = message_payloads.message(m, self.store, url_base=self.url_base)
        if m.guild_id is not None:
            payload["guild_id"] = str(m.guild_id)
        return payload

    def _mentions_for(
        self,
        channel: Channel,
        author_id: int,
        content: str,
        allowed: dict[str, Any] | None,
        replied_user_id: int | None,
        *,
        from_app: bool,
    ) -> tuple[list[int], list[int], bool]:
        parsed = parse_mentions(content)
        # allowed_mentions only applies to what bots and webhooks send.
        filtered = filter_mentions(
            parsed, allowed if from_app else None, replied_user_id=replied_user_id
        )
        guild = self.store.guilds.get(channel.guild_id)
        users = [u for u in filtered.users if u in self.store.users]
        roles = [r for r in filtered.roles if guild is not None and r in guild.roles]
        everyone = bool(
            filtered.everyone
            and guild is not None
            and self.store.permissions(guild.id, author_id) & PERM_MENTION_EVERYONE
        )
        return users, roles, everyone

    def new_message(
        self,
        channel: Channel,
        author_id: int,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[Attachment] | None = None,
        components: list[dict[str, Any]] | None = None,
        flags: int = 0,
        reference: dict[str, Any] | None = None,
        allowed_mentions: dict[str, Any] | None = None,
        nonce: str | int | None = None,
        tts: bool = False,
        mtype: int | None = None,
        webhook_id: int | None = None,
        interaction_metadata: dict[str, Any] | None = None,
        interaction_id: int | None = None,
    ) -> Message:
        from_app = author_id == self.bot_user.id or webhook_id is not None
        message_reference = None
        replied_user_id = None
        if reference is not None and reference.get("message_id") is not None:
            ref_channel_id = int(reference.get("channel_id") or channel.id)
            if ref_channel_id != channel.id:
                # A reply must be in the referenced message's channel, whatever
                # fail_if_not_exists says (a thread is another channel than its parent).
                raise form_error(
                    "message_reference",
                    "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL",
                    "Cannot reply to a message in a different channel",
                )
            ref = self.store.messages.get(int(reference["message_id"]))
            if ref is None or ref.deleted or ref.channel_id != ref_channel_id:
                # fail_if_not_exists=false: sent as a plain message, without a reference.
                if reference.get("fail_if_not_exists", True):
                    raise form_error(
                        "message_reference",
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
            else:
                replied_user_id = ref.author_id
                message_reference = {
                    "type": 0,
                    "message_id": str(ref.id),
                    "channel_id": str(ref.channel_id),
                }
                if channel.guild_id is not None:
                    message_reference["guild_id"] = str(channel.guild_id)
        users, roles, everyone = self._mentions_for(
            channel, author_id, content, allowed_mentions, replied_user_id, from_app=from_app
        )
        if mtype is None:
            mtype = REPLY if message_reference is not None else DEFAULT_MESSAGE
        message = Message(
            id=self.store.next_id(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id,
            content=content,
            type=mtype,
            tts=tts,
            mention_everyone=everyone,
            mention_ids=users,
            mention_role_ids=roles,
            attachments=attachments or [],
            embeds=embeds or [],
            components=components or [],
            flags=flags,
            nonce=nonce,
            webhook_id=webhook_id,
            application_id=self.application_id if webhook_id is not None else None,
            message_reference=message_reference,
            interaction_metadata=interaction_metadata,
            allowed_mentions=allowed_mentions,
            interaction_id=interaction_id,
        )
        if channel.is_thread:
            message.position = channel.total_message_sent
            channel.message_count += 1
            channel.total_message_sent += 1
            if author_id not in channel.member_ids:
                channel.member_ids.append(author_id)
        channel.last_message_id = message.id
        self.store.messages[message.id] = message
        log.info("message %s in %s by %s: %r", message.id, channel.id, author_id, content[:80])
        return message

    def _message_event_builder(self, m: Message) -> Callable[[GatewaySession], Any]:
        """Per-session MESSAGE_CREATE/UPDATE data, by intents, as Discord filters it.

        Guild messages need GUILD_MESSAGES, DMs DIRECT_MESSAGES; without MESSAGE_CONTENT
        the content is hidden unless the bot wrote it, is mentioned, or it is a DM.
        """
        full = message_payloads.message(m, self.store, url_base=self.url_base, gateway=True)
        hidden = dict(full, content="", embeds=[], attachments=[], components=[])
        is_dm = m.guild_id is None

        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(DIRECT_MESSAGES if is_dm else GUILD_MESSAGES):
                return None
            visible = (
                is_dm
                or session.has_intent(MESSAGE_CONTENT)
                or m.author_id == session.user_id
                or session.user_id in m.mention_ids
            )
            return copy.deepcopy(full if visible else hidden)

        return build

    async def dispatch_message(self, event: str, m: Message) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE, content hidden as Discord hides it per session."""
        if m.flags & FLAG_EPHEMERAL:
            return  # ephemeral messages exist only for the invoking user
        self.notify()
        await self.emit(event, self._message_event_builder(m), guild_id=m.guild_id)

    async def redeliver_message(self, message_id: int) -> int:
        """Dispatch a stored message's MESSAGE_CREATE again, with a new sequence number.

        What the bot was sent the first time is sent again, byte for byte (the buffered
        frame; a session that never had it gets the message as it is now). Returns the
        number of sessions it went to. The frames are logged with ``redelivered=True``.
        """
        m = self.store.messages[int(message_id)]
        if m.flags & FLAG_EPHEMERAL:
            raise ValueError(f"message {m.id} is ephemeral: Discord never dispatched it")
        fresh = self._message_event_builder(m)

        def build(session: GatewaySession) -> dict[str, Any] | None:
            sent = session.dispatched("MESSAGE_CREATE", lambda d: d.get("id") == str(m.id))
            return copy.deepcopy(sent["d"]) if sent is not None else fresh(session)

        await self.flush_events()
        async with self._emit_lock:
            count = await self.gateway.dispatch(
                "MESSAGE_CREATE", build, guild_id=m.guild_id, redelivered=True
            )
        log.info("message %s redelivered to %s session(s)", m.id, count)
        self.notify()
        return count

    async def create_message(
        self,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
    ) -> Message:
        """POST /channels/{id}/messages, for the bot (REST) and for test users alike."""
        channel = self.store.channel(channel_id)
        validate_message_body(body, file_count=len(files))
        if channel.is_dm and author_id == self.bot_user.id:
            recipient = self.store.user(channel.recipient_ids[0])
            if recipient.bot or not recipient.accepts_dms:
                raise DiscordAPIError(403, CANNOT_SEND_TO_USER, "Cannot send messages to this user")
        embeds = validate_embeds(body.get("embeds"))
        message = self.new_message(
            channel,
            author_id,
            content=body.get("content") or "",
            embeds=embeds,
            attachments=self.build_attachments(body, files),
            components=validate_components(
                body.get("components"),
                v2=bool((body.get("flags") or 0) & FLAG_IS_COMPONENTS_V2),
            ),
            flags=body.get("flags") or 0,
            reference=body.get("message_reference"),
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
        )
        await self._unarchive_if_needed(channel)
        await self.dispatch_message("MESSAGE_CREATE", message)
        return message

    async def edit_message_body(
        self,
        message: Message,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        allow_flags: int = SENDABLE_FLAGS,
    ) -> Message:
        """Apply a PATCH body (content, embeds, attachments, ...) and emit MESSAGE_UPDATE."""
        validate_message_body(
            body,
            file_count=len(files),
            editing=True,
            allow_flags=allow_flags,
            current_flags=message.flags,
        )
        content = message.content
        if "content" in body:
            content = body["content"] or ""
        embeds = validate_embeds(body["embeds"]) if "embeds" in body else message.embeds
        components = message.components
        if "components" in body:
            v2 = ((body.get("flags") or 0) | message.flags) & FLAG_IS_COMPONENTS_V2
            components = validate_components(body["components"], v2=bool(v2))
        attachments = message.attachments
        if "attachments" in body or files:
            attachments = self.build_attachments(body, files, keep=message.attachments)
        if not (content.strip() or embeds or attachments or components):
            raise DiscordAPIError(400, EMPTY_MESSAGE, "Cannot send an empty message")
        message.content = content
        message.embeds = embeds
        message.components = components
        message.attachments = attachments
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if body.get("flags") is not None:
            kept = message.flags & (FLAG_EPHEMERAL | FLAG_HAS_THREAD)
            message.flags = kept | (body["flags"] & allow_flags & ~FLAG_EPHEMERAL)
        was_loading = bool(message.flags & FLAG_LOADING)
        message.flags &= ~FLAG_LOADING
        if not was_loading:
            message.edited_timestamp = iso()
        channel = self.store.channel(message.channel_id)
        replied = None
        if message.message_reference is not None:
            ref = self.store.messages.get(int(message.message_reference["message_id"]))
            replied = ref.author_id if ref is not None else None
        from_app = message.author_id == self.bot_user.id or message.webhook_id is not None
        message.mention_ids, message.mention_role_ids, message.mention_everyone = (
            self._mentions_for(
                channel,
                message.author_id,
                message.content,
                message.allowed_mentions,
                replied,
                from_app=from_app,
            )
        )
        await self.dispatch_message("MESSAGE_UPDATE", message)
        return message

    async def bot_edit_message(
        self, channel_id: int, message_id: int, body: dict[str, Any], files: list[UploadedFile]
    ) -> Message:
        message = self.store.message(channel_id, message_id)
        if message.author_id != self.bot_user.id or message.webhook_id is not None:
            raise DiscordAPIError(
                403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
            )
        return await self.edit_message_body(message, body, files)

    async def remove_message(self, message: Message) -> None:
        message.deleted = True
        payload: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
        channel = self.store.channels.get(message.channel_id)
        if channel is not None and channel.is_thread:
            channel.message_count = max(0, channel.message_count - 1)
        if message.flags & FLAG_EPHEMERAL:
            self.notify()
            return

        intent = GUILD_MESSAGES if message.guild_id is not None else DIRECT_MESSAGES

        def build(session: GatewaySession) -> dict[str, Any] | None:
            return dict(payload) if session.has_intent(intent) else None

        await self.emit("MESSAGE_DELETE", build, guild_id=message.guild_id)

    async def remove_messages(self, channel_id: int, messages: list[Message]) -> None:
        """A bulk delete: one MESSAGE_DELETE_BULK, as Discord sends it (not one per message)."""
        channel = self.store.channel(channel_id)
        for message in messages:
            message.deleted = True
        if channel.is_thread:
            channel.message_count = max(0, channel.message_count - len(messages))
        payload: dict[str, Any] = {
            "ids": [str(m.id) for m in messages],
            "channel_id": str(channel_id),
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)

        def build(session: GatewaySession) -> dict[str, Any] | None:
            return copy.deepcopy(payload) if session.has_intent(GUILD_MESSAGES) else None

        await self.emit("MESSAGE_DELETE_BULK", build, guild_id=channel.guild_id)
