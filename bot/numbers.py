"""How long a duration setting or option may be.

``inf`` and ``nan`` are refused where numbers are parsed (pydantic's ``allow_inf_nan=False``,
the CLI's ``finite_float``). A finite number can still be too long to mean anything: a
conversation idle for ``1e300`` seconds, or a catch-up reaching back before year 1, overflows
the date arithmetic at run time (a traceback, or a bot that stops) instead of costing the one
line a wrong setting costs at start-up. A century is past any timeout, interval or age an
operator means (``1e9`` seconds, "never" in practice, is 32 years), and far below where
datetime and asyncio give up.
"""

from __future__ import annotations

__all__ = ["MAX_HOURS", "MAX_SECONDS", "too_long"]

MAX_HOURS = 100 * 365 * 24
MAX_SECONDS = MAX_HOURS * 3600


def too_long(value: float, unit: str) -> str | None:
    """Why ``value`` (in ``unit``: ``seconds`` or ``hours``) is too long; None if it is not."""
    limit = MAX_HOURS if unit == "hours" else MAX_SECONDS
    if value > limit:
        return f"must be at most {limit} {unit} (a century), got {value:g}"
    return None
