"""Wire shapes of the bot's application and its commands (API v10), as ``payloads``,
``guild_payloads`` and ``message_payloads`` do for users, channels, guilds and messages: the
answers of ``/applications/@me`` and of command syncs.
"""

from __future__ import annotations

from typing import Any

from tests.discord_emulator.payloads import user
from tests.discord_emulator.state import Command, User

__all__ = [
    "APP_FLAG_APPLICATION_COMMAND_BADGE",
    "APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED",
    "APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED",
    "APP_FLAG_GATEWAY_PRESENCE_LIMITED",
    "application",
    "command",
]

# Application flags: the "limited" intents flags say the privileged intent is switched on
# in the developer portal for an unverified bot.
APP_FLAG_GATEWAY_PRESENCE_LIMITED = 1 << 13
APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
APP_FLAG_APPLICATION_COMMAND_BADGE = 1 << 23


def command(c: Command) -> dict[str, Any]:
    """An application command as Discord returns it from a sync, ids and version added."""
    body = c.body
    payload: dict[str, Any] = {
        "id": str(c.id),
        "application_id": str(c.application_id),
        "version": str(c.version),
        "type": c.type,
        "name": c.name,
        "name_localizations": body.get("name_localizations"),
        "description": body.get("description", "") if c.type == 1 else "",
        "description_localizations": body.get("description_localizations"),
        "default_member_permissions": body.get("default_member_permissions"),
        "dm_permission": body.get("dm_permission", True),
        "nsfw": body.get("nsfw", False),
        "contexts": body.get("contexts"),
        # discord.py sends null for "not set"; Discord answers the default, guild install.
        "integration_types": body.get("integration_types") or [0],
    }
    if c.guild_id is not None:
        payload["guild_id"] = str(c.guild_id)
    if body.get("options"):
        payload["options"] = body["options"]
    return payload


def application(
    *, app_id: int, bot: User, owner: User, flags: int, guild_count: int
) -> dict[str, Any]:
    """GET /oauth2/applications/@me and /applications/@me."""
    return {
        "id": str(app_id),
        "name": bot.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": flags,
        "flags_new": str(flags),  # the same bits as a string, for flags beyond 2**53
        "owner": user(owner),
        "team": None,
        "bot": user(bot),
        "redirect_uris": [],
        "rpc_origins": [],
        "tags": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "approximate_guild_count": guild_count,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,  # inherit the guild's setting
        "eligible_oauth2_scopes": ["applications.commands", "bot"],
        "integration_types_config": {"0": {}},
        "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
    }
