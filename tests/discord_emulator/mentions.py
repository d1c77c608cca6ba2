"""Mention parsing and ``allowed_mentions`` filtering, as Discord's backend does them.

A message object's ``mentions`` / ``mention_roles`` / ``mention_everyone`` say who was
actually pinged, so a bot that forgets ``allowed_mentions`` shows up in the emulator's
message objects exactly as it would ping people on Discord.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from tests.discord_emulator.errors import form_error

log = logging.getLogger(__name__)

USER_MENTION = re.compile(r"<@!?(\d{1,20})>")
ROLE_MENTION = re.compile(r"<@&(\d{1,20})>")
EVERYONE_MENTION = re.compile(r"@(everyone|here)")


@dataclass
class Mentions:
    users: list[int] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)
    everyone: bool = False


def _unique(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


def parse_mentions(content: str) -> Mentions:
    """Every mention written in ``content``, in order, without duplicates."""
    return Mentions(
        users=_unique([int(m) for m in USER_MENTION.findall(content)]),
        roles=_unique([int(m) for m in ROLE_MENTION.findall(content)]),
        everyone=EVERYONE_MENTION.search(content) is not None,
    )


def validate_allowed_mentions(allowed: Any) -> None:
    """Reject what Discord rejects (an invalid object would otherwise silently ping)."""
    if allowed is None:
        return
    if not isinstance(allowed, dict):
        raise form_error("allowed_mentions", "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
    parse = allowed.get("parse", [])
    if not isinstance(parse, list) or any(p not in ("users", "roles", "everyone") for p in parse):
        raise form_error(
            "allowed_mentions.parse", "BASE_TYPE_CHOICES", "Value must be one of users, roles."
        )
    for kind in ("users", "roles"):
        ids = allowed.get(kind, [])
        if not isinstance(ids, list):
            raise form_error(f"allowed_mentions.{kind}", "BASE_TYPE_LIST", "Must be a list.")
        if len(ids) > 100:
            raise form_error(
                f"allowed_mentions.{kind}",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            )
        if ids and kind in parse:
            raise form_error(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
            )


def filter_mentions(
    parsed: Mentions,
    allowed: dict[str, Any] | None,
    *,
    replied_user_id: int | None = None,
) -> Mentions:
    """Who is actually pinged given ``allowed_mentions`` (absent means: everything written)."""
    if allowed is None:
        users = list(parsed.users)
        if replied_user_id is not None and replied_user_id not in users:
            users.append(replied_user_id)
        return Mentions(users=users, roles=list(parsed.roles), everyone=parsed.everyone)

    parse = set(allowed.get("parse", []))
    explicit_users = {int(u) for u in allowed.get("users", [])}
    explicit_roles = {int(r) for r in allowed.get("roles", [])}
    users = [u for u in parsed.users if "users" in parse or u in explicit_users]
    roles = [r for r in parsed.roles if "roles" in parse or r in explicit_roles]
    if (
        replied_user_id is not None
        and allowed.get("replied_user", False)
        and replied_user_id not in users
    ):
        users.append(replied_user_id)
    return Mentions(users=users, roles=roles, everyone=parsed.everyone and "everyone" in parse)
