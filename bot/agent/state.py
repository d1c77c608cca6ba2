"""What the reply agent keeps about a conversation between replies, and for how long.

The agent remembers, per thread, the memory notes it put into the system prompt and which
messages it already folded into the rolling summary. Both are made from what people said,
so they must not outlive the conversation in memory (an evicted conversation's state is
garbage that holds text), nor survive a forget (the notes would carry the forgotten
person's facts into every later request of the thread). One object per thread holds it all,
kept by a registry that listens to the manager: it is dropped when the conversation leaves
memory (idle eviction, removal, deletion) or ends, and for a whole guild after a forget
there, so the next reply rebuilds it from what is left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from memory import Conversation, ConversationEvent, InMemoryConversationManager

log = logging.getLogger(__name__)

__all__ = ["ThreadState", "ThreadStates"]

# Events after which a thread's state must go: it left memory, or it ended.
_RELEASING = frozenset({"idle", "removed", "deleted", "ended"})


@dataclass(slots=True)
class ThreadState:
    """The agent's per-thread memory, rebuilt whenever it is dropped."""

    guild_id: str
    notes: str | None = None
    """The guild's memories put into the system prompt; None until recalled."""
    folded: set[tuple[Any, ...]] | None = None
    """Keys of the messages already folded into the rolling summary; None: none known.

    By identity, not by time: Echo's answer is placed right after the question it answered,
    so a message sent while it was being written leaves the window after an answer stamped
    later than itself. After a restart (or a drop) the summary is taken to cover what
    precedes the window, which at worst leaves a gap, never a message summarised twice."""


class ThreadStates:
    """Per-thread agent state, held exactly while the manager holds the conversation."""

    def __init__(self, manager: InMemoryConversationManager) -> None:
        self.manager = manager
        self._states: dict[str, ThreadState] = {}
        manager.add_listener(self.on_conversation)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, thread_id: object) -> bool:
        return thread_id in self._states

    def of(self, conversation: Conversation) -> ThreadState:
        """The state of this conversation, made if need be.

        Kept only while this very conversation is the one the manager holds: for one that
        was evicted or deleted meanwhile (a reply still running), a state is made for the
        caller alone, so nothing is left behind for a conversation no longer in memory.
        """
        thread_id = conversation.thread_id
        state = self._states.get(thread_id)
        if state is not None:
            return state
        state = ThreadState(conversation.guild_id)
        if self.manager.get_conversation(thread_id) is conversation:
            self._states[thread_id] = state
        return state

    def get(self, thread_id: str) -> ThreadState | None:
        return self._states.get(thread_id)

    def is_current(self, thread_id: str, state: ThreadState) -> bool:
        """Whether ``state`` is still the thread's: False once it was dropped (a forget or an
        eviction while a reply was being made), when what was made from it must be dropped."""
        return self._states.get(thread_id) is state

    def drop(self, thread_id: str) -> None:
        self._states.pop(thread_id, None)

    def drop_guild(self, guild_id: str) -> int:
        """After a forget in this guild: every thread there rebuilds its state; returns how
        many were dropped."""
        threads = [t for t, s in self._states.items() if s.guild_id == guild_id]
        for thread_id in threads:
            del self._states[thread_id]
        if threads:
            log.info("guild %s: agent state of %d thread(s) dropped", guild_id, len(threads))
        return len(threads)

    def on_conversation(self, event: ConversationEvent) -> None:
        if event.kind in _RELEASING:
            self._states.pop(event.thread_id, None)
