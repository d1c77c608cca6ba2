"""Any OpenAI-compatible Chat Completions endpoint, through the official ``openai`` SDK.

One provider serves OpenAI, Ollama, vLLM, llama.cpp, LM Studio and OpenRouter: they
differ only in where reasoning arrives (``reasoning_content``, ``reasoning`` or
``<think>`` tags in the content), all of which are read here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai

from bot.llm.base import (
    ChatProvider,
    LLMError,
    ProviderEvent,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.llm.think import ThinkParser, split_think

log = logging.getLogger(__name__)

__all__ = ["OpenAIProvider", "to_llm_error"]

# Local servers (Ollama, llama.cpp, vLLM without --api-key) ignore the key, but the SDK
# refuses to start without one.
_PLACEHOLDER_API_KEY = "no-key-needed"
# DeepSeek and vLLM say `reasoning_content`; OpenRouter and newer vLLM say `reasoning`.
_REASONING_FIELDS = ("reasoning_content", "reasoning")


class OpenAIProvider(ChatProvider):
    """A chat model reached through ``openai.AsyncOpenAI``: one client per provider.

    ``timeout`` bounds connecting and each read (a stream that keeps sending is never cut
    off); ``max_retries`` is the SDK's own retry of 408/409/429/5xx and timeouts, which
    honours ``retry-after``.
    """

    offline = False

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout: float,
        max_retries: int = 2,
    ) -> None:
        if not model:
            raise ValueError("OpenAIProvider needs a model name")
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or _PLACEHOLDER_API_KEY,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    async def stream_chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[ProviderEvent]:
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        turn = _Turn()
        try:
            stream = await self._client.chat.completions.create(
                model=self.model, messages=messages, stream=True, **extra
            )
            try:
                async for chunk in stream:
                    for event in turn.feed(chunk):
                        yield event
            finally:
                await stream.close()
        except openai.OpenAIError as exc:
            raise to_llm_error(exc, self) from exc
        except json.JSONDecodeError as exc:
            # A proxy or a half-compatible server sent an event that is not JSON.
            raise LLMError("unavailable", f"{self!r}: malformed stream event: {exc}") from exc
        for event in turn.finish():
            yield event
        if not turn.substantive:
            raise LLMError(
                "empty",
                f"{self!r}: the model sent no content, reasoning or tool call "
                f"(finish_reason={turn.finish_reason!r})",
            )

    async def complete(self, messages: list[dict[str, Any]], *, json_mode: bool = False) -> str:
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if json_mode else {}
        try:
            completion = await self._client.chat.completions.create(
                model=self.model, messages=messages, **extra
            )
        except openai.OpenAIError as exc:
            raise to_llm_error(exc, self) from exc
        if not completion.choices:
            raise LLMError("empty", f"{self!r}: completion without choices")
        choice = completion.choices[0]
        _, content = split_think(choice.message.content or "")
        content = content.strip()
        if not content:
            raise LLMError(
                "empty",
                f"{self!r}: completion without content (finish_reason={choice.finish_reason!r})",
            )
        return content

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _Turn:
    """One streamed assistant turn: deltas out as they come, tool calls assembled by index."""

    def __init__(self) -> None:
        self._think = ThinkParser()
        self._calls: dict[int, _PartialCall] = {}
        self._last_index = -1
        self.substantive = False
        self.finish_reason: str | None = None

    def feed(self, chunk: Any) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        for choice in chunk.choices or []:
            if getattr(choice, "index", 0) not in (0, None):
                continue  # n > 1 is never asked for; ignore stray alternatives
            delta = choice.delta
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            if delta is None:
                continue
            reasoning = _reasoning_of(delta)
            if reasoning:
                out.append(ReasoningDelta(reasoning))
            if delta.content:
                out.extend(self._think.feed(delta.content))
            for fragment in delta.tool_calls or []:
                self._add_fragment(fragment)
        self._note(out)
        return out

    def finish(self) -> list[ProviderEvent]:
        out: list[ProviderEvent] = list(self._think.finish())
        for index in sorted(self._calls):
            call = self._calls[index]
            out.append(
                ToolCallRequest(
                    id=call.id or f"call_{uuid.uuid4().hex[:24]}",
                    name=call.name,
                    arguments="".join(call.arguments),
                )
            )
        self._note(out)
        if self.finish_reason in ("length", "content_filter"):
            log.warning("model stopped early: finish_reason=%s", self.finish_reason)
        return out

    def _note(self, events: list[ProviderEvent]) -> None:
        for event in events:
            if isinstance(event, ToolCallRequest) or event.text.strip():
                self.substantive = True
                return

    def _add_fragment(self, fragment: Any) -> None:
        index = fragment.index
        if index is None:
            # Some servers leave out the index: a new id starts a new call.
            is_new = fragment.id and all(c.id != fragment.id for c in self._calls.values())
            index = self._last_index + 1 if is_new or self._last_index < 0 else self._last_index
        self._last_index = index
        call = self._calls.setdefault(index, _PartialCall())
        if fragment.id:
            call.id = fragment.id  # some servers repeat the id on every fragment
        function = fragment.function
        if function is None:
            return
        if function.name and function.name != call.name:
            # OpenAI sends the name whole, once; some servers repeat it or split it.
            call.name = call.name + function.name
        if function.arguments:
            call.arguments.append(function.arguments)


def _reasoning_of(delta: Any) -> str:
    extras = delta.model_extra or {}
    for name in _REASONING_FIELDS:
        value = extras.get(name)
        if isinstance(value, str) and value:
            return value  # servers in transition send both fields with the same text
    return ""


def _provider_message(exc: openai.APIError) -> str:
    """The server's own words, not the SDK's ``Error code: 429 - {...}`` dump."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(message, str) and message:
            return message
    return exc.message


def to_llm_error(exc: openai.OpenAIError, provider: OpenAIProvider) -> LLMError:
    """The one place an SDK exception becomes an ``LLMError``."""
    where = f"{provider.base_url or 'api.openai.com'} (model {provider.model})"
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", f"no answer within {provider.timeout:g}s from {where}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {cause}" if cause else exc.message
        if type(cause).__name__ in {"RemoteProtocolError", "ReadError"}:
            # The connection was up and broke: "cannot connect" would send the operator
            # looking at the wrong thing.
            return LLMError("unavailable", f"connection to {where} lost mid-answer: {detail}")
        return LLMError("unavailable", f"cannot connect to {where}: {detail}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        cause = f"HTTP {status} from {where}: {_provider_message(exc)}"
        if isinstance(exc, openai.RateLimitError) or status == 429:
            return LLMError("rate_limited", cause, status_code=status)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return LLMError("auth", cause, status_code=status)
        if status == 408:
            return LLMError("timeout", cause, status_code=status)
        if status >= 500:
            return LLMError("unavailable", cause, status_code=status)
        return LLMError("bad_request", cause, status_code=status)
    if isinstance(exc, openai.APIError):
        # An error event inside an otherwise successful stream.
        return LLMError("unavailable", f"error from {where} mid-stream: {_provider_message(exc)}")
    return LLMError("unavailable", f"{type(exc).__name__} from {where}: {exc}")
