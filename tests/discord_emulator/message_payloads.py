"""Wire shapes of messages (API v10) with their attachments and reactions, as REST answers
and gateway events carry them; authors, mentions and threads come from ``payloads``.
"""

from __future__ import annotations

from typing import Any

from tests.discord_emulator.payloads import channel, member, user
from tests.discord_emulator.state import Attachment, Message, Store

__all__ = ["attachment", "message", "reaction"]


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
