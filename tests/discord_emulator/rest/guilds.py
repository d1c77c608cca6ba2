"""REST handlers for guilds: the guild, its channels, roles, members and active threads."""

from __future__ import annotations

from typing import Any

from tests.discord_emulator import guild_payloads, payloads
from tests.discord_emulator.rest.handlers import ApiRequest, Handlers


class GuildHandlers(Handlers):
    """/guilds/{guild_id}/..."""

    # -- guilds -----------------------------------------------------------------

    async def get_guild(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        return guild_payloads.guild(guild, self.world.store)

    async def get_guild_channels(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        store = self.world.store
        return [
            payloads.channel(store.channels[c]) for c in guild.channel_ids if c in store.channels
        ]

    async def get_roles(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        return [payloads.role(r) for r in guild.roles.values()]

    async def list_members(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        after = int(request.query.get("after", "0"))
        members = sorted(
            (m for m in guild.members.values() if m.user_id > after), key=lambda m: m.user_id
        )
        return [payloads.member(m, self.world.store) for m in members[:limit]]

    async def get_member(self, request: ApiRequest) -> Any:
        member = self.world.store.member(
            int(request.params["guild_id"]), int(request.params["user_id"])
        )
        return payloads.member(member, self.world.store)

    async def active_threads(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        bot_id = self.world.bot_user.id
        threads = [t for t in self.world.store.threads_of(guild.id) if not t.archived]
        return {
            "threads": [payloads.channel(t) for t in threads],
            "members": [
                payloads.thread_member(t, bot_id, t.create_timestamp)
                for t in threads
                if bot_id in t.member_ids
            ],
        }
