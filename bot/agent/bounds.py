"""The bounds of one reply: how long it may take and how much answer it may show.

``LLM_TIMEOUT_SECONDS`` bounds each read from the model, so a model that trickles a chunk
a second never trips it and would hold a reply slot (and everyone queued behind it) for as
long as it likes; a model that writes without end would fill a thread with messages. A
``ReplyClock`` is started when a reply starts and bounds the whole of it, every model round,
fold and tool call included (``within`` raises ``ReplyCut`` past it); ``bounded`` applies both
bounds to one model stream and ends it with ``Stopped``, after which the agent keeps what was
shown as the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Literal, TypeVar

from bot.llm import ContentDelta, ContentRetracted, ProviderEvent

log = logging.getLogger(__name__)

__all__ = ["STOP_NOTES", "CutReason", "ReplyClock", "ReplyCut", "Stopped", "bounded"]

T = TypeVar("T")
CutReason = Literal["time", "length"]

STOP_NOTES: dict[CutReason, str] = {
    "time": "*(I stopped here: this answer was taking too long.)*",
    "length": "*(I stopped here: this answer was getting too long.)*",
}
"""The one line under a reply that was cut, by why (the recorded ``meta.cut``)."""


class ReplyCut(Exception):
    """A reply went past one of its bounds (``reason``: ``time`` or ``length``)."""

    def __init__(self, reason: CutReason) -> None:
        super().__init__(f"the reply went past its {reason} bound")
        self.reason: CutReason = reason


@dataclass(frozen=True, slots=True)
class Stopped:
    """The last event of a model round cut at a bound: its stream was closed."""

    reason: CutReason


class ReplyClock:
    """One reply's deadline and answer length, fixed when it starts."""

    def __init__(self, seconds: float, chars: int) -> None:
        self.seconds = seconds
        self.chars = chars
        self.deadline = asyncio.get_running_loop().time() + seconds

    async def within(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable``, cancelled at the deadline (then ``ReplyCut("time")``)."""
        timeout = asyncio.timeout_at(self.deadline)
        try:
            async with timeout:
                return await awaitable
        except TimeoutError:
            if timeout.expired():
                raise ReplyCut("time") from None
            raise  # a timeout of the awaited code itself, not ours


async def bounded(
    stream: AsyncIterator[ProviderEvent], clock: ReplyClock
) -> AsyncIterator[ProviderEvent | Stopped]:
    """The events of one model round, within the reply's time and answer length.

    Past a bound the model's stream is closed at once (the HTTP request ends rather than
    waiting for the model to stop writing) and ``Stopped`` is the last event; text past the
    length bound is not passed on, the last delta being cut to fit.
    """
    shown = 0
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        while True:
            try:
                event = await clock.within(anext(stream))
            except StopAsyncIteration:
                return
            except ReplyCut as cut:
                yield Stopped(cut.reason)
                return
            if isinstance(event, ContentRetracted):
                shown = 0  # what was shown was reasoning, and is taken off the screen
            elif isinstance(event, ContentDelta):
                room = clock.chars - shown
                if len(event.text) > room:
                    if room > 0:
                        yield ContentDelta(event.text[:room])
                    yield Stopped("length")
                    return
                shown += len(event.text)
            yield event
