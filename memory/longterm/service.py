"""Long-term memory: turn ended conversations into memory records, as a batch job.

A trigger (a command, the CLI, a timer) collects every eligible conversation into one batch
message on a queue; a worker takes it, distils each conversation on its own (one failure is
logged and the batch goes on) and upserts its memory. The queue is in-process here, behind a
small interface; ``memory.stores.redis.queue`` puts it on a Redis Stream for several
processes, where a batch a stopped worker left is taken over by another. Processing is
idempotent for that: a conversation whose memory is already up to date is skipped, never
distilled again.

A conversation is eligible when it has been idle for longer than the inactivity threshold,
is not active in memory, and has no memory yet or has changed since its memory was made.
Finding them reads only conversation headers, never full histories.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self

from memory.longterm.summarizer import extractive_summary, sentences, words
from memory.recall.temporal import TIME_MARK, time_words
from memory.recording.manager import InMemoryConversationManager
from memory.records.memories import Fact, MemoryData, MemoryRecord
from memory.records.models import Conversation, Message, MessageType, utcnow
from memory.stores.base import ConversationInfo, StoreError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_INACTIVITY_SECONDS",
    "BatchLease",
    "BatchLostError",
    "BatchReport",
    "Distiller",
    "ExtractiveDistiller",
    "InProcessMemoryQueue",
    "MemoryBatch",
    "MemoryQueue",
    "MemoryService",
    "eligible",
    "extractive_memory",
    "stop_task",
]

DEFAULT_INACTIVITY_SECONDS = 7200.0
_DATED_BONUS = 1
_MIN_FACTS = 12
_MAX_FACTS = 40

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


def extractive_memory(conversation: Conversation, *, max_facts: int | None = None) -> MemoryData:
    """A memory without a model: salient sentences, keyword topics, cue-word decisions.

    A long conversation holds more to remember: by default it keeps a fact for every two
    messages, 12 at least and 40 at most.
    """
    sources = _source_messages(conversation)
    if max_facts is None:
        max_facts = max(_MIN_FACTS, min(_MAX_FACTS, len(sources) // 2))
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
            # "yesterday" means a day only beside the day it was said: the fact says which.
            dated = time_words(sentence, message.created_at).replace(TIME_MARK, "").strip()
            if dated:
                text = f"{text} ({dated})"
                hits += _DATED_BONUS
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

    def to_json(self) -> str:
        return json.dumps(
            {
                "batch_id": self.batch_id,
                "conversations": [list(pair) for pair in self.conversations],
                "created_at": self.created_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> MemoryBatch:
        data = json.loads(text)
        return cls(
            batch_id=str(data["batch_id"]),
            conversations=tuple((str(g), str(t)) for g, t in data["conversations"]),
            created_at=datetime.fromisoformat(data["created_at"]),
        )


@dataclass
class BatchReport:
    eligible: int = 0
    generated: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (thread_id, cause)
    # Memories already up to date when their turn came (made by a worker that stopped
    # mid-batch, or by another batch), or being made by another worker at that moment.
    skipped: int = 0

    def line(self) -> str:
        # "skipped" only when there were some, so the usual one-process line stays as it was.
        skipped = f", {self.skipped} skipped (already up to date)" if self.skipped else ""
        made = f"{self.eligible} eligible, {self.generated} generated"
        return f"{made}{skipped}, {self.failed} failed"

    def to_json(self) -> str:
        return json.dumps(
            {
                "eligible": self.eligible,
                "generated": self.generated,
                "skipped": self.skipped,
                "failed": self.failed,
                "failures": [list(pair) for pair in self.failures],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> BatchReport:
        data = json.loads(text)
        return cls(
            eligible=int(data.get("eligible", 0)),
            generated=int(data.get("generated", 0)),
            skipped=int(data.get("skipped", 0)),
            failed=int(data.get("failed", 0)),
            failures=[(str(t), str(c)) for t, c in data.get("failures", [])],
        )


async def stop_task(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has stopped.

    Unlike ``task.cancel(); with suppress(CancelledError): await task``, this never swallows
    a cancellation of the caller itself (a worker told to stop just then keeps stopping).
    """
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: an error of a task stopped on purpose is no news


class BatchLostError(Exception):
    """Another worker took this batch over (this one stalled past the claim timeout)."""


class BatchLease:
    """A worker's hold on a batch and on the conversation it is making a memory of.

    Two runs must never make one conversation's memory at the same time (two batches can hold
    the same conversation when a trigger fires before the last batch was done). This lease
    keeps that true within one process; the Redis queue's lease keeps it true across
    processes, and also keeps the batch from being taken over while it is being worked on.
    """

    def __init__(self, busy: set[str] | None = None) -> None:
        self._busy = busy if busy is not None else set()
        self._held: set[str] = set()

    @property
    def lost(self) -> bool:
        """True once another worker took the batch over: stop, and do not acknowledge it."""
        return False

    async def hold(self, guild_id: str, thread_id: str) -> bool:
        """Take the conversation for this run; False if another run is making its memory."""
        if thread_id in self._busy:
            return False
        self._busy.add(thread_id)
        self._held.add(thread_id)
        return True

    async def holds(self, guild_id: str, thread_id: str) -> bool:
        """Whether the conversation is still this run's: checked again just before saving."""
        return thread_id in self._held and not self.lost

    async def release(self, guild_id: str, thread_id: str) -> None:
        if thread_id in self._held:
            self._held.discard(thread_id)
            self._busy.discard(thread_id)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for thread_id in list(self._held):
            await self.release("", thread_id)


class MemoryQueue(ABC):
    """Where batches wait for a worker (in-process here; a Redis Stream for several processes)."""

    #: Batches put here are processed by other processes (``python -m bot worker``), so a
    #: scheduled trigger only enqueues.
    shared: bool = False

    @property
    def poll_seconds(self) -> float:
        """How long ``poll`` waits at a time where a caller also watches for something else."""
        return 1.0

    @abstractmethod
    async def put(self, batch: MemoryBatch) -> None: ...

    @abstractmethod
    async def poll(self, wait: float) -> MemoryBatch | None:
        """The next batch for this worker, or None if none came within ``wait`` seconds
        (0: only one that is ready now)."""

    async def get(self) -> MemoryBatch:
        """The next batch, waiting as long as it takes."""
        while True:
            batch = await self.poll(self.poll_seconds)
            if batch is not None:
                return batch

    @abstractmethod
    async def ack(self, batch: MemoryBatch, report: BatchReport) -> None: ...

    @abstractmethod
    async def wait_for(self, batch: MemoryBatch) -> BatchReport:
        """The report of a batch once a worker has processed it."""

    def lease(self, batch: MemoryBatch) -> BatchLease:
        """Hold ``batch`` while processing it (``async with``)."""
        return BatchLease()

    async def claim_trigger(self, interval: float) -> bool:
        """Whether this process runs the scheduled trigger now (one of several processes)."""
        return True

    async def backlog(self) -> int:
        """Batches put and not yet acknowledged."""
        return 0

    async def close(self) -> None:  # noqa: B027 - nothing to let go of unless shared
        """Let go of what the queue holds for this process."""


class InProcessMemoryQueue(MemoryQueue):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[MemoryBatch] = asyncio.Queue()
        self._reports: dict[str, asyncio.Future[BatchReport]] = {}
        self._busy: set[str] = set()

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

    async def poll(self, wait: float) -> MemoryBatch | None:
        if wait <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), wait)
        except TimeoutError:
            return None

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

    def lease(self, batch: MemoryBatch) -> BatchLease:
        return BatchLease(self._busy)

    async def backlog(self) -> int:
        return self._queue.qsize()


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

    async def find_eligible(
        self, guild_id: str | None = None, *, inactivity: float | None = None
    ) -> list[ConversationInfo]:
        """The conversations a run would distil now; ``inactivity`` overrides the threshold
        (0: every conversation without an up-to-date memory, however recent)."""
        infos = await self.store.conversation_infos(guild_id)
        memories: dict[str, MemoryRecord] = {}
        for guild in sorted({i.guild_id for i in infos}):
            for record in await self.store.list_memories(guild):
                memories[record.thread_id] = record
        active = {c.thread_id for c in self.manager.get_all_conversations()}
        idle = self.inactivity if inactivity is None else inactivity
        return eligible(infos, memories, now=utcnow(), inactivity=idle, active=active)

    async def enqueue(self, guild_id: str | None = None) -> MemoryBatch:
        """The trigger: one batch message holding every eligible conversation."""
        return await self._put(await self.find_eligible(guild_id))

    async def _put(self, found: list[ConversationInfo]) -> MemoryBatch:
        # Unique across processes: batches of several bots and CLIs share one Redis queue.
        stamp = utcnow().strftime("%Y%m%dT%H%M%S")
        batch = MemoryBatch(
            batch_id=f"{stamp}-{uuid.uuid4().hex[:8]}",
            conversations=tuple((i.guild_id, i.thread_id) for i in found),
        )
        await self.queue.put(batch)
        log.info("memory batch %s: %d conversation(s) queued", batch.batch_id, len(found))
        return batch

    async def generate(
        self, guild_id: str | None = None, progress: Progress | None = None
    ) -> BatchReport:
        """Queue a batch and process it here; for callers that want the counts back now.

        Works with no worker running. Batches queued before this one are processed here too
        on the way (a queue hands them out in order); a worker that takes this one first
        does it instead, and its report is the answer.
        """
        batch = await self.enqueue(guild_id)
        waiting = asyncio.ensure_future(self.queue.wait_for(batch))
        try:
            while not waiting.done():
                taken = await self.queue.poll(self.queue.poll_seconds)
                if taken is None:
                    continue
                mine = taken.batch_id == batch.batch_id
                report = await self.handle(taken, progress if mine else None)
                if mine and report is not None:
                    return report
            return waiting.result()
        finally:
            await stop_task(waiting)

    async def scheduled(self, interval: float) -> str | None:
        """One tick of the automatic trigger: what happened, for the log, or None if nothing.

        Of several processes sharing a queue, one per ``interval`` triggers, and only
        enqueues: the workers process. A queue of one process's own is processed right here.
        """
        if not await self.queue.claim_trigger(interval):
            return None
        if not self.queue.shared:
            report = await self.generate()
            return report.line() if report.eligible else None
        found = await self.find_eligible()
        if not found:
            return None
        batch = await self._put(found)
        line = f"{len(found)} conversation(s) queued for the memory workers ({batch.batch_id})"
        waiting = await self.queue.backlog()
        if waiting > 1:
            line += f"; {waiting} batches wait: is a 'python -m bot worker' running?"
        return line

    async def work(self, progress: Progress | None = None, *, once: bool = False) -> int:
        """A worker: process batches as they come, until cancelled.

        ``once``: only the batches ready now (new ones, and ones a stopped worker left past
        the claim timeout), then return. Returns how many batches were processed.
        """
        handled = 0
        while True:
            batch = await (self.queue.poll(0) if once else self.queue.get())
            if batch is None:
                return handled
            try:
                await self.handle(batch, progress)
            except Exception:
                # Not acknowledged: the batch waits in the queue for a worker to take it up
                # again (in a shared queue: this one or another, after the claim timeout).
                log.exception("memory batch %s stopped; it stays queued", batch.batch_id)
                if once:
                    raise
            handled += 1

    async def handle(
        self, batch: MemoryBatch, progress: Progress | None = None
    ) -> BatchReport | None:
        """Process one batch taken from the queue and acknowledge it; None if it was lost."""
        async with self.queue.lease(batch) as lease:
            try:
                report = await self.process(batch, progress, lease=lease)
            except BatchLostError:
                log.warning(
                    "memory batch %s: another worker took it over; leaving it to them",
                    batch.batch_id,
                )
                return None
            await self.queue.ack(batch, report)
        return report

    async def process(
        self,
        batch: MemoryBatch,
        progress: Progress | None = None,
        *,
        lease: BatchLease | None = None,
    ) -> BatchReport:
        lease = lease if lease is not None else BatchLease()
        report = BatchReport(eligible=len(batch.conversations))
        for done, (guild_id, thread_id) in enumerate(batch.conversations, start=1):
            if lease.lost:
                raise BatchLostError(batch.batch_id)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Told to stop, though a client library swallowed the cancellation
                # (redis-py#2028 does, in blocking reads): stop before the next one.
                raise asyncio.CancelledError
            if not await lease.hold(guild_id, thread_id):
                report.skipped += 1
                log.info("memory of conversation %s: being made by another run", thread_id)
            else:
                try:
                    made = await self.upsert(guild_id, thread_id, lease=lease)
                    if made is None:
                        report.skipped += 1
                    else:
                        report.generated += 1
                except BatchLostError:
                    raise
                except Exception as exc:
                    # One conversation's failure never stops the batch.
                    report.failed += 1
                    report.failures.append((thread_id, str(exc) or type(exc).__name__))
                    log.warning("memory of conversation %s failed: %s", thread_id, exc)
                finally:
                    await lease.release(guild_id, thread_id)
            if progress is not None:
                progress(done, report.eligible)
        log.info("memory batch %s: %s", batch.batch_id, report.line())
        return report

    async def upsert(
        self,
        guild_id: str,
        thread_id: str,
        *,
        force: bool = False,
        lease: BatchLease | None = None,
    ) -> MemoryRecord | None:
        """(Re)make the memory of one conversation and store it.

        None, without asking the distiller, when the memory is already up to date (unless
        ``force``): a batch taken over from a worker that stopped mid-way holds
        conversations that worker finished, and none is made twice.
        """
        conversation = await self.store.load(thread_id)
        if conversation is None or conversation.guild_id != guild_id:
            raise StoreError(f"conversation {thread_id} is gone or unreadable")
        previous = await self.store.load_memory(guild_id, thread_id)
        if previous is not None and not force and not previous.is_stale(conversation.updated_at):
            return None
        data = await self.distiller.distil(conversation)
        if lease is not None and not await lease.holds(guild_id, thread_id):
            # This worker stalled and another took the conversation over: its memory is theirs.
            raise BatchLostError(f"conversation {thread_id} was taken over")
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
            generator=self.distiller.name,
        )
        await self.store.save_memory(record)
        for listener in self.listeners:
            result = listener(conversation, record)
            if asyncio.iscoroutine(result):
                await result
        return record
