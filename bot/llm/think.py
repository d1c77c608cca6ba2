"""Separating ``<think>...</think>`` reasoning from the answer while it streams.

Ollama, llama.cpp and many Qwen/DeepSeek deployments put the model's reasoning inside
the content, between think tags. Tokens can split a tag anywhere (``"<th"`` + ``"ink>"``),
so the parser holds back only the few characters that could still become a tag and
emits everything else at once: the user sees the answer stream without delay.
"""

from __future__ import annotations

import logging

from bot.llm.base import ContentDelta, ReasoningDelta

log = logging.getLogger(__name__)

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ThinkParser", "split_think"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is the start of ``tag`` (a tag cut short)."""
    for length in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-length:]):
            return length
    return 0


class ThinkParser:
    """Feed content chunks, get reasoning and content pieces with the tags removed.

    Tags are recognised anywhere, and any number of think blocks may appear. Whatever is
    left when the stream ends is flushed by ``finish()``: an unclosed think block is
    reasoning (the model ran out of tokens while thinking), a dangling ``"<thi"`` is text.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._thinking = False
        self.saw_tags = False

    @property
    def thinking(self) -> bool:
        """Inside a think block right now."""
        return self._thinking

    def _piece(self, text: str) -> ReasoningDelta | ContentDelta:
        return ReasoningDelta(text) if self._thinking else ContentDelta(text)

    def feed(self, chunk: str) -> list[ReasoningDelta | ContentDelta]:
        """Pieces that are certain now; never an empty piece."""
        self._buffer += chunk
        out: list[ReasoningDelta | ContentDelta] = []
        while self._buffer:
            tag = CLOSE_TAG if self._thinking else OPEN_TAG
            at = self._buffer.find(tag)
            if at >= 0:
                if at:
                    out.append(self._piece(self._buffer[:at]))
                self._buffer = self._buffer[at + len(tag) :]
                self._thinking = not self._thinking
                self.saw_tags = True
                continue
            keep = _partial_tag_suffix(self._buffer, tag)
            ready = self._buffer[: len(self._buffer) - keep]
            if ready:
                out.append(self._piece(ready))
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        return out

    def finish(self) -> list[ReasoningDelta | ContentDelta]:
        """Flush what was held back at the end of the stream."""
        out: list[ReasoningDelta | ContentDelta] = []
        if self._buffer:
            out.append(self._piece(self._buffer))
            self._buffer = ""
        if self._thinking:
            log.debug("think block never closed; its text counts as reasoning")
        return out


def split_think(text: str) -> tuple[str, str]:
    """``(reasoning, content)`` of a whole, non-streamed answer."""
    parser = ThinkParser()
    pieces = parser.feed(text) + parser.finish()
    reasoning = "".join(p.text for p in pieces if isinstance(p, ReasoningDelta))
    content = "".join(p.text for p in pieces if isinstance(p, ContentDelta))
    return reasoning, content
