"""REST handlers for messages: list, send, fetch, edit, delete (one or in bulk), react."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from tests.discord_emulator.errors import CANNOT_EXECUTE_ON_DM, DiscordAPIError, form_error
from tests.discord_emulator.gateway.protocol import (
    DIRECT_MESSAGE_REACTIONS,
    GUILD_MESSAGE_REACTIONS,
)
from tests.discord_emulator.rest.handlers import ApiRequest, Handlers


class MessageHandlers(Handlers):
    """/channels/{channel_id}/messages/..."""

    # -- messages -----------------------------------------------------------------

    async def list_messages(self, request: ApiRequest) -> Any:
        channel_id = int(request.params["channel_id"])
        self.world.store.channel(channel_id)
        messages = self.world.store.channel_messages(channel_id)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        if "before" in request.query:
            before = int(request.query["before"])
            selected = [m for m in messages if m.id < before][-limit:]
        elif "after" in request.query:
            after = int(request.query["after"])
            selected = [m for m in messages if m.id > after][:limit]
        elif "around" in request.query:
            around = int(request.query["around"])
            older = [m for m in messages if m.id <= around]
            newer = [m for m in messages if m.id > around]
            half = limit // 2
            selected = older[-(limit - half) :] + newer[:half]
        else:
            selected = messages[-limit:]
        return [self._message_payload(m) for m in reversed(selected)]

    async def post_message(self, request: ApiRequest) -> Any:
        message = await self.world.create_message(
            int(request.params["channel_id"]),
            self.world.bot_user.id,
            request.body(),
            request.files,
        )
        return self._message_payload(message)

    async def get_message(self, request: ApiRequest) -> Any:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        return self._message_payload(message)

    async def patch_message(self, request: ApiRequest) -> Any:
        message = await self.world.bot_edit_message(
            int(request.params["channel_id"]),
            int(request.params["message_id"]),
            request.body(),
            request.files,
        )
        return self._message_payload(message)

    async def delete_message(self, request: ApiRequest) -> Any:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        channel = self.world.store.channel(message.channel_id)
        if channel.is_dm and message.author_id != self.world.bot_user.id:
            raise DiscordAPIError(
                403, CANNOT_EXECUTE_ON_DM, "Cannot execute action on a DM channel"
            )
        await self.world.remove_message(message)
        return None

    async def bulk_delete(self, request: ApiRequest) -> Any:
        channel_id = int(request.params["channel_id"])
        ids = request.body().get("messages") or []
        if not 2 <= len(ids) <= 100:
            raise form_error(
                "messages", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length."
            )
        messages = [self.world.store.message(channel_id, int(i)) for i in ids]
        await self.world.remove_messages(channel_id, messages)
        return None

    async def add_reaction(self, request: ApiRequest) -> Any:
        await self._react(request, add=True)
        return None

    async def remove_reaction(self, request: ApiRequest) -> Any:
        await self._react(request, add=False)
        return None

    async def _react(self, request: ApiRequest, *, add: bool) -> None:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        emoji = unquote(request.params["emoji"])
        users = message.reactions.setdefault(emoji, [])
        bot_id = self.world.bot_user.id
        if add and bot_id not in users:
            users.append(bot_id)
        elif not add and bot_id in users:
            users.remove(bot_id)
        if not users:
            message.reactions.pop(emoji, None)
        name, _, emoji_id = emoji.partition(":")
        event: dict[str, Any] = {
            "user_id": str(bot_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": emoji_id or None, "name": name},
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            event["guild_id"] = str(message.guild_id)
        if add:
            event["message_author_id"] = str(message.author_id)
            event["burst_colors"] = []
        intent = (
            GUILD_MESSAGE_REACTIONS if message.guild_id is not None else DIRECT_MESSAGE_REACTIONS
        )
        await self.world.emit(
            "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE",
            lambda s: dict(event) if s.has_intent(intent) else None,
            guild_id=message.guild_id,
        )
