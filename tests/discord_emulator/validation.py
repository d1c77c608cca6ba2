"""Discord's limits on what a bot sends, answered with Discord's own 400 errors.

These are the limits bots hit in practice (2,000-character content, embed sizes, empty
messages, thread names), so a bot that would be refused by Discord is refused here too.
"""

from __future__ import annotations

import logging
from typing import Any

from tests.discord_emulator.errors import (
    EMPTY_MESSAGE,
    DiscordAPIError,
    form_error,
    max_length,
)
from tests.discord_emulator.mentions import validate_allowed_mentions

log = logging.getLogger(__name__)

CONTENT_LIMIT = 2000
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBED_TOTAL_LIMIT = 6000
THREAD_NAME_LIMIT = 100
ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_COMPONENTS_V2 = 1 << 15
SENDABLE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_COMPONENTS_V2
INTERACTION_FLAGS = SENDABLE_FLAGS | FLAG_EPHEMERAL


def _embed_size(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    return total


def validate_embeds(embeds: Any) -> list[dict[str, Any]]:
    if embeds is None:
        return []
    if not isinstance(embeds, list):
        raise form_error("embeds", "BASE_TYPE_LIST", "Must be a list.")
    if len(embeds) > 10:
        raise max_length("embeds", 10)
    total = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            raise form_error(f"embeds.{i}", "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        for key, limit in EMBED_LIMITS.items():
            if len(embed.get(key) or "") > limit:
                raise max_length(f"embeds.{i}.{key}", limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise max_length(f"embeds.{i}.fields", 25)
        for j, f in enumerate(fields):
            if not f.get("name") or len(f["name"]) > 256:
                raise max_length(f"embeds.{i}.fields.{j}.name", 256)
            if not f.get("value") or len(f["value"]) > 1024:
                raise max_length(f"embeds.{i}.fields.{j}.value", 1024)
        total += _embed_size(embed)
    if total > EMBED_TOTAL_LIMIT:
        raise form_error(
            "embeds", "MESSAGE_EMBED_TOO_LARGE", "Embed size exceeds maximum size of 6000"
        )
    return [{"type": "rich", **{k: v for k, v in e.items() if v is not None}} for e in embeds]


def validate_message_body(
    body: dict[str, Any],
    *,
    file_count: int,
    editing: bool = False,
    allow_flags: int = SENDABLE_FLAGS,
) -> None:
    """Check a create/edit message body; raises DiscordAPIError as Discord would."""
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        content = str(content)
        body["content"] = content
    if content is not None and len(content) > CONTENT_LIMIT:
        raise max_length("content", CONTENT_LIMIT)
    validate_embeds(body.get("embeds"))
    validate_allowed_mentions(body.get("allowed_mentions"))
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        raise max_length("nonce", 25)
    flags = body.get("flags")
    if flags is not None and (not isinstance(flags, int) or flags & ~allow_flags):
        raise form_error("flags", "MESSAGE_FLAGS_INVALID", "Invalid message flags.")
    if editing:
        return
    has_body = bool(
        (content and content.strip())
        or body.get("embeds")
        or file_count
        or body.get("sticker_ids")
        or body.get("poll")
        or body.get("components")
    )
    if not has_body:
        raise DiscordAPIError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def validate_thread_body(body: dict[str, Any]) -> tuple[str, int]:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > THREAD_NAME_LIMIT:
        raise max_length("name", THREAD_NAME_LIMIT)
    duration = body.get("auto_archive_duration") or 1440
    if duration not in ARCHIVE_DURATIONS:
        raise form_error(
            "auto_archive_duration",
            "BASE_TYPE_CHOICES",
            "Value must be one of {60, 1440, 4320, 10080}.",
        )
    return name, int(duration)
