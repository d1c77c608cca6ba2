"""Text from Discord, made safe for the operator's terminal.

Display names, messages and summaries are written by anyone in a server. Printed raw, a
name holding ``ESC ]0;...BEL`` retitles the operator's window, OSC 52 writes their clipboard,
and a carriage return or a bidi override hides what is really there. Human-readable output
shows every such character escaped (``\\x1b``, ``\\u202e``); ``--json`` output is JSON, which
escapes them itself.
"""

from __future__ import annotations

import re

__all__ = ["terminal_safe"]

# C0 controls but tab and newline, DEL, C1 controls, and the bidi embeddings, overrides and
# isolates that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ON_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` with its control characters escaped; with ``one_line``, newlines and tabs too."""
    return (_UNSAFE_ON_ONE_LINE if one_line else _UNSAFE).sub(_escaped, text)
