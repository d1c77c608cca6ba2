"""REST handlers for channels and threads: edits, deletes, typing, threads and their members."""

from __future__ import annotations

from typing import Any

from tests.discord_emulator import payloads
from tests.discord_emulator.errors import DiscordAPIError
from tests.discord_emulator.rest.handlers import ApiRequest, Handlers, Reply


class ChannelHandlers(Handlers):
    """/channels/{channel_id} and its threads."""

    # -- channels and threads ---------------------------------------------------

    async def get_channel(self, request: ApiRequest) -> Any:
        channel = self.world.store.channel(int(request.params["channel_id"]))
        return payloads.channel(channel, member_of=self.world.bot_user.id, store=self.world.store)

    async def patch_channel(self, request: ApiRequest) -> Any:
        channel = await self.world.modify_channel(int(request.params["channel_id"]), request.body())
        return payloads.channel(channel, member_of=self.world.bot_user.id, store=self.world.store)

    async def delete_channel(self, request: ApiRequest) -> Any:
        channel = await self.world.delete_channel(int(request.params["channel_id"]))
        return payloads.channel(channel, store=self.world.store)

    async def typing(self, request: ApiRequest) -> Any:
        self.world.store.channel(int(request.params["channel_id"]))
        return None

    async def thread_from_message(self, request: ApiRequest) -> Any:
        thread = await self.world.start_thread(
            int(request.params["channel_id"]),
            self.world.bot_user.id,
            request.body(),
            message_id=int(request.params["message_id"]),
        )
        return Reply(201, payloads.channel(thread, member_of=self.world.bot_user.id))

    async def thread_without_message(self, request: ApiRequest) -> Any:
        thread = await self.world.start_thread(
            int(request.params["channel_id"]), self.world.bot_user.id, request.body()
        )
        return Reply(201, payloads.channel(thread, member_of=self.world.bot_user.id))

    async def archived_threads(self, request: ApiRequest) -> Any:
        parent_id = int(request.params["channel_id"])
        self.world.store.channel(parent_id)
        threads = [
            t
            for t in self.world.store.channels.values()
            if t.is_thread and t.parent_id == parent_id and t.archived and t.type == 11
        ]
        return {"threads": [payloads.channel(t) for t in threads], "members": [], "has_more": False}

    def _thread(self, request: ApiRequest) -> Any:
        thread = self.world.store.channel(int(request.params["channel_id"]))
        if not thread.is_thread:
            raise DiscordAPIError(400, 50024, "Cannot execute action on this channel type")
        return thread

    def _user_param(self, request: ApiRequest) -> int:
        raw = request.params["user_id"]
        return self.world.bot_user.id if raw == "@me" else self.world.store.user(int(raw)).id

    async def list_thread_members(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        return [
            payloads.thread_member(thread, uid, thread.create_timestamp)
            for uid in thread.member_ids
        ]

    async def join_thread(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        user_id = self._user_param(request)
        if user_id not in thread.member_ids:
            thread.member_ids.append(user_id)
        return None

    async def leave_thread(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        user_id = self._user_param(request)
        if user_id in thread.member_ids:
            thread.member_ids.remove(user_id)
        return None
