"""The emulated Discord's world: users, guilds, channels, threads, messages, commands.

Entities are plain dataclasses; their wire shapes are built in ``payloads.py`` (and its
``guild_``, ``message_`` and ``app_payloads.py`` siblings) so the model stays easy to mutate
from tests and the JSON stays in one place.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.discord_emulator.errors import (
    UNKNOWN_CHANNEL,
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_MESSAGE,
    UNKNOWN_USER,
    not_found,
)

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000

# Channel types (https://discord.com/developers/docs/resources/channel#channel-object-channel-types)
GUILD_TEXT = 0
DM = 1
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

# Message types
DEFAULT_MESSAGE = 0
THREAD_CREATED = 18
REPLY = 19
CHAT_INPUT_COMMAND = 20

# Permission bits the emulator cares about when it builds roles.
PERM_VIEW_CHANNEL = 1 << 10
PERM_SEND_MESSAGES = 1 << 11
PERM_MANAGE_MESSAGES = 1 << 13
PERM_EMBED_LINKS = 1 << 14
PERM_ATTACH_FILES = 1 << 15
PERM_READ_MESSAGE_HISTORY = 1 << 16
PERM_MENTION_EVERYONE = 1 << 17
PERM_ADD_REACTIONS = 1 << 6
PERM_USE_APPLICATION_COMMANDS = 1 << 31
PERM_MANAGE_THREADS = 1 << 34
PERM_CREATE_PUBLIC_THREADS = 1 << 35
PERM_CREATE_PRIVATE_THREADS = 1 << 36
PERM_SEND_MESSAGES_IN_THREADS = 1 << 38

EVERYONE_PERMISSIONS = (
    PERM_VIEW_CHANNEL
    | PERM_SEND_MESSAGES
    | PERM_EMBED_LINKS
    | PERM_ATTACH_FILES
    | PERM_READ_MESSAGE_HISTORY
    | PERM_ADD_REACTIONS
    | PERM_USE_APPLICATION_COMMANDS
    | PERM_CREATE_PUBLIC_THREADS
    | PERM_CREATE_PRIVATE_THREADS
    | PERM_SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | PERM_MANAGE_MESSAGES | PERM_MANAGE_THREADS


class SnowflakeGenerator:
    """Real snowflakes (Discord epoch, worker/process bits, increment), always increasing.

    Increasing ids matter: discord.py sorts and compares by id, and a thread started
    from a message must carry that message's id.
    """

    def __init__(self, worker_id: int = 1, process_id: int = 0) -> None:
        self._worker = worker_id & 0x1F
        self._process = process_id & 0x1F
        self._increment = itertools.count()
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (ms << 22) | (self._worker << 17) | (self._process << 12)
            value |= next(self._increment) & 0xFFF
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return value


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso(moment: datetime | None = None) -> str:
    """Discord's timestamp format: ISO 8601 with microseconds and +00:00."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def new_token() -> str:
    return secrets.token_urlsafe(48)


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None
    discriminator: str = "0"
    # False: the bot's DMs to this user fail with 403 50007 (DMs closed, as a user may set)
    accepts_dms: bool = True


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    managed: bool = False
    mentionable: bool = False
    bot_id: int | None = None


@dataclass
class Member:
    user_id: int
    guild_id: int
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = field(default_factory=iso)


@dataclass
class Channel:
    """A guild text channel, a thread (``type`` 0, 11 or 12) or a DM (``type`` 1, no guild)."""

    id: int
    guild_id: int | None
    type: int
    name: str
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    rate_limit_per_user: int = 0
    last_message_id: int | None = None
    # threads only
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    invitable: bool = True
    auto_archive_duration: int = 1440
    archive_timestamp: str = field(default_factory=iso)
    create_timestamp: str = field(default_factory=iso)
    message_count: int = 0
    total_message_sent: int = 0
    member_ids: list[int] = field(default_factory=list)
    # DMs only: the other user (the bot is the implicit second participant)
    recipient_ids: list[int] = field(default_factory=list)

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def is_dm(self) -> bool:
        return self.type == DM


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    created_at: str = field(default_factory=iso)


@dataclass
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str
    description: str | None = None


@dataclass
class Message:
    """A stored message; ``payload`` is built on demand so edits stay consistent."""

    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str
    type: int = DEFAULT_MESSAGE
    timestamp: str = field(default_factory=iso)
    edited_timestamp: str | None = None
    tts: bool = False
    mention_everyone: bool = False
    mention_ids: list[int] = field(default_factory=list)
    mention_role_ids: list[int] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    nonce: str | int | None = None
    pinned: bool = False
    webhook_id: int | None = None
    application_id: int | None = None
    message_reference: dict[str, Any] | None = None
    thread_id: int | None = None
    position: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    deleted: bool = False
    # emoji ("name" or "name:id") -> ids of the users who reacted
    reactions: dict[str, list[int]] = field(default_factory=dict)
    # the interaction this message answers, when it is an interaction response
    interaction_id: int | None = None


@dataclass
class Command:
    """An application command as synced by the bot, with the ids Discord assigns."""

    id: int
    application_id: int
    guild_id: int | None
    name: str
    type: int
    body: dict[str, Any]
    version: int


@dataclass
class DefaultWorld:
    """The entities the default fixture pre-makes."""

    guild: Guild
    channel: Channel
    user: User


class Store:
    """Every entity by id, with lookups that fail the way Discord's API does."""

    def __init__(self) -> None:
        self.snowflakes = SnowflakeGenerator()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.commands: dict[int, Command] = {}
        # user id -> id of the bot's DM channel with that user
        self.dm_channels: dict[int, int] = {}
        # whose point of view ``me`` fields take (reactions)
        self.bot_id: int | None = None

    def next_id(self) -> int:
        return self.snowflakes.next()

    def user(self, user_id: int) -> User:
        try:
            return self.users[int(user_id)]
        except (KeyError, ValueError):
            raise not_found(UNKNOWN_USER, "User") from None

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[int(guild_id)]
        except (KeyError, ValueError):
            raise not_found(UNKNOWN_GUILD, "Guild") from None

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[int(channel_id)]
        except (KeyError, ValueError):
            raise not_found(UNKNOWN_CHANNEL, "Channel") from None

    def message(self, channel_id: int, message_id: int) -> Message:
        self.channel(channel_id)
        try:
            message = self.messages[int(message_id)]
        except (KeyError, ValueError):
            raise not_found(UNKNOWN_MESSAGE, "Message") from None
        if message.channel_id != int(channel_id) or message.deleted:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return message

    def member(self, guild_id: int, user_id: int) -> Member:
        try:
            return self.guild(guild_id).members[int(user_id)]
        except (KeyError, ValueError):
            raise not_found(UNKNOWN_MEMBER, "Member") from None

    def channel_messages(self, channel_id: int) -> list[Message]:
        """Live messages of a channel, oldest first."""
        return sorted(
            (m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted),
            key=lambda m: m.id,
        )

    def threads_of(self, guild_id: int) -> list[Channel]:
        return [c for c in self.channels.values() if c.guild_id == guild_id and c.is_thread]

    def permissions(self, guild_id: int, user_id: int) -> int:
        """Guild-level permissions: the owner has all, else the OR of the member's roles."""
        guild = self.guild(guild_id)
        if guild.owner_id == user_id:
            return (1 << 53) - 1
        member = guild.members.get(user_id)
        value = guild.roles[guild.id].permissions if guild.id in guild.roles else 0
        if member is not None:
            for role_id in member.roles:
                role = guild.roles.get(role_id)
                if role is not None:
                    value |= role.permissions
        return value


@dataclass
class UploadedFile:
    """A file part of a multipart request (``files[n]``)."""

    field_name: str
    filename: str
    content_type: str
    data: bytes
