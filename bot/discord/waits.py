"""The waits of Echo's replies, told to whoever wants to tell them from Echo's own work.

A reply can wait on something other than its own work before it reaches the model or
Discord: for room in Discord's write budget (``bot.discord.pacing``), for a model slot (at
most ``ECHO_MAX_CONCURRENT_REPLIES`` model calls at once) or for its author's cooldown.
Seen from outside, such a wait looks like slowness; each one that happened is reported here,
with the channel it was for and when it started and ended, so that a benchmark or a metrics
exporter can subtract it. Echo itself never reads these reports, and a wait with no
observer costs one check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

__all__ = ["Wait", "WaitKind", "WaitObserver", "Waits"]

WaitKind = Literal["write budget", "model slot", "cooldown"]
"""``write budget``: a write a reply needs (its first words, its final text, a notice) waited
for room in Discord's global limit. ``model slot``: every model slot was taken; the wait
runs from finding them taken to getting one, the "yours is next" notice posted meanwhile
included. ``cooldown``: its author's per-person cooldown, the notice saying so included."""


@dataclass(frozen=True, slots=True)
class Wait:
    """One wait that happened, for the reply in ``channel_id`` (a thread's id)."""

    kind: WaitKind
    channel_id: int | None
    started: float
    """On ``time.monotonic()`` (the write budget's clock, which is that unless a test gives
    it another)."""
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


WaitObserver = Callable[[Wait], None]
"""Called on the event loop, once per wait, right after it ended: it must return quickly."""


class Waits:
    """Where waits are reported, and the observers told of them."""

    def __init__(self) -> None:
        self._observers: list[WaitObserver] = []

    def subscribe(self, observer: WaitObserver) -> Callable[[], None]:
        """Tell ``observer`` of every wait from now on; returns the call that stops it."""
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def report(self, kind: WaitKind, channel_id: int | None, started: float, ended: float) -> None:
        if not self._observers:
            return
        wait = Wait(kind, channel_id, started, ended)
        for observer in list(self._observers):
            try:
                observer(wait)
            except Exception:  # an observer's bug must not break a reply
                log.exception("a wait observer failed")
