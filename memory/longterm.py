"""Long-term memory: turn ended conversations into memory records, as a batch job.

A trigger (a command, the CLI, a timer) collects every eligible conversation into one batch
message on a queue; a worker takes it, distils each conversation on its own (one failure is
logged and the batch goes on) and upserts its memory. The queue is in-process here, behind a
small interface, so that a Redis Stream can take its place for several processes.

A conversation is eligible when it has been idle for longer than the inactivity threshold,
is not active in memory, and has no memory yet or has changed since its memory was made.
Finding them reads only conversation headers, never full histories.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from .manager import InMemoryConversationManager
from .memories import Fact, MemoryData, MemoryRecord
from .models import Conversation, Message, MessageType, utcnow
from .store.base import ConversationInfo, StoreError
from .summarizer import extractive_summary, sentences, words

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INACTIVITY_SECONDS",
    "BatchReport",
    "Distiller",
    "ExtractiveDistiller",
    "InProcessMemoryQueue",
    "MemoryBatch",
    "MemoryQueue",
    "MemoryService",
    "eligible",
    "extractive_memory",
]

DEFAULT_INACTIVITY_SECONDS = 7200.0

_DECISION = re.compile(
    r"\b(decided|decide|agreed|agree|let's|lets|we'll|we will|going to|settled|chose|choose"
    r"|plan(?:ned)? to)\b",
    re.I,
)
_ACTION = re.compile(
    r"\b(todo|to-do|need to|needs to|have to|has to|will|remind|don't forget|must|should)\b", re.I
)


class Distiller(Protocol):
    """Turns one conversation into memory content (a model, or the extractive fallback)."""

    name: str

    async def distil(self, conversation: Conversation) -> MemoryData: ...


def _source_messages(conversation: Conversation) -> list[Message]:
    """What memories are made from: what people said and what tools returned, never thinking."""
    return [
        m
        for m in conversation.history
        if (m.message_type is MessageType.CHAT and m.requester is not None)
        or m.message_type is MessageType.TOOL_CALL_RESPONSE
    ]


def extractive_memory(conversation: Conversation, *, max_facts: int = 12) -> MemoryData:
    """A memory without a model: salient sentences, keyword topics, cue-word decisions."""
    sources = _source_messages(conversation)
    names = conversation.author_names()
    summary = extractive_summary(sources, names, max_chars=600)
    counts = Counter(
        w for m in sources for w in set(words(m.message_content)) if not w.isdigit() and len(w) > 2
    )
    topics = [w for w, n in counts.most_common(8) if n > 1] or [w for w, _ in counts.most_common(5)]
    frequent = {w for w, n in counts.most_common(40)}

    scored: list[tuple[float, int, Fact]] = []
    decisions: list[str] = []
    actions: list[str] = []
    questions: list[str] = []
    order = itertools.count()
    for message in sources:
        about = message.requester if message.message_type is MessageType.CHAT else None
        for sentence in sentences(message.message_content):
            found = words(sentence)
            if len(found) < 2:
                continue
            text = sentence if len(sentence) <= 300 else sentence[:297] + "…"
            hits = sum(1 for w in found if w in frequent)
            ids = [message.message_id] if message.message_id else []
            scored.append(
                (
                    hits * hits / len(found),
                    next(order),
                    Fact(text=text, about=about, source_message_ids=ids),
                )
            )
            if message.message_type is MessageType.CHAT:
                if text.endswith("?"):
                    questions.append(text)
                elif _DECISION.search(text):
                    decisions.append(text)
                elif _ACTION.search(text):
                    actions.append(text)
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:max_facts]
    facts = [fact for _, _, fact in sorted(best, key=lambda item: item[1])]
    return MemoryData(
        summary=summary,
        topics=topics,
        facts=facts,
        decisions=decisions[:6],
        action_items=actions[:6],
        open_questions=questions[-5:],
    )


class ExtractiveDistiller:
    """The offline distiller: works with no model at all."""

    name = "extractive"

    async def distil(self, conversation: Conversation) -> MemoryData:
        return extractive_memory(conversation)


def eligible(
    infos: Iterable[ConversationInfo],
    memories: dict[str, MemoryRecord],
    *,
    now: datetime,
    inactivity: float,
    active: set[str],
) -> list[ConversationInfo]:
    """Conversations idle past ``inactivity`` whose memory is missing or older than them."""
    cutoff = now - timedelta(seconds=inactivity)
    found: list[ConversationInfo] = []
    for info in infos:
        if info.thread_id in active or info.updated_at > cutoff:
            continue
        memory = memories.get(info.thread_id)
        if memory is None or memory.is_stale(info.updated_at):
            found.append(info)
    return found


@dataclass(frozen=True, slots=True)
class MemoryBatch:
    """One queue message: the conversations a trigger found eligible."""

    batch_id: str
    conversations: tuple[tuple[str, str], ...]  # (guild_id, thread_id)
    created_at: datetime = field(default_factory=utcnow)


@dataclass
class BatchReport:
    eligible: int = 0
    generated: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (thread_id, cause)

    def line(self) -> str:
        return f"{self.eligible} eligible, {self.generated} generated, {self.failed} failed"


class MemoryQueue(ABC):
    """Where batches wait for a worker (in-process here; a Redis Stream for several processes)."""

    @abstractmethod
    async def put(self, batch: MemoryBatch) -> None: ...

    @abstractmethod
    async def get(self) -> MemoryBatch: ...

    @abstractmethod
    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None: ...

    @abstractmethod
    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        """The report of a batch once a worker has processed it."""


class InProcessMemoryQueue(MemoryQueue):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[MemoryBatch] = asyncio.Queue()
        self._reports: dict[str, asyncio.Future[BatchReport]] = {}

    def _future(self, batch: MemoryBatch) -> asyncio.Future[BatchReport]:
        future = self._reports.get(batch.batch_id)
        if future is None:
            future = self._reports[batch.batch_id] = asyncio.get_running_loop().create_future()
        return future

    async def put(self, batch: MemoryBatch) -> None:
        self._future(batch)
        await self._queue.put(batch)

    async def get(self) -> MemoryBatch:
        return await self._queue.get()

    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None:
        future = self._future(batch)
        if not future.done():
            future.set_result(report)
        self._queue.task_done()

    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        try:
            return await asyncio.shield(self._future(batch))
        finally:
            if self._future(batch).done():
                self._reports.pop(batch.batch_id, None)


Progress = Callable[[int, int], None]
Upserted = Callable[[Conversation, MemoryRecord], Awaitable[None] | None]


class MemoryService:
    """Finds eligible conversations, queues them as one batch, and processes batches."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        distiller: Distiller,
        *,
        inactivity: float = DEFAULT_INACTIVITY_SECONDS,
        queue: MemoryQueue | None = None,
    ) -> None:
        self.manager = manager
        self.store = manager.store
        self.distiller = distiller
        self.inactivity = inactivity
        self.queue = queue or InProcessMemoryQueue()
        self.listeners: list[Upserted] = []
        self._ids = itertools.count(1)

    async def find_eligible(self, guild_id: str | None = None) -> list[ConversationInfo]:
        infos = await self.store.conversation_infos(guild_id)
        memories: dict[str, MemoryRecord] = {}
        for guild in sorted({i.guild_id for i in infos}):
            for record in await self.store.list_memories(guild):
                memories[record.thread_id] = record
        active = {c.thread_id for c in self.manager.get_all_conversations()}
        return eligible(infos, memories, now=utcnow(), inactivity=self.inactivity, active=active)

    async def enqueue(self, guild_id: str | None = None) -> MemoryBatch:
        """The trigger: one batch message holding every eligible conversation."""
        found = await self.find_eligible(guild_id)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        batch = MemoryBatch(
            batch_id=f"{stamp}-{next(self._ids)}",
            conversations=tuple((i.guild_id, i.thread_id) for i in found),
        )
        await self.queue.put(batch)
        log.info("memory batch %s: %d conversation(s) queued", batch.batch_id, len(found))
        return batch

    async def generate(
        self, guild_id: str | None = None, progress: Progress | None = None
    ) -> BatchReport:
        """Queue a batch and process it here; for callers that want the counts back now."""
        batch = await self.enqueue(guild_id)
        taken = await self.queue.get()
        report = await self.process(taken, progress)
        await self.queue.ack(taken, report)
        if taken.batch_id != batch.batch_id:  # another trigger's batch was first in line
            return await self.queue.wait_for(batch)
        return report

    async def work(self, progress: Progress | None = None) -> None:
        """A worker: process batches as they come, until cancelled."""
        while True:
            batch = await self.queue.get()
            report = await self.process(batch, progress)
            await self.queue.ack(batch, report)

    async def process(self, batch: MemoryBatch, progress: Progress | None = None) -> BatchReport:
        report = BatchReport(eligible=len(batch.conversations))
        for done, (guild_id, thread_id) in enumerate(batch.conversations, start=1):
            try:
                await self.upsert(guild_id, thread_id)
                report.generated += 1
            except Exception as exc:
                # One conversation's failure never stops the batch.
                report.failed += 1
                report.failures.append((thread_id, str(exc) or type(exc).__name__))
                log.warning("memory of conversation %s failed: %s", thread_id, exc)
            if progress is not None:
                progress(done, report.eligible)
        log.info("memory batch %s: %s", batch.batch_id, report.line())
        return report

    async def upsert(self, guild_id: str, thread_id: str) -> MemoryRecord:
        """(Re)make the memory of one conversation and store it."""
        conversation = await self.store.load(thread_id)
        if conversation is None or conversation.guild_id != guild_id:
            raise StoreError(f"conversation {thread_id} is gone or unreadable")
        data = await self.distiller.distil(conversation)
        generator = self.distiller.name
        previous = await self.store.load_memory(guild_id, thread_id)
        now = utcnow()
        record = MemoryRecord(
            thread_id=thread_id,
            guild_id=guild_id,
            requester=conversation.requester,
            participants=list(conversation.participants),
            memory_data=data,
            created_at=previous.created_at if previous else now,
            updated_at=now,
            source_updated_at=conversation.updated_at,
            conversation_created_at=conversation.created_at,
            generator=generator,
        )
        await self.store.save_memory(record)
        for listener in self.listeners:
            result = listener(conversation, record)
            if asyncio.iscoroutine(result):
                await result
        return record
