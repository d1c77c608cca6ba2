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


class _RoundDeadline:
    """The reply's deadline over one model stream, with one timer for the whole stream.

    A timeout per event (``ReplyClock.within``) schedules and cancels a timer for every chunk
    the model sends; this one is set once. At the deadline it cancels the task only while
    the task awaits the stream's next event, so the cancellation always lands inside the
    stream, never in the consumer's code between two events; a deadline passed meanwhile is
    seen before the next event is awaited.
    """

    def __init__(self, deadline: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = deadline
        self._task: asyncio.Task[object] | None = None  # set while awaiting the stream
        self._fired = False
        self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        if self._task is not None:
            self._fired = True
            self._task.cancel()

    def close(self) -> None:
        self._timer.cancel()

    async def next(self, stream: AsyncIterator[T]) -> T:
        """The stream's next event; ``ReplyCut("time")`` past the deadline."""
        if self._loop.time() >= self._deadline:
            raise ReplyCut("time")
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._task = task
        try:
            event = await anext(stream)
        except asyncio.CancelledError:
            # Ours only if the timer fired and no one else cancelled the task meanwhile.
            if self._fired and task.uncancel() <= cancelling:
                raise ReplyCut("time") from None
            raise
        finally:
            self._task = None
        if self._fired:  # the stream swallowed the cancellation: take it back, stop now
            task.uncancel()
            raise ReplyCut("time")
        return event


async def bounded(
    stream: AsyncIterator[ProviderEvent], clock: ReplyClock
) -> AsyncIterator[ProviderEvent | Stopped]:
    """The events of one model round, within the reply's time and answer length.

    Past a bound the model's stream is closed at once (the HTTP request ends rather than
    waiting for the model to stop writing) and ``Stopped`` is the last event; text past the
    length bound is not passed on, the last delta being cut to fit.
    """
    shown = 0
    deadline = _RoundDeadline(clock.deadline)
    try:
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            while True:
                try:
                    event = await deadline.next(stream)
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
    finally:
        deadline.close()
