"""Recalled notes: the guild's memories of earlier conversations, recalled once when a
conversation starts (or after its state was dropped) and put into the system prompt; and the
guild-bound search the tools get.

The notes are per-thread state, kept in the thread's ``ThreadState``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.agent.state import ThreadStates
from memory import Conversation, InMemoryConversationManager, StoreError
from memory.recall.service import RecallService

log = logging.getLogger(__name__)

__all__ = ["RecalledNotes", "Search"]

Search = Callable[[str, int], Awaitable[list[Any]]]
"""A search of one guild's memories: (query, limit) -> hits."""


class RecalledNotes:
    """Finds the memories worth having in a conversation's context, in its guild only."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        recall: RecallService | None,
        states: ThreadStates,
        *,
        max_context_tokens: int,
    ) -> None:
        self.manager = manager
        self.recall = recall
        self.states = states
        self.max_context_tokens = max_context_tokens

    def searcher(self, conversation: Conversation) -> Search | None:
        """A search bound to this conversation's guild: a tool can never reach another."""
        recall = self.recall
        if recall is None:
            return None
        guild_id = conversation.guild_id

        async def search(query: str, limit: int) -> list[Any]:
            return await recall.search(guild_id, query, limit)

        return search

    async def remember(self, conversation: Conversation) -> None:
        """When a conversation starts, find the guild's memories worth having in context."""
        thread_id = conversation.thread_id
        state = self.states.of(conversation)
        if self.recall is None or state.notes is not None:
            return
        state.notes = ""
        question = next(
            (m.message_content for m in reversed(conversation.history) if m.requester), ""
        )
        try:
            hits = await self.recall.search(conversation.guild_id, question, 4) if question else []
            records = await self.manager.store.list_memories(conversation.guild_id)
        except StoreError as exc:  # the store is away: answer without memories, one line
            log.warning("thread %s: answering without memories: %s", thread_id, exc)
            return
        except Exception:
            log.exception("recalling memories for thread %s failed", thread_id)
            return
        by_thread = {r.thread_id: r for r in records}
        chosen = [h.thread_id for h in hits if h.thread_id != thread_id][:3]
        theirs = sorted(
            (
                r
                for r in records
                if conversation.requester in r.participants and r.thread_id != thread_id
            ),
            key=lambda r: r.conversation_created_at or r.created_at,
            reverse=True,
        )
        chosen += [r.thread_id for r in theirs[:2] if r.thread_id not in chosen]
        budget = self.max_context_tokens * 4 // 8  # an eighth of the window, in characters
        lines: list[str] = []
        for other in chosen:
            record = by_thread.get(other)
            hit = next((h for h in hits if h.thread_id == other), None)
            line = memory_line(record, hit)
            if line and sum(len(x) for x in lines) + len(line) <= budget:
                lines.append(line)
        state.notes = "\n".join(lines)
        if lines:
            log.info("thread %s: %d memories of this server put in context", thread_id, len(lines))


def memory_line(record: Any, hit: Any) -> str:
    """One memory as the model reads it: when, what, and the facts that matter."""
    if record is not None:
        when = (record.conversation_created_at or record.created_at).strftime("%Y-%m-%d")
        data = record.memory_data
        text = " ".join(data.summary.split())[:500]
        # An offline memory's summary is made of the conversation's sentences, as its facts
        # are: a fact it already says would only take the room of one it does not.
        facts = "; ".join([f.text for f in data.facts if f.text not in data.summary][:4])
        return f"- conversation of {when}: {text}" + (f" Facts: {facts[:400]}" if facts else "")
    if hit is not None:
        text = " ".join((hit.summary or hit.snippet or "").split())[:400]
        return f"- conversation of {(hit.created_at or '')[:10]}: {text}" if text else ""
    return ""
