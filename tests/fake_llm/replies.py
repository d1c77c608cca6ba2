"""Scripted replies of the fake LLM and how each is rendered as Chat Completions JSON.

Rendering is kept apart from the HTTP server so the wire shapes can be read (and
compared with OpenAI's API reference) in one place, without any asyncio around them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

# Reasoning fields seen in the wild: DeepSeek and vLLM say `reasoning_content`; OpenRouter
# and newer vLLM say `reasoning`. The bot is meant to read either.
REASONING_FIELDS = ("reasoning_content", "reasoning")

# OpenAI's (type, code) for the statuses tests are likely to script.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def new_call_id() -> str:
    """An id shaped like OpenAI's, so code that logs or matches ids sees the real format."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model makes; a `str` argument goes out verbatim."""

    name: str
    arguments: dict[str, Any] | str
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The wire form: OpenAI always sends arguments as a JSON *string*."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class TextReply:
    """An answer, optionally preceded by reasoning (as a separate field or in <think> tags)."""

    text: str
    reasoning: str | None = None
    think_tags: bool = False
    reasoning_field: str = "reasoning_content"
    chunk_size: int = 8
    chunk_delay: float = 0.0
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ToolCallsReply:
    """One assistant turn that calls tools, with optional text streamed before the calls."""

    calls: tuple[ToolCall, ...]
    content: str | None = None
    chunk_size: int = 8
    chunk_delay: float = 0.0
    delay: float = 0.0
    finish_reason: str = "tool_calls"


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with OpenAI's error body; `retry_after` becomes the `retry-after` header."""

    status: int
    message: str
    retry_after: float | None = None
    type: str | None = None
    code: str | None = None


Reply = TextReply | ToolCallsReply | ErrorReply


def pieces(text: str, size: int) -> Iterator[str]:
    """Split text the way a tokenizer-fed stream would arrive: many small fragments."""
    size = max(1, size)
    for start in range(0, len(text), size):
        yield text[start : start + size]


def error_body(
    status: int, message: str, *, type_: str | None = None, code: str | None = None
) -> JSON:
    """OpenAI's error envelope; the SDK reads `error.message`, `type` and `code` from it."""
    default_type, default_code = _ERROR_KINDS.get(status, ("api_error", None))
    return {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def error_headers(reply: ErrorReply) -> dict[str, str]:
    """`retry-after` in seconds; the SDK accepts fractions, which keeps retry tests fast."""
    if reply.retry_after is None:
        return {}
    return {"retry-after": format(reply.retry_after, "g")}


# --- non-streaming -------------------------------------------------------------------------


def _visible_content(reply: TextReply) -> str:
    """What lands in `content`: with think tags the reasoning is part of the text itself."""
    if reply.think_tags and reply.reasoning is not None:
        return f"<think>{reply.reasoning}</think>{reply.text}"
    return reply.text


def _tool_call_json(call: ToolCall, call_id: str) -> JSON:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def message_of(reply: TextReply | ToolCallsReply, call_ids: list[str]) -> JSON:
    """The `choices[0].message` of a non-streaming `chat.completion`."""
    message: JSON = {"role": "assistant", "refusal": None, "annotations": []}
    if isinstance(reply, TextReply):
        message["content"] = _visible_content(reply)
        if reply.reasoning is not None and not reply.think_tags:
            message[reply.reasoning_field] = reply.reasoning
        return message
    message["content"] = reply.content
    message["tool_calls"] = [
        _tool_call_json(call, cid) for call, cid in zip(reply.calls, call_ids, strict=True)
    ]
    return message


def usage_of(request_body: JSON, completion_text: str) -> JSON:
    """Rough token counts (4 characters a token): enough for code that logs or sums usage."""
    prompt = max(1, len(json.dumps(request_body.get("messages", []))) // 4)
    completion = max(1, len(completion_text) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def generated_text(reply: TextReply | ToolCallsReply) -> str:
    """Everything the model "wrote", for the usage estimate."""
    if isinstance(reply, TextReply):
        return (reply.reasoning or "") + reply.text
    return (reply.content or "") + "".join(c.arguments_json for c in reply.calls)


# --- streaming -----------------------------------------------------------------------------


def _text_deltas(reply: TextReply) -> Iterator[JSON]:
    yield {"role": "assistant", "content": "", "refusal": None}
    if reply.reasoning is not None and reply.think_tags:
        # Ollama/Qwen emit the tags as tokens of their own, inside `content`.
        yield {"content": "<think>"}
        for piece in pieces(reply.reasoning, reply.chunk_size):
            yield {"content": piece}
        yield {"content": "</think>"}
    elif reply.reasoning is not None:
        for piece in pieces(reply.reasoning, reply.chunk_size):
            yield {reply.reasoning_field: piece}
    for piece in pieces(reply.text, reply.chunk_size):
        yield {"content": piece}


def _tool_call_deltas(reply: ToolCallsReply, call_ids: list[str]) -> Iterator[JSON]:
    """OpenAI's order: role, content (if any), then per call a header and argument fragments."""
    first: JSON = {"role": "assistant", "content": None, "refusal": None}
    if reply.content:
        first["content"] = ""
        yield first
        for piece in pieces(reply.content, reply.chunk_size):
            yield {"content": piece}
        first = {}
    for index, (call, cid) in enumerate(zip(reply.calls, call_ids, strict=True)):
        header = {
            "index": index,
            "id": cid,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        # The very first delta carries the role and the first call's header together.
        yield {**first, "tool_calls": [header]}
        first = {}
        for piece in pieces(call.arguments_json, reply.chunk_size):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def deltas_of(reply: TextReply | ToolCallsReply, call_ids: list[str]) -> list[JSON]:
    """The `delta` of every chunk but the last (which is `{}` with the finish reason)."""
    if isinstance(reply, TextReply):
        return list(_text_deltas(reply))
    return list(_tool_call_deltas(reply, call_ids))
