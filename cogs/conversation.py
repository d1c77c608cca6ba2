"""Conversations in Discord: a mention opens a thread, every thread message is recorded and
answered one reply at a time, and /save /summarize /end /export act on the thread's record.

The cog translates Discord events into calls on the memory manager and the agent; it holds
no storage logic of its own.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.agent import Failure, Final, RoundStart, TextDelta, ToolUse
from bot.streaming import StreamingReply
from bot.text import split_message, thread_name
from memory import Conversation, Message, MessageType, StoreError
from memory.store.jsonfile import render

if TYPE_CHECKING:
    from bot.client import EchoBot

log = logging.getLogger(__name__)

DM_NOTE = "I chat in servers: mention me in a channel there and I'll open a thread for us."
NOT_A_THREAD = (
    "This isn't an Echo conversation. Mention me in a channel to start one, then use this "
    "command in its thread."
)
# Only the person a reply answers may be pinged, never @everyone, roles or other users.
REPLY_MENTIONS = discord.AllowedMentions(
    everyone=False, users=False, roles=False, replied_user=True
)
HUMAN_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class ConversationCog(commands.Cog, name="Conversation"):
    """Mentions, thread messages, replies, and the conversation slash commands."""

    def __init__(self, bot: EchoBot) -> None:
        self.bot = bot
        self.manager = bot.manager
        self.agent = bot.agent
        self.settings = bot.settings
        # Display names as last seen, so the model knows who said what.
        self.names: dict[str, str] = {}
        self._pending: dict[int, discord.Message] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}

    async def cog_unload(self) -> None:
        for task in self._workers.values():
            task.cancel()

    # --- messages -----------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.bot.closing or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in HUMAN_MESSAGE_TYPES:
            return  # joins, pins, thread-created notices...
        if message.guild is None:
            await self._send_quietly(message.channel, DM_NOTE)
            return
        me = self.bot.user
        mentioned = me is not None and me.id in message.raw_mentions
        thread_id = str(message.channel.id)
        try:
            conversation = await self.manager.get_or_resume(thread_id)
        except StoreError as exc:
            log.error("cannot read the conversation of thread %s: %s", thread_id, exc)
            return
        if conversation is not None:
            await self._in_conversation(message, conversation, mentioned)
        elif mentioned:
            await self._start(message)

    async def _in_conversation(
        self, message: discord.Message, conversation: Conversation, mentioned: bool
    ) -> None:
        if conversation.ended:
            if not mentioned:
                return
            await self.manager.reopen_conversation(conversation.thread_id)
            log.info("thread %s: reopened by a mention", conversation.thread_id)
        if not await self._record(message, conversation.thread_id):
            return  # already recorded (a replayed event): it was answered then
        if self._should_answer(message, conversation, mentioned):
            self._schedule(message, int(conversation.thread_id), message.channel)

    async def _start(self, message: discord.Message) -> None:
        channel = message.channel
        author = message.author
        if isinstance(channel, discord.Thread):
            thread: discord.Thread | discord.abc.Messageable = channel
            parent_id = channel.parent_id
        elif isinstance(channel, discord.TextChannel):
            # A thread started from a message has the message's id: if that conversation
            # exists, this mention was handled already and is a gateway replay.
            if await self.manager.get_or_resume(str(message.id)) is not None:
                log.debug("mention %s was handled already (replayed event)", message.id)
                return
            name = thread_name(message.content, f"Chat with {author.display_name}")
            try:
                thread = await message.create_thread(name=name, auto_archive_duration=1440)
            except discord.Forbidden:
                log.warning(
                    "cannot start a thread in #%s (guild %s): missing the Create Public Threads "
                    "permission",
                    channel.name,
                    channel.guild.id,
                )
                await self._reply_quietly(
                    message,
                    "I need the **Create Public Threads** permission in this channel to start a "
                    "conversation.",
                )
                return
            except discord.HTTPException as exc:
                log.error("could not start a thread in #%s: %s", channel.name, exc)
                await self._reply_quietly(message, "I couldn't open a thread here, sorry.")
                return
            parent_id = channel.id
        else:
            log.debug("mention in unsupported channel %s ignored", channel)
            return
        assert message.guild is not None
        try:
            await self.manager.create_conversation(
                thread_id=str(thread.id),  # type: ignore[union-attr]
                guild_id=str(message.guild.id),
                guild_name=message.guild.name,
                requester=str(author.id),
                channel_id=str(parent_id),
            )
        except (StoreError, OSError) as exc:
            log.error("could not create the conversation of thread %s: %s", thread.id, exc)  # type: ignore[union-attr]
            await self._send_quietly(thread, "I couldn't start recording this conversation, sorry.")
            return
        log.info(
            "conversation started in thread %s by %s in guild %s",
            thread.id,  # type: ignore[union-attr]
            author.id,
            message.guild.id,
        )
        if await self._record(message, str(thread.id)):  # type: ignore[union-attr]
            self._schedule(message, thread.id, thread)  # type: ignore[union-attr]

    async def _record(self, message: discord.Message, thread_id: str) -> bool:
        author = message.author
        self.names[str(author.id)] = author.display_name
        record = Message(
            message_type=MessageType.CHAT,
            # Mentions as @Name: readable in the files and to the model (ids stay in Discord).
            message_content=message.clean_content,
            requester=str(author.id),
            message_id=str(message.id),
            created_at=message.created_at,
            meta={"author_name": author.display_name},
        )
        try:
            return await self.manager.add_message_to_conversation(thread_id, record)
        except (StoreError, OSError) as exc:
            log.error("could not record message %s in thread %s: %s", message.id, thread_id, exc)
            await self._send_quietly(
                message.channel, "I couldn't save your message just now, so I can't answer it."
            )
            return False

    def _should_answer(
        self, message: discord.Message, conversation: Conversation, mentioned: bool
    ) -> bool:
        mode = self.settings.thread_replies
        if mode == "all" or mentioned:
            return True
        return mode == "requester" and str(message.author.id) == conversation.requester

    # --- replies ------------------------------------------------------------------------------

    def _schedule(
        self, message: discord.Message, thread_key: int, channel: discord.abc.Messageable
    ) -> None:
        """Answer in the thread once the reply in progress (if any) is done.

        Messages that arrive during a reply are all recorded, and the next reply answers them
        together: one reply at a time per thread, never one per message of a burst.
        """
        self._pending[thread_key] = message
        if thread_key in self._workers:
            return
        task = asyncio.get_running_loop().create_task(
            self._reply_worker(thread_key, channel), name=f"echo-reply-{thread_key}"
        )
        self._workers[thread_key] = task
        self.bot.reply_tasks.add(task)
        task.add_done_callback(self.bot.reply_tasks.discard)

    async def _reply_worker(self, thread_key: int, channel: discord.abc.Messageable) -> None:
        try:
            while not self.bot.closing:
                message = self._pending.pop(thread_key, None)
                if message is None:
                    break
                try:
                    await self._answer(channel, str(thread_key), message)
                except discord.Forbidden:
                    log.warning(
                        "cannot answer in thread %s: missing the Send Messages in Threads "
                        "permission",
                        thread_key,
                    )
                except discord.HTTPException as exc:
                    log.error("Discord refused part of the reply in thread %s: %s", thread_key, exc)
        finally:
            self._workers.pop(thread_key, None)

    async def _answer(
        self, channel: discord.abc.Messageable, thread_id: str, message: discord.Message
    ) -> None:
        reference = message.to_reference(fail_if_not_exists=False)
        # Reply-quote the question only when it is not the thread's own starter message.
        if str(message.id) == thread_id:
            reference = None
        reply = StreamingReply(
            channel,
            allowed_mentions=REPLY_MENTIONS,
            reference=reference,
            show_thinking=self.settings.show_thinking,
        )
        async with reply:
            async for event in self.agent.respond(thread_id, self.names):
                if isinstance(event, TextDelta):
                    reply.add(event.text)
                elif isinstance(event, RoundStart):
                    reply.reset()
                elif isinstance(event, ToolUse):
                    log.info("thread %s: tools %s", thread_id, ", ".join(event.names))
                elif isinstance(event, Final):
                    await reply.finish(event.text, event.thinking)
                elif isinstance(event, Failure):
                    await reply.fail(event.user_message)

    # --- slash commands -----------------------------------------------------------------------

    async def _conversation_for(self, interaction: discord.Interaction) -> Conversation | None:
        if interaction.guild_id is None or interaction.channel_id is None:
            return None
        conversation = await self.manager.get_or_resume(str(interaction.channel_id))
        if conversation is None or conversation.guild_id != str(interaction.guild_id):
            return None
        return conversation

    @app_commands.command(name="save", description="Save this thread's conversation to disk now.")
    @app_commands.guild_only()
    async def save(self, interaction: discord.Interaction) -> None:
        conversation = await self._conversation_for(interaction)
        if conversation is None:
            await interaction.response.send_message(NOT_A_THREAD, ephemeral=True)
            return
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
    async def summarize(self, interaction: discord.Interaction) -> None:
        conversation = await self._conversation_for(interaction)
        if conversation is None:
            await interaction.response.send_message(NOT_A_THREAD, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        summary = await self.agent.summarize(conversation, self.names)
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
    async def end(self, interaction: discord.Interaction) -> None:
        conversation = await self._conversation_for(interaction)
        if conversation is None:
            await interaction.response.send_message(NOT_A_THREAD, ephemeral=True)
            return
        await self.manager.end_conversation(conversation.thread_id)
        await self.manager.save_conversation(conversation.thread_id)
        await interaction.response.send_message(
            "Conversation ended and saved. Mention me here to pick it up again."
        )

    @app_commands.command(
        name="export", description="Get this thread's conversation as a JSON file."
    )
    @app_commands.guild_only()
    async def export(self, interaction: discord.Interaction) -> None:
        conversation = await self._conversation_for(interaction)
        if conversation is None:
            await interaction.response.send_message(NOT_A_THREAD, ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await render(conversation)
        await interaction.followup.send(
            f"The conversation as recorded ({_count(len(conversation.history))}).",
            file=discord.File(io.BytesIO(data), filename=conversation.filename),
            ephemeral=True,
        )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error(
            "/%s failed: %s",
            interaction.command.name if interaction.command else "?",
            error,
            exc_info=error,
        )
        text = "Sorry, that didn't work. The operator can find the cause in Echo's log."
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    # --- helpers ------------------------------------------------------------------------------

    async def _send_quietly(self, channel: discord.abc.Messageable, text: str) -> None:
        try:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.warning("could not send a notice in %s: %s", getattr(channel, "id", channel), exc)

    async def _reply_quietly(self, message: discord.Message, text: str) -> None:
        try:
            await message.reply(
                text, mention_author=False, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.Forbidden:
            log.warning(
                "cannot answer in #%s either: missing the Send Messages permission",
                getattr(message.channel, "name", message.channel.id),
            )
        except discord.HTTPException as exc:
            log.warning("could not reply to message %s: %s", message.id, exc)


def _count(n: int) -> str:
    return f"{n} message" + ("" if n == 1 else "s")


async def setup(bot: EchoBot) -> None:
    await bot.add_cog(ConversationCog(bot))
