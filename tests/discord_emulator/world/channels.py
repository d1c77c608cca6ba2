"""Channels and threads: starting threads, editing and deleting channels, un-archiving.

A mixin of ``DiscordWorld`` (``world/core.py``); THREAD_* and CHANNEL_* events go through
the world's ordered event queue.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.discord_emulator import payloads
from tests.discord_emulator.errors import (
    CANNOT_EXECUTE_ON_DM,
    THREAD_ALREADY_CREATED,
    DiscordAPIError,
    form_error,
)
from tests.discord_emulator.gateway.protocol import GUILDS
from tests.discord_emulator.gateway.sessions import GatewaySession
from tests.discord_emulator.state import (
    GUILD_TEXT,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    THREAD_CREATED,
    Channel,
    iso,
)
from tests.discord_emulator.validation import FLAG_HAS_THREAD, validate_thread_body

log = logging.getLogger(__name__)


class ChannelOps:
    """Threads started, channels and threads edited or deleted."""

    # -- threads ------------------------------------------------------------

    async def _dispatch_thread(
        self, event: str, thread: Channel, *, newly_created: bool = False
    ) -> None:
        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(GUILDS):
                return None
            payload = payloads.channel(thread, member_of=session.user_id)
            if newly_created:
                payload["newly_created"] = True
            return payload

        await self.emit(event, build, guild_id=thread.guild_id)

    async def start_thread(
        self,
        parent_id: int,
        owner_id: int,
        body: dict[str, Any],
        *,
        message_id: int | None = None,
    ) -> Channel:
        """A thread from a message (public, id = message id) or without one (default private)."""
        parent = self.store.channel(parent_id)
        if parent.is_thread or parent.type not in (GUILD_TEXT, 5):
            raise DiscordAPIError(400, 50024, "Cannot execute action on this channel type")
        name, duration = validate_thread_body(body)
        message = None
        if message_id is not None:
            message = self.store.message(parent.id, message_id)
            if message.thread_id is not None:
                raise DiscordAPIError(
                    400,
                    THREAD_ALREADY_CREATED,
                    "A thread has already been created for this message",
                )
            thread_type = PUBLIC_THREAD
            thread_id = message.id
        else:
            thread_type = int(body.get("type") or PRIVATE_THREAD)
            if thread_type not in (PUBLIC_THREAD, PRIVATE_THREAD):
                raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
            thread_id = self.store.next_id()
        thread = Channel(
            thread_id,
            parent.guild_id,
            thread_type,
            name,
            parent_id=parent.id,
            owner_id=owner_id,
            auto_archive_duration=duration,
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
            invitable=bool(body.get("invitable", True)),
            member_ids=[owner_id],
        )
        self.store.channels[thread.id] = thread
        if message is not None:
            message.thread_id = thread.id
            message.flags |= FLAG_HAS_THREAD
        log.info("thread %s %r created in %s by %s", thread.id, name, parent.id, owner_id)
        await self._dispatch_thread("THREAD_CREATE", thread, newly_created=True)
        if message is None and thread_type == PUBLIC_THREAD:
            # Discord announces a public thread without a starter message in the parent.
            notice = self.new_message(parent, owner_id, content=name, mtype=THREAD_CREATED)
            notice.message_reference = {
                "type": 0,
                "channel_id": str(thread.id),
                "guild_id": str(parent.guild_id),
            }
            await self.dispatch_message("MESSAGE_CREATE", notice)
        return thread

    async def modify_channel(self, channel_id: int, body: dict[str, Any]) -> Channel:
        channel = self.store.channel(channel_id)
        if channel.is_dm:
            raise DiscordAPIError(
                400, CANNOT_EXECUTE_ON_DM, "Cannot execute action on a DM channel"
            )
        if "name" in body:
            if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 100:
                raise form_error(
                    "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            channel.name = body["name"]
        if "topic" in body and not channel.is_thread:
            channel.topic = body["topic"]
        if channel.is_thread:
            if "archived" in body:
                channel.archived = bool(body["archived"])
                channel.archive_timestamp = iso()
            if "locked" in body:
                channel.locked = bool(body["locked"])
            if "auto_archive_duration" in body:
                channel.auto_archive_duration = int(body["auto_archive_duration"])
            if "invitable" in body:
                channel.invitable = bool(body["invitable"])
            await self._dispatch_thread("THREAD_UPDATE", channel)
        else:
            await self.emit(
                "CHANNEL_UPDATE",
                lambda s: payloads.channel(channel) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        return channel

    async def delete_channel(self, channel_id: int) -> Channel:
        channel = self.store.channel(channel_id)
        if channel.is_dm:
            return channel  # "closing" a DM: it keeps its id and messages, nothing dispatched
        del self.store.channels[channel.id]
        guild = self.store.guilds.get(channel.guild_id)
        if channel.is_thread:
            payload = {
                "id": str(channel.id),
                "guild_id": str(channel.guild_id),
                "parent_id": str(channel.parent_id),
                "type": channel.type,
            }
            await self.emit(
                "THREAD_DELETE",
                lambda s: dict(payload) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        else:
            if guild is not None and channel.id in guild.channel_ids:
                guild.channel_ids.remove(channel.id)
            payload = payloads.channel(channel)
            await self.emit(
                "CHANNEL_DELETE",
                lambda s: dict(payload) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        return channel

    async def _unarchive_if_needed(self, channel: Channel) -> None:
        if channel.is_thread and channel.archived and not channel.locked:
            channel.archived = False
            channel.archive_timestamp = iso()
            await self._dispatch_thread("THREAD_UPDATE", channel)
