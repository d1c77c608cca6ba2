"""Idle deadlines for any number of conversations, kept without a timer per conversation.

Every conversation shares one idle time, so the order of last activity is the order of the
deadlines: an insertion-ordered dict where activity moves a key to the end gives O(1) per
message and the next deadline at the front. One sweeper task sleeps until that deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

__all__ = ["IdleClock", "IdleSweeper", "RetryBackoff"]


class IdleClock:
    """Last activity per key, oldest first."""

    def __init__(self, idle_time: float, clock: Callable[[], float] = time.monotonic) -> None:
        if idle_time < 0:
            raise ValueError(f"idle_time must be >= 0 seconds, got {idle_time}")
        self.idle_time = idle_time
        self._clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: object) -> bool:
        return key in self._last

    def touch(self, key: str) -> bool:
        """Mark activity now; True if the clock was empty (a sleeping sweeper must wake)."""
        was_empty = not self._last
        self._last[key] = self._clock()
        self._last.move_to_end(key)
        return was_empty

    def forget(self, key: str) -> None:
        self._last.pop(key, None)

    def next_deadline(self) -> float | None:
        """When the oldest key goes idle (in the clock's time), or None if there are none."""
        for last in self._last.values():
            return last + self.idle_time
        return None

    def pop_expired(self) -> list[str]:
        """Remove and return every key idle for at least ``idle_time``, oldest first."""
        cutoff = self._clock() - self.idle_time
        expired: list[str] = []
        while self._last:
            key, last = next(iter(self._last.items()))
            if last > cutoff:
                break
            del self._last[key]
            expired.append(key)
        return expired

    def now(self) -> float:
        return self._clock()


class RetryBackoff:
    """When to try a failed save again, per key: ``base`` seconds after the first failure,
    doubling with each further one up to ``cap``. A full disk then costs a few attempts an
    hour per conversation, not one per sweep, and a freed one is noticed soon."""

    def __init__(
        self, base: float, cap: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"need 0 < base <= cap, got base={base}, cap={cap}")
        self.base = base
        self.cap = cap
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def failed(self, key: str) -> float:
        """Count a failure and schedule the next attempt; returns the delay in seconds."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(self.base * 2 ** min(failures - 1, 64), self.cap)
        self._due[key] = self._clock() + delay
        return delay

    def forget(self, key: str) -> None:
        """The key was saved (or is gone): its next failure starts from ``base`` again."""
        self._failures.pop(key, None)
        self._due.pop(key, None)

    def next_deadline(self) -> float | None:
        return min(self._due.values(), default=None)

    def pop_due(self) -> list[str]:
        """Remove and return every key whose attempt is due, soonest first (the failure
        count is kept, so a further failure waits longer)."""
        now = self._clock()
        due = sorted((at, key) for key, at in self._due.items() if at <= now)
        for _, key in due:
            del self._due[key]
        return [key for _, key in due]


class IdleSweeper:
    """The one task for every conversation: it sleeps until the oldest goes idle (or a failed
    save is due again), hands those keys to ``evict``, and calls ``maintain`` every
    ``maintenance_interval`` seconds."""

    def __init__(
        self,
        clock: IdleClock,
        retries: RetryBackoff,
        *,
        evict: Callable[[str], Awaitable[None]],
        maintain: Callable[[], Awaitable[None]],
        maintenance_interval: float,
    ) -> None:
        self.clock = clock
        self.retries = retries
        self._evict = evict
        self._maintain = maintain
        self._maintenance_interval = maintenance_interval
        self._wakeup = asyncio.Event()
        self._running = False

    def start(self) -> asyncio.Task[None]:
        """The sweeper's task, started."""
        self._running = True
        return asyncio.get_running_loop().create_task(self._sweep(), name="echo-idle-sweeper")

    def stop(self) -> None:
        """Ask the task to return once the evictions it has started are done."""
        self._running = False
        self._wakeup.set()

    def touch(self, key: str) -> None:
        """Activity on ``key`` now: its idle deadline starts again."""
        if self.clock.touch(key):
            self._wakeup.set()  # the task slept with no deadline to wait for

    def forget(self, key: str) -> None:
        """``key`` is gone (evicted, removed, deleted): no deadline, no retry."""
        self.clock.forget(key)
        self.retries.forget(key)

    async def _sweep(self) -> None:
        next_maintenance = self.clock.now() + self._maintenance_interval
        while self._running:
            deadlines = (self.clock.next_deadline(), self.retries.next_deadline())
            now = self.clock.now()
            until = min((d for d in deadlines if d is not None), default=next_maintenance)
            until = min(until, next_maintenance)
            if until > now:
                # A timer that sets the event, not wait_for(): on Python 3.11 wait_for can
                # swallow a cancellation that races the event, and shutdown would hang.
                self._wakeup.clear()
                timer = asyncio.get_running_loop().call_later(until - now, self._wakeup.set)
                try:
                    await self._wakeup.wait()
                finally:
                    timer.cancel()
                continue
            if not self._running:
                break
            expired = self.clock.pop_expired()
            expired += [t for t in self.retries.pop_due() if t not in expired]
            if expired:
                await asyncio.gather(*(self._evict(t) for t in expired))
            elif self.clock.now() < next_maintenance:
                # The deadline fell due by a float's width before the cutoff agreed; don't spin.
                await asyncio.sleep(0.001)
            if self.clock.now() >= next_maintenance:
                next_maintenance = self.clock.now() + self._maintenance_interval
                await self._maintain()
