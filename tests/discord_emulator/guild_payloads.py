"""Wire shapes of guilds (API v10), built from the ``payloads`` of their roles, members and
channels: the REST guild object and the GUILD_CREATE the gateway sends for each guild.
"""

from __future__ import annotations

from typing import Any

from tests.discord_emulator.payloads import channel, member, role, sid
from tests.discord_emulator.state import Guild, Store

__all__ = ["guild", "guild_create"]


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
