"""Catching up after downtime: what was said in Echo's threads while it was away.

Discord replays nothing to a fresh gateway session: a message posted while the bot restarted,
was deployed or crashed reaches it only through the channel's history. So after each fresh
IDENTIFY (a shard's READY, not a RESUME), every conversation of that shard's servers that is
not ended and was active within ``ECHO_CATCH_UP_HOURS`` is read back from Discord's history:
the messages after the last one recorded are recorded in order, as if they had arrived live;
edits and deletions of the recent recorded ones are applied; and the newest message that would
have been answered is answered once, with the others as context. Recording is idempotent on
the Discord id, and an answer is skipped when Echo's own message already follows it in the
thread, so a restart loop never records or answers twice.

Live messages wait (``gate``) until their thread is caught up, so the record keeps Discord's
order: those of a shard whose catch-up has not yet listed its threads, then those of a thread
still being caught up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import discord

from memory import Conversation, InMemoryConversationManager, StoreError
from memory.stores import ConversationInfo

log = logging.getLogger(__name__)

__all__ = ["CatchUp", "CatchUpReport"]

RECENT = 50
"""Recorded messages per thread whose edits and deletions are checked (the history read back
starts there; everything after the last recorded message is read, however much)."""

HUMAN_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)


GATE_SECONDS = 120.0
"""The longest a live message waits for a catch-up before it is handled anyway."""

Record = Callable[[discord.Message, str], Awaitable[bool]]
ShouldAnswer = Callable[[discord.Message, Conversation, bool], bool]
Schedule = Callable[[discord.Message, int, discord.abc.Messageable], None]


@dataclass
class CatchUpReport:
    threads: int = 0
    recorded: int = 0
    edited: int = 0
    deleted: int = 0
    answered: int = 0
    failed: int = 0

    def line(self) -> str:
        return (
            f"caught up {self.threads} thread(s): {self.recorded} message(s) recorded, "
            f"{self.edited} edited, {self.deleted} deleted, {self.answered} answered"
            + (f", {self.failed} could not be read" if self.failed else "")
        )


class CatchUp:
    """Catch-up of one process's threads, shard by shard."""

    def __init__(
        self,
        client: discord.Client,
        manager: InMemoryConversationManager,
        *,
        record: Record,
        should_answer: ShouldAnswer,
        schedule: Schedule,
        hours: float,
    ) -> None:
        """``record``, ``should_answer`` and ``schedule`` are what the conversation cog does
        with a live message: record it (False if it was recorded already), decide whether it
        wants an answer, and answer in the thread after the reply in progress."""
        self.client = client
        self.manager = manager
        self.record = record
        self.should_answer = should_answer
        self.schedule = schedule
        self.hours = hours
        self._shards: dict[int | None, asyncio.Event] = {}
        self._threads: dict[str, asyncio.Event] = {}

    async def gate(self, shard_id: int | None, thread_id: str) -> None:
        """Wait until a live message of this thread may be handled: its shard's catch-up has
        listed the threads it will read, and this thread is not among those still to do."""
        if self.hours <= 0:
            return
        try:
            async with asyncio.timeout(GATE_SECONDS):
                await self._shard(shard_id).wait()
                event = self._threads.get(thread_id)
                if event is not None:
                    await event.wait()
        except TimeoutError:
            log.warning(
                "thread %s: the catch-up is slow; handling a live message anyway", thread_id
            )

    def disconnected(self, shard_id: int | None) -> None:
        """The shard lost its session: what comes next is a RESUME or a fresh catch-up."""
        self._shard(shard_id).clear()

    def resumed(self, shard_id: int | None) -> None:
        """Discord replayed what was missed: nothing to read back."""
        self._shard(shard_id).set()

    def _shard(self, shard_id: int | None) -> asyncio.Event:
        return self._shards.setdefault(shard_id, asyncio.Event())

    async def shard_ready(self, shard_id: int | None) -> CatchUpReport:
        """Catch up the threads of the servers on ``shard_id`` (None: every server)."""
        report = CatchUpReport()
        if self.hours <= 0:
            return report
        guilds = [g for g in self.client.guilds if shard_id is None or g.shard_id == shard_id]
        try:
            candidates = await self._candidates(guilds)
        except (StoreError, OSError) as exc:
            log.error("cannot catch up after the restart: the store did not answer: %s", exc)
            candidates = []
        for info in candidates:
            self._threads.setdefault(info.thread_id, asyncio.Event())
        self._shard(shard_id).set()  # the other threads' live messages may go on now
        try:
            for info in candidates:
                try:
                    await self._thread(info, report)
                except (discord.HTTPException, StoreError, OSError, KeyError) as exc:
                    report.failed += 1
                    log.warning("could not catch up thread %s: %s", info.thread_id, exc)
                finally:
                    self._release(info.thread_id)
        finally:
            for info in candidates:
                self._release(info.thread_id)
        if report.threads or report.failed:
            log.info("%s", report.line())
        return report

    def _release(self, thread_id: str) -> None:
        event = self._threads.pop(thread_id, None)
        if event is not None:
            event.set()

    async def _candidates(self, guilds: Iterable[discord.Guild]) -> list[ConversationInfo]:
        since = discord.utils.utcnow() - timedelta(hours=self.hours)
        found: list[ConversationInfo] = []
        for guild in guilds:
            infos = await self.manager.store.conversation_infos(str(guild.id))
            found += [i for i in infos if not i.ended and i.updated_at >= since]
        return sorted(found, key=lambda i: i.updated_at)

    async def _thread(self, info: ConversationInfo, report: CatchUpReport) -> None:
        conversation = await self.manager.get_or_resume(info.thread_id)
        if conversation is None or conversation.ended:
            return
        thread = await self._channel(int(info.thread_id))
        if thread is None:
            return
        recorded = [
            (int(m.message_id), m)
            for m in conversation.history
            if m.message_id is not None and m.message_id.isdigit()
        ]
        if not recorded:
            return
        newest = max(i for i, _ in recorded)
        recent = sorted(recorded, key=lambda pair: pair[0])[-RECENT:]
        floor = recent[0][0]
        me = self.client.user
        seen: set[int] = set()
        wanting: discord.Message | None = None  # the newest message that wants an answer
        answered = False
        report.threads += 1
        after = discord.Object(id=floor - 1)
        async for message in thread.history(limit=None, after=after, oldest_first=True):
            seen.add(message.id)
            if me is not None and message.author.id == me.id:
                answered = answered or (wanting is not None and message.id > wanting.id)
                continue
            if message.author.bot or message.webhook_id is not None:
                continue
            if message.type not in HUMAN_MESSAGE_TYPES:
                continue
            if message.id <= newest:
                await self._edited(info.thread_id, message, conversation, report)
                continue
            if not await self.record(message, info.thread_id):
                continue
            report.recorded += 1
            mentioned = me is not None and me.id in message.raw_mentions
            if self.should_answer(message, conversation, mentioned):
                wanting, answered = message, False
        for message_id, message in recent:
            # The thread's starter message lives in the parent channel, not in the thread.
            gone = message_id not in seen and str(message_id) != info.thread_id
            if (
                gone
                and message.requester is not None
                and await self.manager.delete_message(info.thread_id, str(message_id))
            ):
                report.deleted += 1
        if wanting is not None and not answered:
            self.schedule(wanting, thread.id, thread)
            report.answered += 1

    async def _edited(
        self,
        thread_id: str,
        message: discord.Message,
        conversation: Conversation,
        report: CatchUpReport,
    ) -> None:
        if message.edited_at is None or not conversation.has_message_id(str(message.id)):
            return
        if await self.manager.edit_message(
            thread_id, str(message.id), message.clean_content, edited_at=message.edited_at
        ):
            report.edited += 1

    async def _channel(self, channel_id: int) -> discord.Thread | None:
        channel = self.client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(channel_id)
            except discord.NotFound:
                return None  # the thread was deleted meanwhile
        return channel if isinstance(channel, discord.Thread) else None
