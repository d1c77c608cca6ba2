"""Idle deadlines for any number of conversations, kept without a timer per conversation.

Every conversation shares one idle time, so the order of last activity is the order of the
deadlines: an insertion-ordered dict where activity moves a key to the end gives O(1) per
message and the next deadline at the front. One sweeper task sleeps until that deadline.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["IdleClock"]


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
