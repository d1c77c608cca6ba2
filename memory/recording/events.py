"""What the conversation manager tells its listeners, and the listeners it tells."""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from memory.records.models import Conversation

log = logging.getLogger(__name__)

__all__ = ["ConversationEvent", "EventKind", "Listener", "Listeners"]

EventKind = Literal["saved", "idle", "removed", "deleted", "ended"]


@dataclass(frozen=True, slots=True)
class ConversationEvent:
    """Told to listeners: ``saved`` after every save, ``idle`` when one was saved and evicted
    for inactivity, ``removed`` when one was dropped from memory on request, ``deleted`` when
    one was forgotten, ``ended`` when one was ended. Whatever a listener keeps per conversation
    held in memory can go at ``idle``, ``removed`` and ``deleted``."""

    kind: EventKind
    thread_id: str
    conversation: Conversation | None


Listener = Callable[[ConversationEvent], Awaitable[None] | None]


class Listeners:
    """Listeners (sync or async), told of each event in the order they were added."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def emit(
        self, kind: EventKind, thread_id: str, conversation: Conversation | None
    ) -> None:
        """Tell every listener; one that fails is logged, and the others are still told."""
        event = ConversationEvent(kind, thread_id, conversation)
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("conversation listener %r failed on %s", listener, kind)
