"""Everything Echo runs on, built in the order it must be torn down.

``echo_core`` builds what answers and remembers (model, store, manager, agent, memory
service); ``echo_app`` puts the Discord client on top. The entry point, the terminal chat,
the CLI and the end-to-end tests all build through here, so a test exercises the same
wiring as ``python -m bot``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.agent import Agent
from bot.config import Settings
from bot.discord.client import EchoBot
from bot.discord.endpoints import apply_discord_endpoints
from bot.llm import ChatProvider, make_provider
from bot.llm.distiller import ModelDistiller
from bot.stores import describe_store, make_store
from bot.tools import default_tools
from memory import ConversationStore, InMemoryConversationManager
from memory.longterm import ExtractiveDistiller, MemoryQueue, MemoryService
from memory.recall import RecallIndex, RecallService
from memory.recall.semantic import SemanticReranker, make_searcher
from memory.stores import QueueHost

log = logging.getLogger(__name__)

__all__ = ["EchoCore", "echo_app", "echo_core"]


@dataclass(frozen=True)
class EchoCore:
    provider: ChatProvider
    manager: InMemoryConversationManager
    agent: Agent
    memories: MemoryService
    recall: RecallService


@asynccontextmanager
async def echo_core(
    settings: Settings,
    *,
    read_only: bool = False,
    spool: bool = True,
    wait_for_redis: float | None = None,
) -> AsyncIterator[EchoCore]:
    """The model, the store and what records through it; on exit: saved, then closed.

    Opening the store replays the journal of a crashed run before anything else happens.
    ``read_only`` opens the data folder without its lock, for tools that only read (on
    Redis: without a spool, and giving up if Redis does not answer within a few seconds).
    On Redis, ``spool=False`` suits a process that records no conversations (a memory
    worker, the CLI) and so can run beside a bot on the same data folder; ``wait_for_redis``
    bounds how long opening waits for an unreachable Redis (None: until it answers).
    """
    provider = make_provider(
        settings.llm_provider,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key,
        model=settings.llm_model,
        timeout=settings.llm_timeout_seconds,
        reasoning_open=settings.llm_reasoning_open,
    )
    try:
        store = make_store(
            settings,
            read_only=read_only,
            spool=spool,
            wait_for_redis=_READER_WAIT if read_only and wait_for_redis is None else wait_for_redis,
        )
        async with (
            InMemoryConversationManager(store=store, idle_time=settings.idle_seconds) as manager,
            _recall(settings, manager, read_only) as recall,
        ):
            log.info(
                "conversations: %s (%d stored, journal fsync %s)",
                describe_store(settings),
                len(await store.list_conversations()),
                settings.journal_fsync.value,
            )
            agent = Agent(
                manager,
                provider,
                default_tools(),
                system_prompt=settings.system_prompt,
                max_context_tokens=settings.max_context_tokens,
                max_tool_rounds=settings.max_tool_rounds,
                recall=recall,
                max_reply_seconds=settings.max_reply_seconds,
                max_reply_chars=settings.max_reply_chars,
            )
            distiller = ExtractiveDistiller() if provider.offline else ModelDistiller(provider)
            memories = MemoryService(
                manager,
                distiller,
                inactivity=settings.memory_inactivity_seconds,
                queue=_memory_queue(store),
            )
            if not read_only:
                memories.listeners.append(recall.on_memory)
            try:
                yield EchoCore(provider, manager, agent, memories, recall)
            finally:
                # Before the store closes: a Redis queue leaves its consumer group.
                try:
                    await memories.queue.close()
                except Exception as exc:
                    log.warning("closing the memory queue failed: %s", exc)
    finally:
        await provider.aclose()


_READER_WAIT = 5.0
"""Seconds a read-only tool (the CLI) waits for an unreachable Redis before giving up."""


def _memory_queue(store: ConversationStore) -> MemoryQueue | None:
    """Batches go through the store's own queue when it has one (Redis: a Stream that workers
    elsewhere share); otherwise the memory service keeps them in this process."""
    return store.memory_queue() if isinstance(store, QueueHost) else None


@asynccontextmanager
async def _recall(
    settings: Settings, manager: InMemoryConversationManager, read_only: bool
) -> AsyncIterator[RecallService]:
    """The recall index beside the store; a writer keeps it current, a reader only reads."""
    index = RecallIndex.in_data_dir(settings.data_dir)
    await asyncio.to_thread(index.open)
    recall = RecallService(index, manager, make_searcher(settings.recall_reranker, index))
    if not read_only:
        recall.attach()
    try:
        yield recall
    finally:
        if not read_only:
            try:  # the manager's own final save comes after this; index what it would save
                await manager.save_all_conversations()
            except Exception:
                log.exception("saving before closing the recall index failed")
        await recall.close()
        await asyncio.to_thread(index.close)


@asynccontextmanager
async def echo_app(
    settings: Settings, *, read_only: bool = False, **bot_options: Any
) -> AsyncIterator[EchoBot]:
    """A ready-to-start ``EchoBot``; on exit: client closed, conversations saved, model closed."""
    apply_discord_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    async with echo_core(settings, read_only=read_only) as core:
        if isinstance(core.recall.searcher, SemanticReranker):
            # Before Discord: loading takes seconds, better spent now than at a first question.
            started = time.perf_counter()
            await asyncio.to_thread(core.recall.searcher.load)
            log.info("recall: semantic re-ranker loaded in %.1f s", time.perf_counter() - started)
        if core.provider.offline:
            log.warning(
                "LLM_PROVIDER=echo: answering with the offline echo model, which repeats what "
                "it is told. Set LLM_MODEL (and LLM_BASE_URL for a local server such as Ollama; "
                "see .env.example) for real answers."
            )
        else:
            log.info("model: %s at %s", core.provider.model, settings.llm_base_url or "OpenAI")
        bot = EchoBot(
            settings=settings,
            manager=core.manager,
            agent=core.agent,
            memories=core.memories,
            **bot_options,
        )
        async with bot:
            yield bot
