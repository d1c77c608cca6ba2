"""The scripted reply queue: what the next requests get, first in, first out.

An empty queue answers the default reply. A mixin of ``core.FakeLLM``; the kinds of reply
are in ``tests/fake_llm/replies.py`` and ``raw.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fake_llm.raw import RawReply
from tests.fake_llm.replies import (
    ErrorReply,
    Reply,
    TextReply,
    ToolCall,
    ToolCallsReply,
)

log = logging.getLogger(__name__)


ToolCallSpec = ToolCall | tuple[str, Mapping[str, Any] | str]


class ScriptOps:
    """Queueing scripted replies and popping the next: a mixin of ``core.FakeLLM``."""

    def queue_text(
        self,
        text: str,
        *,
        reasoning: str | None = None,
        think_tags: bool = False,
        reasoning_field: str = "reasoning_content",
        chunk_size: int = 8,
        chunk_delay: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        if think_tags and reasoning is None:
            raise ValueError("think_tags=True needs reasoning to put inside the tags")
        self._queue.append(
            TextReply(
                text=text,
                reasoning=reasoning,
                think_tags=think_tags,
                reasoning_field=reasoning_field,
                chunk_size=chunk_size,
                chunk_delay=chunk_delay,
                delay=delay,
            )
        )

    def queue_tool_calls(
        self,
        calls: Sequence[ToolCallSpec],
        *,
        content: str | None = None,
        chunk_size: int = 8,
        chunk_delay: float = 0.0,
        delay: float = 0.0,
    ) -> None:
        if not calls:
            raise ValueError("queue_tool_calls needs at least one call")
        self._queue.append(
            ToolCallsReply(
                calls=tuple(_as_tool_call(c) for c in calls),
                content=content,
                chunk_size=chunk_size,
                chunk_delay=chunk_delay,
                delay=delay,
            )
        )

    def queue_tool_call(
        self,
        name: str,
        arguments: Mapping[str, Any] | str,
        *,
        call_id: str | None = None,
        content: str | None = None,
    ) -> None:
        self.queue_tool_calls([ToolCall(name, _as_arguments(arguments), call_id)], content=content)

    def queue_error(
        self,
        status: int,
        message: str = "The fake LLM was told to fail this request.",
        *,
        times: int = 1,
        retry_after: float | None = None,
        error_type: str | None = None,
        code: str | None = None,
    ) -> None:
        if status < 400:
            raise ValueError(f"queue_error wants an error status, got {status}")
        reply = ErrorReply(status, message, retry_after=retry_after, type=error_type, code=code)
        self._queue.extend([reply] * times)

    def queue_raw(
        self,
        body: bytes,
        *,
        status: int = 200,
        content_type: str = "text/event-stream",
        piece_size: int | None = None,
        piece_delay: float = 0.0,
    ) -> None:
        self._queue.append(
            RawReply(
                body,
                status=status,
                content_type=content_type,
                piece_size=piece_size,
                piece_delay=piece_delay,
            )
        )

    def queue_slow(self, text: str, delay: float, *, chunk_delay: float = 0.0) -> None:
        self.queue_text(text, delay=delay, chunk_delay=chunk_delay)

    @property
    def pending(self) -> int:
        """Scripted replies not yet served."""
        return len(self._queue)

    def _next_reply(self) -> Reply | RawReply:
        if self._queue:
            return self._queue.popleft()
        log.debug("fake LLM: queue empty, sending the default reply")
        return TextReply(
            self.default_reply,
            chunk_size=self.default_chunk_size,
            chunk_delay=self.default_chunk_delay,
            delay=self.default_delay,
        )


def _as_arguments(arguments: Mapping[str, Any] | str) -> dict[str, Any] | str:
    return arguments if isinstance(arguments, str) else dict(arguments)


def _as_tool_call(spec: ToolCallSpec) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    name, arguments = spec
    return ToolCall(name, _as_arguments(arguments))
