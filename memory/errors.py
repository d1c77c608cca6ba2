"""How an exception is told in one log line or one CLI line."""

from __future__ import annotations

__all__ = ["first_line"]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none.

    Tracebacks and multi-line driver messages belong in debug logs; an operator's log line
    and the CLI's error line carry one line each.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
