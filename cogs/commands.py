"""/save, /summarize, /end and /export: slash commands on the conversation of the thread they
are used in.

Each runs only in a thread holding an Echo conversation (``in_conversation_thread``); the
cog calls the memory manager and the agent and holds no storage logic of its own.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.export import as_shown
from bot.discord.text import split_message
from cogs.checks import answer_command_error, in_conversation_thread, thread_conversation
from memory import StoreError
from memory.records import render

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)


class ThreadCommandsCog(commands.Cog, name="Thread commands"):
    """The slash commands that act on a thread's conversation."""

    def __init__(self, bot: EchoBot) -> None:
        self.bot = bot
        self.manager = bot.manager
        self.agent = bot.agent
        self.settings = bot.settings

    @app_commands.command(name="save", description="Save this thread's conversation to disk now.")
    @app_commands.guild_only()
    @in_conversation_thread
    async def save(self, interaction: discord.Interaction) -> None:
        conversation = thread_conversation(interaction)
        try:
            await self.manager.save_conversation(conversation.thread_id)
        except StoreError as exc:
            log.error("/save of thread %s failed: %s", conversation.thread_id, exc)
            await interaction.response.send_message(
                "I couldn't save it just now; everything is still kept in my journal.",
                ephemeral=True,
            )
            return
        await interaction.response.send_message(
            f"Saved `{conversation.filename}` ({_count(len(conversation.history))}).",
            ephemeral=True,
        )

    @app_commands.command(
        name="summarize", description="Post a summary of this thread's conversation."
    )
    @app_commands.guild_only()
    @in_conversation_thread
    async def summarize(self, interaction: discord.Interaction) -> None:
        conversation = thread_conversation(interaction)
        await interaction.response.defer(thinking=True)
        summary = await self.agent.summarize(conversation, self.bot.names)
        if not summary.strip():
            await interaction.followup.send("There's nothing to summarize yet.")
            return
        await self.manager.set_summary(conversation.thread_id, summary)
        chunks = split_message("**Summary so far**\n" + summary)
        for chunk in chunks:
            await interaction.followup.send(chunk, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(
        name="end", description="End this conversation: save it and stop answering here."
    )
    @app_commands.guild_only()
    @in_conversation_thread
    async def end(self, interaction: discord.Interaction) -> None:
        conversation = thread_conversation(interaction)
        await self.manager.end_conversation(conversation.thread_id)
        await self.manager.save_conversation(conversation.thread_id)
        await interaction.response.send_message(
            "Conversation ended and saved. Mention me here to pick it up again."
        )

    @app_commands.command(
        name="export", description="Get this thread's conversation as a JSON file."
    )
    @app_commands.guild_only()
    @in_conversation_thread
    async def export(self, interaction: discord.Interaction) -> None:
        conversation = thread_conversation(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        shown = as_shown(conversation, show_thinking=self.settings.show_thinking)
        data = await render(shown)
        await interaction.followup.send(
            f"The conversation as recorded ({_count(len(shown.history))}).",
            file=discord.File(io.BytesIO(data), filename=conversation.filename),
            ephemeral=True,
        )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_command_error(interaction, error)


def _count(n: int) -> str:
    return f"{n} message" + ("" if n == 1 else "s")


async def setup(bot: EchoBot) -> None:
    await bot.add_cog(ThreadCommandsCog(bot))
