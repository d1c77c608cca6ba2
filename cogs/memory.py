"""/memory: long-term memories of this server: generate them, and see what is kept about you.

Every answer here is scoped to the server the command is used in: nothing learned in one
server is ever shown in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.text import MESSAGE_LIMIT
from cogs.checks import answer_command_error
from memory.longterm import ForgetReport, forget_person

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)


@app_commands.guild_only()
class MemoryCog(
    commands.GroupCog,
    group_name="memory",
    group_description="Echo's long-term memory of this server.",
):
    """Memory generation and people's view of what Echo keeps."""

    def __init__(self, bot: EchoBot) -> None:
        self.bot = bot
        self.service = bot.memories
        self.settings = bot.settings
        self._auto: asyncio.Task[None] | None = None
        super().__init__()

    async def cog_load(self) -> None:
        if self.settings.memory_auto:
            self._auto = asyncio.get_running_loop().create_task(
                self._periodic(), name="echo-memory-auto"
            )

    async def cog_unload(self) -> None:
        if self._auto is not None:
            self._auto.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._auto

    async def _periodic(self) -> None:
        # With Redis, one bot process per interval queues the batch and the workers make the
        # memories (MemoryService.scheduled decides); alone, the bot makes them itself.
        interval = self.settings.memory_interval_seconds
        log.info("automatic memory runs every %.0f s", interval)
        while True:
            await asyncio.sleep(interval)
            try:
                line = await self.service.scheduled(interval)
                if line:
                    log.info("automatic memory run: %s", line)
            except Exception:
                log.exception("the automatic memory run failed; next try in %.0f s", interval)

    @app_commands.command(
        name="generate", description="Distil this server's ended conversations into memories now."
    )
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def generate(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.service.generate(str(interaction.guild_id))
        text = f"Memory run done: {report.line()}."
        if report.failures:
            text += " The failures are in Echo's log."
        await interaction.followup.send(text, ephemeral=True)

    @app_commands.command(
        name="show",
        description="See what Echo remembers about you in this server (only you see it).",
    )
    async def show(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        user = str(interaction.user.id)
        guild = str(interaction.guild_id)
        records = await self.service.store.list_memories(guild)
        facts = [f.text for r in records for f in r.memory_data.facts if f.about == user]
        infos = await self.service.store.conversation_infos(guild)
        mine = sorted(
            (i for i in infos if user in i.participants), key=lambda i: i.created_at, reverse=True
        )
        lines = ["**What I remember about you in this server**"]
        lines += [f"• {fact}" for fact in facts] or ["No facts about you yet."]
        lines.append(f"\n**Conversations you were in here: {len(mine)}**")
        for info in mine[:15]:
            summary = " ".join(info.summary.split())[:120]
            lines.append(
                f"• <#{info.thread_id}> started {info.created_at:%Y-%m-%d}"
                + (f": {summary}" if summary else "")
            )
        if len(mine) > 15:
            lines.append(f"…and {len(mine) - 15} more.")
        text = "\n".join(lines)
        if len(text) > MESSAGE_LIMIT:
            text = text[: MESSAGE_LIMIT - 2] + "…"
        await interaction.followup.send(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(
        name="forget",
        description="Make Echo forget you in this server: your conversations, messages and facts.",
    )
    async def forget(self, interaction: discord.Interaction) -> None:
        view = ForgetConfirmation(self, interaction.user.id, str(interaction.guild_id))
        await interaction.response.send_message(
            "This deletes, **in this server**: the conversations you started, your messages in "
            "other conversations (and my answers to them), and every memory about you or made "
            "from what you said. It cannot be undone.",
            view=view,
            ephemeral=True,
        )
        view.interaction = interaction

    async def forget_user(self, guild_id: str, user_id: str) -> ForgetReport:
        try:
            report = await forget_person(self.bot.manager, guild_id, user_id)
            self.bot.forget_names(user_id)
            recall = self.bot.agent.recall
            if recall is not None:  # deleted ones left the index already; drop kept memories too
                await recall.forget(guild_id, report.conversations_changed)
        finally:
            # Last, even after a failure half-way: threads of this guild recall and fold anew.
            self.bot.agent.states.drop_guild(guild_id)
        return report

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_command_error(interaction, error)


class ForgetConfirmation(discord.ui.View):
    """Two buttons under the warning; only the person who asked can press them."""

    def __init__(self, cog: MemoryCog, user_id: int, guild_id: str) -> None:
        super().__init__(timeout=120)
        self.cog = cog
        self.user_id = user_id
        self.guild_id = guild_id
        self.interaction: discord.Interaction | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.user_id

    @discord.ui.button(label="Forget me", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Forgetting…", view=None)
        try:
            report = await self.cog.forget_user(self.guild_id, str(self.user_id))
        except Exception:
            log.exception("forgetting user %s in guild %s failed", self.user_id, self.guild_id)
            await interaction.edit_original_response(
                content="Something went wrong while forgetting; the operator can see why in "
                "Echo's log. Please try again."
            )
            return
        await interaction.edit_original_response(content=f"Done: {report.line()}.")

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _: discord.ui.Button[Any]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was forgotten.", view=None)

    async def on_timeout(self) -> None:
        if self.interaction is not None:
            with contextlib.suppress(discord.HTTPException):
                await self.interaction.edit_original_response(
                    content="No answer, so nothing was forgotten.", view=None
                )


async def setup(bot: EchoBot) -> None:
    await bot.add_cog(MemoryCog(bot))
