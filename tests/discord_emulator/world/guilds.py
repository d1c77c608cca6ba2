"""The world's guilds and people: users, guilds, text channels, roles, members, DMs.

Building them (the test side, synchronous: dispatched to a connected bot as GUILD_CREATE,
CHANNEL_CREATE, ...) and showing them to a gateway session (READY, GUILD_CREATE, members).
A mixin of ``DiscordWorld`` (``world/core.py``), whose state and event queue it uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from tests.discord_emulator import app_payloads, guild_payloads, payloads
from tests.discord_emulator.errors import CANNOT_SEND_TO_USER, DiscordAPIError
from tests.discord_emulator.gateway.protocol import GUILD_MEMBERS, GUILDS
from tests.discord_emulator.gateway.sessions import GatewaySession
from tests.discord_emulator.state import (
    BOT_ROLE_PERMISSIONS,
    DM,
    EVERYONE_PERMISSIONS,
    GUILD_TEXT,
    Channel,
    DefaultWorld,
    Guild,
    Member,
    Role,
    User,
    iso,
)

log = logging.getLogger(__name__)


class GuildOps:
    """Users, guilds, channels, roles, members and DMs: building and showing them."""

    # -- payload helpers ------------------------------------------------------

    def member_payload(self, member: Member) -> dict[str, Any]:
        return payloads.member(member, self.store)

    def ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        me = payloads.user(self.bot_user)
        me.update({"verified": True, "mfa_enabled": False, "email": None, "bot": True})
        payload: dict[str, Any] = {
            "v": 10,
            "user": me,
            "user_settings": {},
            "guilds": [
                {"id": str(g.id), "unavailable": True}
                for g in self.store.guilds.values()
                if session.sees_guild(g.id)
            ],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["emulated"],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "auth": {},
            "_trace": ['["discord-emulator",{"micros":0}]'],
        }
        if session.shard is not None:
            payload["shard"] = list(session.shard)
        return payload

    def guild_create_payload(self, guild: Guild, session: GatewaySession) -> dict[str, Any]:
        me = guild.members.get(self.bot_user.id)
        return guild_payloads.guild_create(
            guild,
            self.store,
            bot_id=self.bot_user.id,
            all_members=session.has_intent(GUILD_MEMBERS),
            joined_at=me.joined_at if me else iso(),
        )

    @property
    def application_flags(self) -> int:
        flags = app_payloads.APP_FLAG_APPLICATION_COMMAND_BADGE
        if "presences" in self.privileged_intents:
            flags |= app_payloads.APP_FLAG_GATEWAY_PRESENCE_LIMITED
        if "members" in self.privileged_intents:
            flags |= app_payloads.APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
        if "message_content" in self.privileged_intents:
            flags |= app_payloads.APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED
        return flags

    # -- world building (test side, synchronous) -----------------------------

    def create_user(self, name: str, *, bot: bool = False, global_name: str | None = None) -> User:
        user = User(self.store.next_id(), name, global_name=global_name, bot=bot)
        self.store.users[user.id] = user
        return user

    def create_guild(self, name: str, *, owner_id: int | None = None) -> Guild:
        """A guild the bot is in (with its managed bot role); dispatched if the bot is online."""
        guild_id = self.store.next_id()
        if owner_id is None:
            owner_id = self.create_user(f"{name.lower().replace(' ', '-')}-owner").id
        self.store.user(owner_id)
        guild = Guild(guild_id, name, owner_id)
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", EVERYONE_PERMISSIONS)
        bot_role = Role(
            self.store.next_id(),
            guild_id,
            self.bot_user.username,
            BOT_ROLE_PERMISSIONS,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner_id] = Member(owner_id, guild_id)
        guild.members[self.bot_user.id] = Member(self.bot_user.id, guild_id, roles=[bot_role.id])
        self.store.guilds[guild_id] = guild

        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(GUILDS):
                return None
            return self.guild_create_payload(guild, session)

        self._queue("GUILD_CREATE", build, guild_id)
        return guild

    def create_text_channel(self, guild_id: int, name: str, *, topic: str | None = None) -> Channel:
        guild = self.store.guild(guild_id)
        channel = Channel(
            self.store.next_id(),
            guild.id,
            GUILD_TEXT,
            name,
            position=len(guild.channel_ids),
            topic=topic,
        )
        self.store.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self._guild_event("CHANNEL_CREATE", payloads.channel(channel), GUILDS, guild.id)
        return channel

    def create_role(
        self, guild_id: int, name: str, *, permissions: int = 0, mentionable: bool = True
    ) -> Role:
        guild = self.store.guild(guild_id)
        role = Role(
            self.store.next_id(),
            guild.id,
            name,
            permissions,
            position=len(guild.roles),
            mentionable=mentionable,
        )
        guild.roles[role.id] = role
        self._guild_event(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": payloads.role(role)},
            GUILDS,
            guild.id,
        )
        return role

    def add_member(
        self, guild_id: int, user_id: int, *, roles: Iterable[int] = (), nick: str | None = None
    ) -> Member:
        guild = self.store.guild(guild_id)
        self.store.user(user_id)
        role_ids = [int(r) for r in roles]
        for role_id in role_ids:
            if role_id not in guild.roles:
                raise KeyError(f"role {role_id} is not in guild {guild_id}")
        member = Member(int(user_id), guild.id, roles=role_ids, nick=nick)
        guild.members[member.user_id] = member
        payload = payloads.member(member, self.store)
        payload["guild_id"] = str(guild.id)
        self._guild_event("GUILD_MEMBER_ADD", payload, GUILD_MEMBERS, guild.id)
        return member

    def populate(self) -> DefaultWorld:
        """A guild "Test Guild" with #general and a member "alice": what most tests need.

        Also kept as ``self.world``.
        """
        guild = self.create_guild("Test Guild")
        channel = self.create_text_channel(guild.id, "general")
        user = self.create_user("alice", global_name="Alice")
        self.add_member(guild.id, user.id)
        self.world = DefaultWorld(guild=guild, channel=channel, user=user)
        return self.world

    def dm_channel(self, user_id: int) -> Channel:
        """The bot's DM channel with a user (type 1, no guild), created on first use.

        As on Discord, opening it dispatches nothing to the bot and it keeps its id for
        good: ``POST /users/@me/channels`` returns the same channel.
        """
        user = self.store.user(user_id)
        if user.id == self.bot_user.id:
            raise DiscordAPIError(400, CANNOT_SEND_TO_USER, "Cannot send messages to this user")
        channel_id = self.store.dm_channels.get(user.id)
        if channel_id is not None:
            return self.store.channels[channel_id]
        channel = Channel(self.store.next_id(), None, DM, "", recipient_ids=[user.id])
        self.store.channels[channel.id] = channel
        self.store.dm_channels[user.id] = channel.id
        log.info("DM channel %s opened with user %s", channel.id, user.id)
        return channel
