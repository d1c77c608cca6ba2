"""Discord's limits on what a bot sends, answered with Discord's own 400 errors.

These are the limits bots hit in practice (2,000-character content, embed sizes, empty
messages, thread names, message components), so a bot that would be refused by Discord
is refused here too.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
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

# Message components
ACTION_ROW = 1
BUTTON = 2
STRING_SELECT = 3
TEXT_INPUT = 4
SELECT_TYPES = (STRING_SELECT, 5, 6, 7, 8)  # string, user, role, mentionable, channel
# Top-level types a components-v2 message may carry besides action rows: section, text
# display, media gallery, file, separator, container.
V2_LAYOUT_TYPES = (9, 10, 12, 13, 14, 17)
BUTTON_LINK = 5
BUTTON_PREMIUM = 6
BUTTON_STYLES = (1, 2, 3, 4, BUTTON_LINK, BUTTON_PREMIUM)
MAX_ACTION_ROWS = 5
ROW_WIDTH = 5
MAX_V2_COMPONENTS = 40
CUSTOM_ID_LIMIT = 100
LABEL_LIMIT = 80
URL_LIMIT = 512
PLACEHOLDER_LIMIT = 150


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


def _bad_length(path: str, low: int, high: int) -> DiscordAPIError:
    return form_error(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _required(path: str) -> DiscordAPIError:
    return form_error(path, "BASE_TYPE_REQUIRED", "This field is required")


def _check_string(component: dict[str, Any], key: str, path: str, limit: int) -> None:
    value = component.get(key)
    if value is None:
        return
    if not isinstance(value, str):
        raise form_error(f"{path}.{key}", "BASE_TYPE_STRING", "Must be a string.")
    if len(value) > limit:
        raise max_length(f"{path}.{key}", limit)


def _check_custom_id(component: dict[str, Any], path: str, seen: set[str]) -> None:
    custom_id = component.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _required(f"{path}.custom_id")
    _check_string(component, "custom_id", path, CUSTOM_ID_LIMIT)
    if custom_id in seen:
        raise form_error(
            f"{path}.custom_id",
            "COMPONENT_CUSTOM_ID_DUPLICATED",
            "Component custom id cannot be duplicated",
        )
    seen.add(custom_id)


def _validate_button(button: dict[str, Any], path: str, seen: set[str]) -> None:
    style = button.get("style")
    if style not in BUTTON_STYLES:
        raise form_error(
            f"{path}.style", "BASE_TYPE_CHOICES", f"Value must be one of {set(BUTTON_STYLES)}."
        )
    _check_string(button, "label", path, LABEL_LIMIT)
    emoji = button.get("emoji")
    if emoji is not None and (
        not isinstance(emoji, dict) or not (emoji.get("id") or emoji.get("name"))
    ):
        raise form_error(f"{path}.emoji", "MODEL_TYPE_CONVERT", "Invalid emoji")
    if "disabled" in button and not isinstance(button["disabled"], bool):
        raise form_error(f"{path}.disabled", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
    if style == BUTTON_LINK:
        if not button.get("url"):
            raise _required(f"{path}.url")
        _check_string(button, "url", path, URL_LIMIT)
        if button.get("custom_id") is not None:
            raise form_error(
                f"{path}.custom_id",
                "COMPONENT_LINK_BUTTON_CUSTOM_ID",
                "A link button cannot have a custom id",
            )
    elif style == BUTTON_PREMIUM:
        if not button.get("sku_id"):
            raise _required(f"{path}.sku_id")
    else:
        if button.get("url") is not None:
            raise form_error(
                f"{path}.url", "COMPONENT_BUTTON_URL_NOT_ALLOWED", "Only link buttons have a url"
            )
        _check_custom_id(button, path, seen)
    if style != BUTTON_PREMIUM and not (button.get("label") or emoji):
        raise form_error(
            f"{path}.label",
            "COMPONENT_BUTTON_LABEL_OR_EMOJI_REQUIRED",
            "A button needs a label or an emoji",
        )


def _validate_select(select: dict[str, Any], path: str, seen: set[str]) -> None:
    _check_custom_id(select, path, seen)
    _check_string(select, "placeholder", path, PLACEHOLDER_LIMIT)
    if select.get("type") == STRING_SELECT:
        options = select.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= 25:
            raise _bad_length(f"{path}.options", 1, 25)


def _validate_row(row: dict[str, Any], path: str, seen: set[str]) -> None:
    children = row.get("components")
    if not isinstance(children, list) or not 1 <= len(children) <= ROW_WIDTH:
        raise _bad_length(f"{path}.components", 1, ROW_WIDTH)
    width = 0
    for j, child in enumerate(children):
        cpath = f"{path}.components.{j}"
        if not isinstance(child, dict):
            raise form_error(cpath, "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        ctype = child.get("type")
        if ctype == BUTTON:
            _validate_button(child, cpath, seen)
            width += 1
        elif ctype in SELECT_TYPES:
            _validate_select(child, cpath, seen)
            width += ROW_WIDTH
        else:
            raise form_error(
                f"{cpath}.type",
                "COMPONENT_TYPE_INVALID",
                f"Component type {ctype!r} is not allowed in an action row",
            )
        if width > ROW_WIDTH:
            raise form_error(
                cpath,
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )


def _validate_layout(component: dict[str, Any], path: str, seen: set[str]) -> None:
    """A components-v2 layout component: the rows and buttons anywhere inside it."""
    ctype = component.get("type")
    if ctype == ACTION_ROW:
        _validate_row(component, path, seen)
        return
    if ctype == BUTTON:  # a section's accessory
        _validate_button(component, path, seen)
        return
    for j, child in enumerate(component.get("components") or []):
        if isinstance(child, dict):
            _validate_layout(child, f"{path}.components.{j}", seen)
    accessory = component.get("accessory")
    if isinstance(accessory, dict):
        _validate_layout(accessory, f"{path}.accessory", seen)


def _walk(components: list[Any]) -> Iterator[dict[str, Any]]:
    """Every component dict, depth first (rows, their children, containers, accessories)."""
    for component in components:
        if not isinstance(component, dict):
            continue
        yield component
        yield from _walk(component.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(component.get(key), dict):
                yield from _walk([component[key]])


def iter_components(components: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every component of a stored message, nested ones included (depth first)."""
    return _walk(components)


def validate_components(components: Any, *, v2: bool = False) -> list[dict[str, Any]]:
    """Check a message's ``components`` as Discord does; return them as Discord stores them.

    Legacy messages: at most 5 action rows of at most 5 buttons (a select fills a row),
    each ``custom_id`` <= 100 characters and unique in the message, labels <= 80, link
    buttons (style 5) with a ``url`` and no ``custom_id``. Components-v2 messages (flag
    ``1 << 15``) may also carry layout components, at most 40 components in all. As on
    Discord, each component without an ``id`` gets the next free number, depth first.
    """
    if components is None:
        return []
    if not isinstance(components, list):
        raise form_error("components", "BASE_TYPE_LIST", "Must be a list.")
    if not v2 and len(components) > MAX_ACTION_ROWS:
        raise max_length("components", MAX_ACTION_ROWS)
    seen: set[str] = set()
    for i, component in enumerate(components):
        path = f"components.{i}"
        if not isinstance(component, dict):
            raise form_error(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        ctype = component.get("type")
        if ctype == ACTION_ROW:
            _validate_row(component, path, seen)
        elif v2 and ctype in V2_LAYOUT_TYPES:
            _validate_layout(component, path, seen)
        else:
            raise form_error(
                f"{path}.type",
                "COMPONENT_TYPE_INVALID",
                f"Component type {ctype!r} is not allowed at the top level"
                + ("" if v2 else " (action rows only without the IS_COMPONENTS_V2 flag)"),
            )
    stored = copy.deepcopy(components)
    every = list(_walk(stored))
    if v2 and len(every) > MAX_V2_COMPONENTS:
        raise form_error(
            "components",
            "COMPONENT_MAX_TOTAL_COMPONENTS_EXCEEDED",
            f"The total number of components exceeds the maximum of {MAX_V2_COMPONENTS}",
        )
    for component in every:
        emoji = component.get("emoji")
        if isinstance(emoji, dict) and emoji.get("id") is None:
            emoji.pop("id", None)  # a Unicode emoji: Discord answers its name alone
    taken = {c["id"] for c in every if isinstance(c.get("id"), int)}
    next_id = 1
    for component in every:
        if isinstance(component.get("id"), int):
            continue
        while next_id in taken:
            next_id += 1
        component["id"] = next_id
        taken.add(next_id)
    return stored


def validate_message_body(
    body: dict[str, Any],
    *,
    file_count: int,
    editing: bool = False,
    allow_flags: int = SENDABLE_FLAGS,
    current_flags: int = 0,
) -> None:
    """Check a create/edit message body; raises DiscordAPIError as Discord would.

    ``current_flags``: the flags of the message being edited (components v2 or not).
    """
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
    v2 = bool(((flags if isinstance(flags, int) else 0) | current_flags) & FLAG_IS_COMPONENTS_V2)
    validate_components(body.get("components"), v2=v2)
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
