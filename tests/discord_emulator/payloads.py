"""Wire shapes of Discord objects, as documented (API v10) and as discord.py reads them.

Snowflakes are strings, timestamps ISO 8601, permissions decimal strings. Fields
Discord always sends are always sent, even when discord.py would tolerate their absence,
so a bot tested here does not come to depend on a shortcut.

This module holds the shapes the others are built from: users, members, roles and channels
(text channels, threads, DMs). Guilds are in ``guild_payloads``, messages in
``message_payloads``, the application and its commands in ``app_payloads``.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.discord_emulator.state import Channel, Member, Role, Store, User

__all__ = [
    "ATTACHMENT_SIZE_LIMIT",
    "channel",
    "dm_channel",
    "member",
    "role",
    "sid",
    "thread_member",
    "user",
]

log = logging.getLogger(__name__)

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def user(u: User) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": u.discriminator,
        "global_name": u.global_name,
        "avatar": u.avatar,
        "avatar_decoration_data": None,
        "banner": None,
        "accent_color": None,
        "public_flags": 0,
        "flags": 0,
        "primary_guild": None,
        "collectibles": None,
    }
    if u.bot:
        payload["bot"] = True
    return payload


def member(
    m: Member,
    store: Store,
    *,
    with_user: bool = True,
    permissions: int | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "roles": [str(r) for r in m.roles],
        "joined_at": m.joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "avatar_decoration_data": None,
    }
    if with_user:
        payload["user"] = user(store.user(m.user_id))
    if permissions is not None:
        payload["permissions"] = str(permissions)
    return payload


def role(r: Role) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "description": None,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        payload["tags"] = {"bot_id": str(r.bot_id)}
    return payload


def thread_member(thread: Channel, user_id: int, join_timestamp: str) -> dict[str, Any]:
    return {
        "id": str(thread.id),
        "user_id": str(user_id),
        "join_timestamp": join_timestamp,
        "flags": 1,
    }


def dm_channel(ch: Channel, store: Store) -> dict[str, Any]:
    """A DM channel (type 1): no guild, no name, the other user in ``recipients``."""
    return {
        "id": str(ch.id),
        "type": ch.type,
        "last_message_id": sid(ch.last_message_id),
        "flags": 0,
        "recipients": [user(store.user(uid)) for uid in ch.recipient_ids],
    }


def channel(
    ch: Channel, *, member_of: int | None = None, store: Store | None = None
) -> dict[str, Any]:
    """A text channel or a thread; ``member_of`` adds the thread-member object for that user.

    A DM channel needs ``store`` (for its recipients).
    """
    if ch.is_dm:
        if store is None:
            raise ValueError("a DM channel's payload needs the store for its recipients")
        return dm_channel(ch, store)
    if ch.is_thread:
        metadata: dict[str, Any] = {
            "archived": ch.archived,
            "auto_archive_duration": ch.auto_archive_duration,
            "archive_timestamp": ch.archive_timestamp,
            "locked": ch.locked,
            "create_timestamp": ch.create_timestamp,
        }
        if ch.type == 12:
            metadata["invitable"] = ch.invitable
        payload: dict[str, Any] = {
            "id": str(ch.id),
            "type": ch.type,
            "guild_id": str(ch.guild_id),
            "parent_id": sid(ch.parent_id),
            "owner_id": sid(ch.owner_id),
            "name": ch.name,
            "last_message_id": sid(ch.last_message_id),
            "rate_limit_per_user": ch.rate_limit_per_user,
            "message_count": ch.message_count,
            "member_count": min(len(ch.member_ids), 50),
            "total_message_sent": ch.total_message_sent,
            "thread_metadata": metadata,
            "flags": 0,
            "applied_tags": [],
        }
        if member_of is not None and member_of in ch.member_ids:
            payload["member"] = thread_member(ch, member_of, ch.create_timestamp)
        return payload
    return {
        "id": str(ch.id),
        "type": ch.type,
        "guild_id": str(ch.guild_id),
        "name": ch.name,
        "position": ch.position,
        "permission_overwrites": [],
        "parent_id": sid(ch.parent_id),
        "nsfw": ch.nsfw,
        "topic": ch.topic,
        "last_message_id": sid(ch.last_message_id),
        "last_pin_timestamp": None,
        "rate_limit_per_user": ch.rate_limit_per_user,
        "default_auto_archive_duration": 1440,
        "default_thread_rate_limit_per_user": 0,
        "flags": 0,
    }
