"""What the process does once its start-up is done, before it starts serving."""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

__all__ = ["freeze_start_up_objects"]

_start_up_frozen = False


def freeze_start_up_objects() -> int:
    """Leave every object alive now out of all later garbage collections; returns how many.

    For the process that runs the bot, once its start-up is done (imports, the store opened and
    its journal replayed, the client built), before it starts serving. A full (generation 2)
    collection walks every tracked object and holds the event loop meanwhile; in a young
    process most of them are start-up objects that live as long as it does (modules, classes,
    functions, pydantic's schemas), and walking them again and again is a stall for nothing.
    Frozen objects are still freed by reference counting; only a reference cycle among them
    that later becomes garbage is never reclaimed, a one-time, bounded cost for objects of the
    start-up. Garbage is collected first, so none is frozen. Once per process: later calls do
    nothing and return 0.
    """
    global _start_up_frozen
    if _start_up_frozen:
        return 0
    _start_up_frozen = True
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("%d start-up objects frozen: later garbage collections skip them", frozen)
    return frozen
