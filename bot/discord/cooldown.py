"""Per-person cooldown between replies, kept without a timer per person."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Cooldown"]


class Cooldown:
    """Remembers when each person last had a reply started for them."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._last: dict[str, float] = {}

    def remaining(self, user_id: str) -> float:
        """Seconds until a reply may start for this person (0 when free)."""
        last = self._last.get(user_id)
        if last is None or self.seconds <= 0:
            return 0.0
        return max(0.0, last + self.seconds - self._clock())

    def mark(self, user_id: str) -> None:
        now = self._clock()
        self._last[user_id] = now
        if len(self._last) > 10_000:
            # Forget everyone whose cooldown is long over; keeps memory flat on big servers.
            self._last = {u: t for u, t in self._last.items() if t + self.seconds > now}
