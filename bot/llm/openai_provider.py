"""Any OpenAI-compatible Chat Completions endpoint, through the official ``openai`` SDK.

One provider serves OpenAI, Ollama, vLLM, llama.cpp, LM Studio and OpenRouter: they
differ in where reasoning arrives (``reasoning_content``, ``reasoning``, ``<think>`` tags
in the content, or a ``</think>`` whose opening tag was in the prompt template), all of
which are read here, and in how they word errors (``bot.llm.errors``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai

from bot.llm.base import (
    ChatProvider,
    ContentDelta,
    Finish,
    LLMError,
    ProviderEvent,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.llm.errors import stream_error, to_llm_error
from bot.llm.think import ThinkParser, ThinkPiece, split_think

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
    honours ``retry-after``. ``reasoning_open`` says the model's answers begin inside a
    think block opened by its prompt template (``LLM_REASONING_OPEN``); otherwise the
    provider learns it from the first answer that closes a block it never opened.
    """

    offline = False

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        model: str,
        timeout: float,
        max_retries: int = 2,
        *,
        reasoning_open: bool = False,
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
        # One provider talks to one model, so this is remembered per model, for the process.
        self.reasoning_open = reasoning_open

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    async def stream_chat(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> AsyncIterator[ProviderEvent]:
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        turn = _Turn(ThinkParser(opens_inside=self.reasoning_open))
        try:
            # The SDK's own client.post, not chat.completions.create: create() first walks the
            # whole body against its typed params (aliases, dates, files), which our plain JSON
            # never needs and which grows with the conversation, on the loop, before the
            # request leaves. Same route and body.
            # Chunks come as decoded JSON (cast to `object`: the SDK hands the data back as it
            # is), not as ChatCompletionChunk: a typed model built per chunk was a large share
            # of the loop's work per reply, for the few keys _Turn reads. The SDK still parses
            # the SSE, raises its APIError on an `error` event and maps transport errors.
            body = {"model": self.model, "messages": messages, "stream": True, **extra}
            stream: openai.AsyncStream[Any] = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
            try:
                async for chunk in stream:
                    failure = stream_error(chunk, stream.response.request)
                    if failure is not None:
                        raise failure
                    for event in turn.feed(chunk):
                        yield event
            finally:
                await stream.close()
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        except json.JSONDecodeError as exc:
            # A proxy or a half-compatible server sent an event that is not JSON.
            raise LLMError("unavailable", f"{self!r}: malformed stream event: {exc}") from exc
        events = turn.finish()
        self._learn(turn.think)
        if not turn.substantive:
            raise LLMError(
                "empty",
                f"{self!r}: the model sent no content, reasoning or tool call "
                f"(finish_reason={turn.finish_reason!r})",
            )
        for event in events:
            yield event
        yield Finish(turn.finish_reason)

    async def complete(self, messages: list[dict[str, Any]], *, json_mode: bool = False) -> str:
        extra: dict[str, Any] = {"response_format": {"type": "json_object"}} if json_mode else {}
        try:
            completion = await self._client.chat.completions.create(
                model=self.model, messages=messages, **extra
            )
        except openai.OpenAIError as exc:
            raise self._error(exc) from exc
        if not completion.choices:
            raise LLMError("empty", f"{self!r}: completion without choices")
        choice = completion.choices[0]
        parser = ThinkParser(opens_inside=self.reasoning_open)
        _, content = split_think(choice.message.content or "", parser=parser)
        self._learn(parser)
        content = content.strip()
        if not content:
            raise LLMError(
                "empty",
                f"{self!r}: completion without content (finish_reason={choice.finish_reason!r})",
            )
        return content

    def _learn(self, parser: ThinkParser) -> None:
        if parser.saw_orphan_close and not self.reasoning_open:
            self.reasoning_open = True
            log.info(
                "LLM: %s closes a think block its prompt template opens; its answers are now "
                "read as starting inside one (LLM_REASONING_OPEN=true says so from the start)",
                self.model,
            )

    def _error(self, exc: openai.OpenAIError) -> LLMError:
        where = f"{self.base_url or 'api.openai.com'} (model {self.model})"
        return to_llm_error(exc, where=where, timeout=self.timeout)

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
    """One streamed assistant turn: deltas out as they come, tool calls assembled by index.

    Chunks are the server's JSON as decoded: a key left out or sent as null reads as absent,
    and the dialects' own keys (``reasoning_content``, ``reasoning``) are read like the rest.
    """

    def __init__(self, think: ThinkParser | None = None) -> None:
        self.think = think or ThinkParser()
        self._calls: dict[int, _PartialCall] = {}
        self._last_index = -1
        self.substantive = False
        self.finish_reason: str | None = None

    def feed(self, chunk: dict[str, Any]) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index") not in (0, None):
                continue  # n > 1 is never asked for: ignore stray alternatives, non-objects
            delta = choice.get("delta")
            finish_reason = choice.get("finish_reason")
            if finish_reason:
                self.finish_reason = finish_reason
            if delta is None:
                continue
            reasoning = _reasoning_of(delta)
            if reasoning:
                out.extend(self.think.reasoning_elsewhere())
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if content:
                out.extend(self.think.feed(content))
            for fragment in delta.get("tool_calls") or ():
                self._add_fragment(fragment)
        self._note(out)
        return out

    def finish(self) -> list[ProviderEvent]:
        out: list[ProviderEvent] = list(self.think.finish(cut=self.finish_reason == "length"))
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

    def _note(self, events: list[ProviderEvent] | list[ThinkPiece]) -> None:
        for event in events:
            if isinstance(event, ToolCallRequest) or (
                isinstance(event, ReasoningDelta | ContentDelta) and event.text.strip()
            ):
                self.substantive = True
                return

    def _add_fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        call_id = fragment.get("id")
        if isinstance(index, str):
            # An index sent as a string ("0") is that number, as the SDK's typed chunk read it.
            with contextlib.suppress(ValueError):
                index = int(index)
        if index is None:
            # Some servers leave out the index: a new id starts a new call.
            is_new = call_id and all(c.id != call_id for c in self._calls.values())
            index = self._last_index + 1 if is_new or self._last_index < 0 else self._last_index
        self._last_index = index
        call = self._calls.setdefault(index, _PartialCall())
        if call_id:
            call.id = call_id  # some servers repeat the id on every fragment
        function = fragment.get("function")
        if function is None:
            return
        name = function.get("name")
        if name and name != call.name:
            # OpenAI sends the name whole, once; some servers repeat it or split it.
            call.name = call.name + name
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            if arguments:
                call.arguments.append(arguments)
        elif arguments is not None:
            # A few servers send the arguments as a JSON object, not a string.
            call.arguments.append(json.dumps(arguments))


def _reasoning_of(delta: dict[str, Any]) -> str:
    for name in _REASONING_FIELDS:
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value  # servers in transition send both fields with the same text
    return ""
