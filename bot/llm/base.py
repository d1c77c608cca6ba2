"""What the reply agent sees of a model: a stream of events and one error type.

The agent never touches a vendor SDK. Every provider turns its wire format into these
events and every failure into an ``LLMError`` whose ``user_message`` can go straight to
Discord, so the agent's error handling is one ``except`` clause however the model is
reached.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

__all__ = [
    "USER_MESSAGES",
    "ChatProvider",
    "ContentDelta",
    "ContentRetracted",
    "Finish",
    "LLMError",
    "LLMErrorKind",
    "ProviderEvent",
    "ReasoningDelta",
    "ToolCallRequest",
]


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning, recorded as ``thinking`` and never shown as the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A piece of the answer the user sees."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """One complete tool call.

    ``arguments`` is the raw text the model sent, possibly malformed JSON: the tool
    registry parses it, so a bad call becomes an error the model can read and correct
    instead of an exception here.
    """

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ContentRetracted:
    """The content streamed so far in this answer was reasoning after all.

    Some servers start the answer inside a think block whose ``<think>`` sits in the prompt
    template, so the first sign of it is a ``</think>`` with no opening tag. Until a model
    is known to do that, its text streams as content; at the orphan tag the provider sends
    this (take back what was shown), then the same ``text`` again as a ``ReasoningDelta``.
    """

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The last event of a complete answer: why the model stopped.

    ``reason`` is the server's ``finish_reason`` (``"stop"``, ``"tool_calls"``,
    ``"length"``: cut at the token limit, ``"content_filter"``), None if it sent none.
    """

    reason: str | None

    @property
    def cut(self) -> bool:
        """The answer was cut short by the server, not ended by the model."""
        return self.reason == "length"


ProviderEvent = ReasoningDelta | ContentDelta | ContentRetracted | ToolCallRequest | Finish

LLMErrorKind = Literal["timeout", "rate_limited", "unavailable", "auth", "bad_request", "empty"]

# One short line each, safe to post in a Discord thread: no status codes, URLs or keys.
USER_MESSAGES: dict[str, str] = {
    "timeout": "The model is taking too long to answer right now. Please try again in a moment.",
    "rate_limited": (
        "The model is getting too many requests right now. Please try again in a minute."
    ),
    "unavailable": "I can't reach the model right now. Please try again in a little while.",
    "auth": (
        "I'm not allowed to use the model right now; the bot's operator needs to check its "
        "settings."
    ),
    "bad_request": (
        "The model couldn't handle that request. Please try rephrasing it, or start a new "
        "conversation."
    ),
    "empty": "The model came back with an empty answer. Please try again.",
}


class LLMError(Exception):
    """A model call failed.

    ``user_message`` is one short friendly line for Discord users; ``str(exc)`` is the
    operator's cause (status code and the provider's own message) for the log.
    ``status_code`` is the HTTP status when there was one.
    """

    kind: LLMErrorKind
    user_message: str
    status_code: int | None

    def __init__(
        self,
        kind: LLMErrorKind,
        cause: str,
        *,
        user_message: str | None = None,
        status_code: int | None = None,
    ) -> None:
        if kind not in USER_MESSAGES:
            raise ValueError(f"unknown LLMError kind {kind!r}")
        super().__init__(cause)
        self.kind = kind
        self.user_message = user_message or USER_MESSAGES[kind]
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"LLMError(kind={self.kind!r}, cause={str(self)!r})"


class ChatProvider(ABC):
    """A chat model behind one interface, so the agent is the same offline and online.

    Messages and tools use the OpenAI Chat Completions format (the lingua franca every
    OpenAI-compatible server speaks); other vendors translate inside their provider.
    """

    model: str
    """The name recorded in logs and as a memory's generator."""

    offline: bool = False
    """True when the provider is no real model: callers then summarise extractively."""

    notice: str = ""
    """A line shown above each answer and never recorded: what this model is, when the
    people reading should know (the offline echo). Kept out of the record so that neither
    conversations nor the memories made from them repeat it."""

    @abstractmethod
    def stream_chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[ProviderEvent]:
        """Yield reasoning and content deltas as they arrive, then every tool call, complete,
        then one ``Finish`` (a provider without a stop reason may leave it out).

        Raises ``LLMError`` on any failure, mid-stream included; an answer with no content,
        no reasoning and no tool call is ``LLMError(kind="empty")``. Implementations are
        async generators: consume them with ``contextlib.aclosing`` if you may stop early.
        """

    @abstractmethod
    async def complete(self, messages: list[dict[str, Any]], *, json_mode: bool = False) -> str:
        """The answer as one string, reasoning removed (summaries, memory JSON).

        ``json_mode`` asks the server for a JSON object; the caller still validates it.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional: echo holds nothing
        """Release connections. Safe to call twice."""

    async def __aenter__(self) -> ChatProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
