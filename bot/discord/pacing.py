"""Echo's own pacing of its Discord writes, so that a busy bot stays inside Discord's limits
instead of running into them.

Discord allows a bot about 50 requests per second across every route, and 5 message writes
(posts, edits, deletes) per 5 seconds in one channel. discord.py waits out a channel's bucket
from the headers, but it learns of the global limit only from a 429, and after a few 429s in a
row it gives up and raises: with hundreds of threads streaming at once, a reply's final edit
could be lost. So Echo keeps its own count of what it sent (one sliding window for the whole
process, one per channel) and:

- writes a reply cannot do without (its first message, its final text) wait for room in the
  global window (``acquire``), so they go out once instead of colliding and retrying;
- optional writes (the edits that show a reply growing, the typing indicator) go out only
  while there is room to spare (``optional_delay``): the edit interval widens as the budget
  shrinks, and the last edit of a busy reply simply waits for its final text.

A write that waited for room is reported to ``waits`` (``bot.discord.waits``), so what a
reply spent waiting can be told apart from Echo's own work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from bot.discord.waits import Waits

__all__ = ["WriteBudget"]

GLOBAL_LIMIT = 50  # requests per GLOBAL_PER seconds, Discord's global limit for a bot
GLOBAL_PER = 1.0
CHANNEL_LIMIT = 5  # message writes per CHANNEL_PER seconds in one channel
CHANNEL_PER = 5.0


class WriteBudget:
    """The writes this process made to Discord, in sliding windows, and the room left."""

    def __init__(
        self,
        *,
        global_limit: int = GLOBAL_LIMIT,
        global_per: float = GLOBAL_PER,
        channel_limit: int = CHANNEL_LIMIT,
        channel_per: float = CHANNEL_PER,
        clock: Callable[[], float] = time.monotonic,
        waits: Waits | None = None,
    ) -> None:
        # A margin under Discord's figure: requests Echo does not pace (slash commands, the
        # client's own calls) share the same global budget.
        self.global_limit = max(1, int(global_limit * 0.9))
        self.global_per = global_per
        self.channel_limit = channel_limit
        self.channel_per = channel_per
        # Optional writes leave this much of the budget to writes a reply needs.
        self.optional_global = max(1, int(self.global_limit * 0.6))
        self.optional_channel = max(1, channel_limit - 2)
        self._clock = clock
        self.waits = waits if waits is not None else Waits()
        # Writes on the wire count from when they leave until ``per`` after their answer:
        # Discord counts them on arrival, which lies somewhere in between.
        self._in_flight = 0
        self._global: deque[float] = deque()
        self._channels: dict[int, deque[float]] = {}

    def _prune(self, now: float) -> None:
        window = self._global
        while window and window[0] <= now - self.global_per:
            window.popleft()
        if len(self._channels) > 1000:  # forget channels with nothing in their window
            horizon = now - self.channel_per
            stale = [c for c, w in self._channels.items() if not w or w[-1] <= horizon]
            for channel in stale:
                del self._channels[channel]

    def _channel(self, channel_id: int, now: float) -> deque[float]:
        window = self._channels.setdefault(channel_id, deque())
        while window and window[0] <= now - self.channel_per:
            window.popleft()
        return window

    def note(self, channel_id: int | None, *, message_write: bool = True) -> None:
        """Count a write made now (``message_write=False``: a typing call, global only)."""
        now = self._clock()
        self._prune(now)
        self._global.append(now)
        if channel_id is not None and message_write:
            self._channel(channel_id, now).append(now)

    def global_delay(self, limit: int | None = None) -> float:
        """Seconds until the global window has room for one more write under ``limit``."""
        now = self._clock()
        self._prune(now)
        limit = self.global_limit if limit is None else limit
        over = len(self._global) + self._in_flight - limit
        if over < 0:
            return 0.0
        if over >= len(self._global):  # only writes still on the wire: wait for an answer
            return 0.05
        return self._global[over] + self.global_per - now

    def optional_delay(self, channel_id: int) -> float:
        """Seconds until an optional write to this channel fits with room to spare (0: now)."""
        now = self._clock()
        window = self._channel(channel_id, now)
        channel_wait = 0.0
        if len(window) >= self.optional_channel:
            channel_wait = window[len(window) - self.optional_channel] + self.channel_per - now
        return max(channel_wait, self.global_delay(self.optional_global))

    async def wait(self, channel_id: int | None = None) -> None:
        """Until the global window has room for one more write (for ``channel_id``, which
        the report of a wait names)."""
        wait = self.global_delay()
        if wait <= 0:
            return
        started = self._clock()
        # Sleeping until the oldest write leaves the window: there is no event to wait on.
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.global_delay()
        self.waits.report("write budget", channel_id, started, self._clock())

    @contextlib.asynccontextmanager
    async def write(
        self, channel_id: int | None, *, message_write: bool = True, wait: bool = True
    ) -> AsyncIterator[None]:
        """Around one write: wait for room (unless ``wait=False``), count it until it is
        answered, then keep it in the windows."""
        if wait:
            await self.wait(channel_id)
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self.note(channel_id, message_write=message_write)
