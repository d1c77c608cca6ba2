"""Wire shapes of Discord objects, as documented (API v10) and as discord.py reads them.

Snowflakes are strings, timestamps ISO 8601, permissions decimal strings. Fields
Discord always sends are always sent, even when discord.py would tolerate their absence,
so a bot tested here does not come to depend on a shortcut.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.discord_emulator.state import (
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    Store,
    User,
)

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


def _guild_base(g: Guild, store: Store) -> dict[str, Any]:
    system_channel = next(
        (cid for cid in g.channel_ids if cid in store.channels and store.channels[cid].type == 0),
        None,
    )
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(g.owner_id),
        "region": None,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: r.position)],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": sid(system_channel),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "nsfw": False,
        "premium_progress_bar_enabled": False,
        "incidents_data": None,
        "hub_type": None,
    }


def guild(g: Guild, store: Store) -> dict[str, Any]:
    """The REST guild object (GET /guilds/{id})."""
    payload = _guild_base(g, store)
    payload["approximate_member_count"] = len(g.members)
    payload["approximate_presence_count"] = 0
    return payload


def guild_create(
    g: Guild, store: Store, *, bot_id: int, all_members: bool, joined_at: str
) -> dict[str, Any]:
    """GUILD_CREATE: the guild with its channels, active threads, roles and members.

    Without the GUILD_MEMBERS intent Discord sends only the bot's own member.
    """
    payload = _guild_base(g, store)
    members = [member(m, store) for m in g.members.values() if all_members or m.user_id == bot_id]
    channels = [channel(store.channels[cid]) for cid in g.channel_ids if cid in store.channels]
    threads = [
        channel(t, member_of=bot_id)
        for t in store.threads_of(g.id)
        if not t.archived and (t.type != 12 or bot_id in t.member_ids)
    ]
    payload.update(
        {
            "joined_at": joined_at,
            "large": len(g.members) >= 250,
            "unavailable": False,
            "member_count": len(g.members),
            "members": members,
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": True,
            "application_command_counts": {},
            "embedded_activities": [],
            "activity_instances": [],
            "version": 0,
        }
    )
    return payload


def attachment(a: Attachment, *, url_base: str, channel_id: int) -> dict[str, Any]:
    url = f"{url_base}/attachments/{channel_id}/{a.id}/{a.filename}"
    payload: dict[str, Any] = {
        "id": str(a.id),
        "filename": a.filename,
        "size": len(a.data),
        "url": url,
        "proxy_url": url,
        "content_type": a.content_type,
        "flags": 0,
    }
    if a.description is not None:
        payload["description"] = a.description
    return payload


def reaction(emoji: str, users: list[int], *, me_id: int | None) -> dict[str, Any]:
    name, _, emoji_id = emoji.partition(":")
    return {
        "count": len(users),
        "count_details": {"burst": 0, "normal": len(users)},
        "me": me_id in users,
        "me_burst": False,
        "burst_colors": [],
        "emoji": {"id": emoji_id or None, "name": name},
    }


def message(
    m: Message,
    store: Store,
    *,
    url_base: str,
    gateway: bool = False,
    with_reference: bool = True,
) -> dict[str, Any]:
    """A message object; gateway events add ``guild_id`` and partial ``member`` objects."""
    author = store.user(m.author_id)
    guild = store.guilds.get(m.guild_id) if m.guild_id is not None else None
    mentions: list[dict[str, Any]] = []
    for uid in m.mention_ids:
        mentioned = store.users.get(uid)
        if mentioned is None:
            continue
        entry = user(mentioned)
        if gateway and guild is not None and uid in guild.members:
            entry["member"] = member(guild.members[uid], store, with_user=False)
        mentions.append(entry)
    payload: dict[str, Any] = {
        "id": str(m.id),
        "type": m.type,
        "channel_id": str(m.channel_id),
        "author": user(author),
        "content": m.content,
        "timestamp": m.timestamp,
        "edited_timestamp": m.edited_timestamp,
        "tts": m.tts,
        "mention_everyone": m.mention_everyone,
        "mentions": mentions,
        "mention_roles": [str(r) for r in m.mention_role_ids],
        "attachments": [
            attachment(a, url_base=url_base, channel_id=m.channel_id) for a in m.attachments
        ],
        "embeds": [dict(e) for e in m.embeds],
        "components": [dict(c) for c in m.components],
        "pinned": m.pinned,
        "flags": m.flags,
    }
    if gateway and m.guild_id is not None:
        payload["guild_id"] = str(m.guild_id)
        if guild is not None and m.webhook_id is None and m.author_id in guild.members:
            payload["member"] = member(guild.members[m.author_id], store, with_user=False)
    if m.reactions:
        payload["reactions"] = [
            reaction(emoji, users, me_id=store.bot_id) for emoji, users in m.reactions.items()
        ]
    if m.nonce is not None:
        payload["nonce"] = m.nonce
    if m.webhook_id is not None:
        payload["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        payload["application_id"] = str(m.application_id)
    if m.position is not None:
        payload["position"] = m.position
    if m.message_reference is not None:
        payload["message_reference"] = dict(m.message_reference)
        if with_reference and m.type == 19:
            ref_id = int(m.message_reference["message_id"])
            ref = store.messages.get(ref_id)
            payload["referenced_message"] = (
                None
                if ref is None or ref.deleted
                else message(ref, store, url_base=url_base, gateway=gateway, with_reference=False)
            )
    if m.interaction_metadata is not None:
        payload["interaction_metadata"] = dict(m.interaction_metadata)
        payload["interaction"] = {
            "id": m.interaction_metadata["id"],
            "type": m.interaction_metadata["type"],
            "name": m.interaction_metadata.get("name", ""),
            "user": m.interaction_metadata["user"],
        }
    if m.thread_id is not None and m.thread_id in store.channels:
        payload["thread"] = channel(store.channels[m.thread_id])
    return payload
