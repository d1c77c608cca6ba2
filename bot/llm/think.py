"""Separating ``<think>...</think>`` reasoning from the answer while it streams.

Ollama, llama.cpp and many Qwen/DeepSeek deployments put the model's reasoning inside
the content, between think tags. Tokens can split a tag anywhere (``"<th"`` + ``"ink>"``),
so the parser holds back only the few characters that could still become a tag and
emits everything else at once: the user sees the answer stream without delay.

Some chat templates (DeepSeek-V3.1, Qwen3 thinking models on llama.cpp; vLLM without a
reasoning parser) put the opening ``<think>`` in the *prompt*: the answer then arrives as
``reasoning</think>answer``. A ``</think>`` before any opening tag therefore ends a
reasoning block that began with the answer. Not knowing it in advance, the parser streams
such text as content and, at the orphan tag, takes it back (``ContentRetracted``) and gives
it again as reasoning; told that the model opens inside a block (``opens_inside``), it holds
the text back as reasoning from the start, and if no ``</think>`` ever comes, the model did
not reason this time and the text is the answer.
"""

from __future__ import annotations

import logging

from bot.llm.base import ContentDelta, ContentRetracted, ReasoningDelta

log = logging.getLogger(__name__)

__all__ = ["CLOSE_TAG", "OPEN_TAG", "ThinkParser", "ThinkPiece", "split_think"]

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

ThinkPiece = ReasoningDelta | ContentDelta | ContentRetracted


# Both tags begin with their only "<": a tag cut short at the end of the text begins at the
# text's last "<", and a text without "<" holds no tag and no start of one.
_LONGEST = max(len(OPEN_TAG), len(CLOSE_TAG))
assert all(tag.count("<") == 1 and tag.startswith("<") for tag in (OPEN_TAG, CLOSE_TAG))


def _partial_tag_suffix(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest end of ``text`` that is the start of one of ``tags`` (a tag cut
    short)."""
    at = text.rfind("<", max(0, len(text) - _LONGEST + 1))
    if at < 0:
        return 0
    end = text[at:]
    return len(end) if any(len(end) < len(tag) and tag.startswith(end) for tag in tags) else 0


def _first_tag(text: str, tags: tuple[str, ...], start: int) -> tuple[int, str]:
    """The first of ``tags`` in ``text`` at or after ``start``: its position and itself, or
    ``(-1, "")``."""
    at = text.find("<", start)
    if at < 0:
        return -1, ""
    found = [(where, tag) for tag in tags if (where := text.find(tag, at)) >= 0]
    return min(found) if found else (-1, "")


class ThinkParser:
    """Feed content chunks, get reasoning and content pieces with the tags removed.

    Tags are recognised anywhere, and any number of think blocks may appear. Whatever is
    left when the stream ends is flushed by ``finish()``: an unclosed think block is
    reasoning (the model ran out of tokens while thinking), a dangling ``"<thi"`` is text.
    A ``</think>`` before any other tag closes a block the prompt template opened.
    """

    def __init__(self, *, opens_inside: bool = False) -> None:
        self._buffer = ""
        self._thinking = opens_inside
        # Inside a block whose <think> was in the prompt: held back until it closes.
        self._implicit = opens_inside
        self._shown: list[str] = []  # content given before any tag, for a retraction
        self.saw_tags = False
        self.saw_orphan_close = False
        """A ``</think>`` came with no opening tag: this model opens inside a block."""

    @property
    def thinking(self) -> bool:
        """Inside a think block right now."""
        return self._thinking

    def _piece(self, text: str) -> ReasoningDelta | ContentDelta:
        if self._thinking:
            return ReasoningDelta(text)
        if not self.saw_tags:
            self._shown.append(text)
        return ContentDelta(text)

    def _tags(self) -> tuple[str, ...]:
        if self._implicit:
            return (CLOSE_TAG, OPEN_TAG)  # an explicit <think> may follow the template's
        if self._thinking:
            return (CLOSE_TAG,)
        return (OPEN_TAG,) if self.saw_tags else (OPEN_TAG, CLOSE_TAG)

    def feed(self, chunk: str) -> list[ThinkPiece]:
        """Pieces that are certain now; never an empty piece."""
        if not self._buffer and not self._implicit and "<" not in chunk:
            # Most chunks: nothing held back and no tag starting here, so all of it is certain.
            return [self._piece(chunk)] if chunk else []
        # What was held back holds no whole tag (it would have been taken): a tag can only
        # end in the new chunk, so the scan starts where such a tag could begin, and a long
        # held-back block is not scanned again at every chunk.
        start = max(0, len(self._buffer) - _LONGEST + 1)
        self._buffer += chunk
        out: list[ThinkPiece] = []
        while self._buffer:
            tags = self._tags()
            at, tag = _first_tag(self._buffer, tags, start)
            start = 0
            if tag:
                before = self._buffer[:at]
                self._buffer = self._buffer[at + len(tag) :]
                out.extend(self._tag(tag, before))
                continue
            if self._implicit:
                break  # held until the block closes (or the stream ends)
            keep = _partial_tag_suffix(self._buffer, tags)
            ready = self._buffer[: len(self._buffer) - keep]
            if ready:
                out.append(self._piece(ready))
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        return out

    def _tag(self, tag: str, before: str) -> list[ThinkPiece]:
        out: list[ThinkPiece] = []
        if tag == CLOSE_TAG and not self._thinking:
            # An orphan </think>: all the content so far was reasoning.
            shown = "".join(self._shown)
            self._shown.clear()
            if shown:
                out.append(ContentRetracted(shown))
            if shown + before:
                out.append(ReasoningDelta(shown + before))
            self.saw_orphan_close = True
        elif tag == OPEN_TAG and self._implicit:
            # The model wrote the <think> itself after all: one block, not two.
            if before.strip():
                out.append(ReasoningDelta(before))
            self._implicit = False
        else:
            if before:
                out.append(self._piece(before))
            if self._implicit:
                self.saw_orphan_close = True  # the template's block closed, as expected
            self._thinking = not self._thinking
            self._implicit = False
        self.saw_tags = True
        return out

    def reasoning_elsewhere(self) -> list[ThinkPiece]:
        """The server sends this answer's reasoning in a field of its own (a reasoning
        parser is on): no block opened it, so what was held back is the answer."""
        if not self._implicit:
            return []
        self._implicit = self._thinking = False
        return self.feed("")

    def finish(self, *, cut: bool = False) -> list[ThinkPiece]:
        """Flush what was held back at the end of the stream.

        ``cut``: the server stopped the answer at its length limit, so a block the template
        opened and never closed is reasoning cut short, not an answer without reasoning.
        """
        out: list[ThinkPiece] = []
        if self._implicit and not cut:
            log.debug("no </think> in an answer expected to open inside one: it is the answer")
            self._thinking = self._implicit = False
        if self._buffer:
            out.append(self._piece(self._buffer))
            self._buffer = ""
        if self._thinking:
            log.debug("think block never closed; its text counts as reasoning")
        return out


def split_think(
    text: str, *, opens_inside: bool = False, parser: ThinkParser | None = None
) -> tuple[str, str]:
    """``(reasoning, content)`` of a whole, non-streamed answer; pass a fresh ``parser`` to
    read afterwards what it saw (``saw_orphan_close``)."""
    parser = parser or ThinkParser(opens_inside=opens_inside)
    reasoning: list[str] = []
    content: list[str] = []
    for piece in parser.feed(text) + parser.finish():
        if isinstance(piece, ContentRetracted):
            content.clear()
        elif isinstance(piece, ReasoningDelta):
            reasoning.append(piece.text)
        else:
            content.append(piece.text)
    return "".join(reasoning), "".join(content)
