"""What a slash command checks before it runs, and how a refused or failed one is answered.

``in_conversation_thread`` guards the thread commands (/save, /summarize, /end, /export): it
finds the conversation of the thread once, before the command runs, and the command takes it
with ``thread_conversation``. Every cog's ``cog_app_command_error`` delegates to
``answer_command_error``, so a refusal or a failure reads the same whichever command it was.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from memory import Conversation, StoreError

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)

__all__ = [
    "FAILED",
    "NOT_A_THREAD",
    "ConversationUnreadable",
    "NotAConversationThread",
    "answer_command_error",
    "in_conversation_thread",
    "thread_conversation",
]

NOT_A_THREAD = (
    "This isn't an Echo conversation. Mention me in a channel to start one, then use this "
    "command in its thread."
)
FAILED = "Sorry, that didn't work. The operator can find the cause in Echo's log."
# Discord's names for the permissions a command may require, as members see them.
PERMISSION_NAMES = {"manage_guild": "Manage Server"}
# Where the check leaves the conversation it found, for the command it let through.
_CONVERSATION = "echo.conversation"


class NotAConversationThread(app_commands.CheckFailure):
    """The command was used outside a thread that holds an Echo conversation of this server."""


class ConversationUnreadable(app_commands.AppCommandError):
    """The store could not tell whether the channel holds a conversation (it is away)."""


async def _in_conversation_thread(interaction: discord.Interaction[EchoBot]) -> bool:
    if interaction.guild_id is None or interaction.channel_id is None:
        raise NotAConversationThread(NOT_A_THREAD)
    try:
        conversation = await interaction.client.manager.get_or_resume(str(interaction.channel_id))
    except StoreError as exc:
        # Raised as an AppCommandError, or discord.py would not pass it to the error handlers.
        raise ConversationUnreadable(str(exc)) from exc
    if conversation is None or conversation.guild_id != str(interaction.guild_id):
        raise NotAConversationThread(NOT_A_THREAD)
    interaction.extras[_CONVERSATION] = conversation
    return True


in_conversation_thread = app_commands.check(_in_conversation_thread)
"""Let the command run only in a thread holding an Echo conversation of this server."""


def thread_conversation(interaction: discord.Interaction) -> Conversation:
    """The conversation ``in_conversation_thread`` found for this interaction."""
    conversation = interaction.extras[_CONVERSATION]
    if not isinstance(conversation, Conversation):
        raise TypeError("thread_conversation() needs the in_conversation_thread check")
    return conversation


async def answer_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    """Tell the member, privately and briefly; log a failure's cause for the operator."""
    if isinstance(error, NotAConversationThread):
        text = NOT_A_THREAD
    elif isinstance(error, app_commands.MissingPermissions):
        text = _missing_permissions(error.missing_permissions)
    else:
        name = interaction.command.qualified_name if interaction.command else "?"
        log.error("/%s failed: %s", name, error, exc_info=error)
        text = FAILED
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def _missing_permissions(missing: list[str]) -> str:
    names = " and ".join(
        PERMISSION_NAMES.get(name, name.replace("_", " ").title()) for name in missing
    )
    noun = "permission" if len(missing) == 1 else "permissions"
    return f"Only members with the {names} {noun} can run this."
