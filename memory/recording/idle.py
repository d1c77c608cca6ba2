"""Idle deadlines for any number of conversations, kept without a timer per conversation.

Every conversation shares one idle time, so the order of last activity is the order of the
deadlines: an insertion-ordered dict where activity moves a key to the end gives O(1) per
message and the next deadline at the front. One sweeper task sleeps until that deadline.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["IdleClock", "RetryBackoff"]


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
