"""Scheduling Echo's replies: one at a time per thread, a cooldown per person, a bounded
number of model calls at once, each reply streamed into its thread.

Not an extension: the conversation cog owns one ``ReplyScheduler`` and hands it the messages
to answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import discord

from bot.agent import Failure, Final, RoundStart, TextDelta, TextRetracted, ToolUse
from bot.discord.cooldown import Cooldown
from bot.discord.pacing import WriteBudget
from bot.discord.replies import already_answered
from bot.discord.streaming import Channel, StreamingReply

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)

__all__ = ["BUSY_NOTE", "COOLDOWN_NOTE", "REPLY_MENTIONS", "ReplyScheduler", "send_quietly"]

# Echo pings nobody: not @everyone, roles or users its model names, and not even the person
# its reply quotes (the quote shows whom it answers; a ping on every reply is noise).
REPLY_MENTIONS = discord.AllowedMentions.none()
COOLDOWN_NOTE = "You're sending messages quickly, so I'll answer in a few seconds."
BUSY_NOTE = "I'm answering several conversations at once; yours is next in line."


class ReplyScheduler:
    """Answers the messages it is given, per thread, in order, without piling up."""

    def __init__(self, bot: EchoBot) -> None:
        self.bot = bot
        self.manager = bot.manager
        self.agent = bot.agent
        self.settings = bot.settings
        self._pending: dict[int, discord.Message] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._cooldown = Cooldown(self.settings.user_cooldown_seconds)
        # One model call per slot, across every thread: a busy bot queues rather than piles on.
        self._model_slots = asyncio.Semaphore(self.settings.max_concurrent_replies)

    def busy(self, thread_key: int) -> bool:
        """Whether a reply in this thread is under way or about to start."""
        return thread_key in self._workers or thread_key in self._pending

    def cancel(self) -> None:
        """Cancel every reply under way (the cog is unloaded)."""
        for task in self._workers.values():
            task.cancel()

    def schedule(self, message: discord.Message, thread_key: int, channel: Channel) -> None:
        """Answer in the thread once the reply in progress (if any) is done.

        Messages that arrive during a reply are all recorded, and the next reply answers them
        together: one reply at a time per thread, never one per message of a burst.
        """
        self._pending[thread_key] = message
        if thread_key in self._workers:
            return  # the reply in progress is followed by one answering this too
        # The cooldown applies when a new reply would start, not to messages that join a
        # reply already under way: those are answered together anyway.
        wait = self._cooldown.remaining(str(message.author.id))
        task = asyncio.get_running_loop().create_task(
            self._reply_worker(thread_key, channel, wait), name=f"echo-reply-{thread_key}"
        )
        self._workers[thread_key] = task
        self.bot.reply_tasks.add(task)
        task.add_done_callback(self.bot.reply_tasks.discard)

    async def _reply_worker(self, thread_key: int, channel: Channel, wait: float = 0.0) -> None:
        waits = self.bot.waits
        try:
            if wait > 0:
                started = time.monotonic()
                await send_quietly(self.bot.write_budget, channel, COOLDOWN_NOTE)
                await asyncio.sleep(wait)
                waits.report("cooldown", thread_key, started, time.monotonic())
            while not self.bot.closing:
                message = self._pending.pop(thread_key, None)
                if message is None:
                    break
                conversation = self.manager.get_conversation(str(thread_key))
                if conversation is not None and already_answered(
                    conversation.history, str(message.id)
                ):
                    continue  # it came while the last reply waited to start: that one answered it
                self._cooldown.mark(str(message.author.id))
                try:
                    queued = None
                    if self._model_slots.locked():
                        queued = time.monotonic()
                        await send_quietly(self.bot.write_budget, channel, BUSY_NOTE)
                    async with self._model_slots:
                        if queued is not None:
                            waits.report("model slot", thread_key, queued, time.monotonic())
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

    async def _answer(self, channel: Channel, thread_id: str, message: discord.Message) -> None:
        reference = message.to_reference(fail_if_not_exists=False)
        # Reply-quote the question only when it is not the thread's own starter message.
        if str(message.id) == thread_id:
            reference = None
        reply = StreamingReply(
            channel,
            allowed_mentions=REPLY_MENTIONS,
            reference=reference,
            show_thinking=self.settings.show_thinking,
            notice=self.agent.provider.notice,
            budget=self.bot.write_budget,
        )
        async with reply:
            async for event in self.agent.respond(thread_id, self.bot.names):
                if isinstance(event, TextDelta):
                    reply.add(event.text)
                elif isinstance(event, TextRetracted):
                    reply.retract()
                elif isinstance(event, RoundStart):
                    reply.reset()
                elif isinstance(event, ToolUse):
                    log.info("thread %s: tools %s", thread_id, ", ".join(event.names))
                elif isinstance(event, Final):
                    await reply.finish(event.text, event.thinking)
                elif isinstance(event, Failure):
                    await reply.fail(event.user_message)


async def send_quietly(budget: WriteBudget, channel: Channel, text: str) -> None:
    """Post a notice that pings nobody; a refusal is logged, not raised."""
    try:
        async with budget.write(channel.id):
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        log.warning("could not send a notice in %s: %s", channel.id, exc)
