"""The one progress bar of the long CLI commands (memory runs, store migration).

At a terminal it is tqdm's bar, redrawn in place, with the rate and the time left; in a log
file or a pipe (cron, CI) it is about ten plain lines of the same shape, because ``\\r``
redraws turn a log into one unreadable line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress"]

_FORMAT = "{desc} {n_fmt}/{total_fmt} [{bar:30}] {rate_fmt}, {remaining} left"
_LINES = 10
"""Lines a log file gets for a whole run."""


class Progress:
    """``memories 12/40 [#########          ] 3.20/s, 00:08 left`` on ``stream``."""

    def __init__(self, label: str, total: int, stream: TextIO = sys.stderr) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.done = 0
        self._started = time.monotonic()
        self._every = max(1, total // _LINES)
        self._bar: tqdm | None = None
        if _is_terminal(stream):
            self._bar = tqdm(
                total=total,
                desc=label,
                file=stream,
                bar_format=_FORMAT,
                ascii=" #",
                unit="",
                leave=True,
            )

    def update(self, done: int) -> None:
        """``done`` of ``total`` are finished (the count, not an increment)."""
        step, self.done = done - self.done, done
        if self._bar is not None:
            self._bar.update(step)
            return
        if done != self.total and done % self._every:
            return
        line = tqdm.format_meter(
            done,
            self.total,
            time.monotonic() - self._started,
            prefix=self.label,
            bar_format=_FORMAT,
            ascii=" #",
            unit="",
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def step(self) -> None:
        self.update(self.done + 1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
