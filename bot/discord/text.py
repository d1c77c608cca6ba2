"""Text shaping for Discord: message splitting and thread names.

Discord refuses a message over 2,000 characters, so a long answer becomes several messages.
Cutting at arbitrary characters would break words, paragraphs and, worst, code blocks, so
the split prefers paragraph breaks, then line breaks, then spaces, and a code fence that a
cut leaves open is closed at the end of one message and reopened (same language) at the
start of the next.
"""

from __future__ import annotations

import re

__all__ = ["MESSAGE_LIMIT", "THREAD_NAME_LIMIT", "split_message", "thread_name"]

MESSAGE_LIMIT = 2000
THREAD_NAME_LIMIT = 100
_FENCE = re.compile(r"^\s*(```+)(.*)$")
_CLOSE = "\n```"


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, keeping code blocks valid."""
    if limit < 20:
        raise ValueError("limit must leave room for a code fence")
    chunks: list[str] = []
    fence: str | None = None  # the opening line of a code block left open by the last cut
    remaining = text
    while remaining:
        prefix = f"{fence}\n" if fence else ""
        if len(prefix) + len(remaining) <= limit and _fence_after(remaining, fence) is None:
            chunks.append(prefix + remaining)
            break
        if len(prefix) + len(remaining) <= limit:
            # Fits, but leaves a block open (the model did): close it so Discord renders it.
            chunks.append(prefix + remaining.rstrip() + _CLOSE)
            break
        budget = limit - len(prefix) - len(_CLOSE)
        cut = _cut_point(remaining, budget)
        piece = remaining[:cut].rstrip()
        remaining = remaining[cut:].lstrip("\n")
        if not piece.strip():
            # Nothing but blank space before the cut: drop it rather than post an empty message.
            continue
        after = _fence_after(piece, fence)
        chunks.append(prefix + piece + (_CLOSE if after else ""))
        fence = after
    return chunks or [""]


def _cut_point(text: str, budget: int) -> int:
    window = text[:budget]
    for separator in ("\n\n", "\n", ". ", " "):
        index = window.rfind(separator)
        # Only accept a break in the second half: a tiny first message reads badly.
        if index >= budget // 2:
            return index + len(separator)
    return budget


def _fence_after(piece: str, fence: str | None) -> str | None:
    """The fence still open after ``piece``, given the one open before it."""
    for line in piece.split("\n"):
        match = _FENCE.match(line)
        if match is None:
            continue
        if fence is None:
            fence = match.group(1) + match.group(2).strip()
        elif not match.group(2).strip():
            fence = None
    return fence


def thread_name(content: str, fallback: str) -> str:
    """A readable thread name from the first words of a message (Discord allows 100 chars)."""
    text = re.sub(r"<a?:(\w+):\d+>", r"\1", content)  # custom emoji -> their name
    text = re.sub(r"<[@#][!&]?\d+>", " ", text)  # mentions say nothing about the topic
    text = re.sub(r"[`*_~|>#]", "", text)
    text = " ".join(text.split())
    if not text:
        text = fallback
    limit = 60
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit].rstrip(" ,.;:-") + "…"
    return text[:THREAD_NAME_LIMIT]
