"""The Chat Completions API's JSON as the fake answers it: completions, stream chunks (one
SSE event each), models and OpenAI's error body; also the completions path and tool call ids.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping

from aiohttp import web

from tests.fake_llm.replies import (
    JSON,
    TextReply,
    ToolCallsReply,
    error_body,
    generated_text,
    message_of,
    new_call_id,
    usage_of,
)

CHAT_PATH = "/v1/chat/completions"
_MODEL_CREATED = 1_700_000_000


def _call_ids(reply: TextReply | ToolCallsReply) -> list[str]:
    """Fixed per reply, so the streamed and non-streamed forms would carry the same ids."""
    if isinstance(reply, TextReply):
        return []
    return [call.id or new_call_id() for call in reply.calls]


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:29]}"


def _completion(
    reply: TextReply | ToolCallsReply, body: JSON, model: str, call_ids: list[str]
) -> JSON:
    choice = {
        "index": 0,
        "message": message_of(reply, call_ids),
        "logprobs": None,
        "finish_reason": reply.finish_reason,
    }
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage_of(body, generated_text(reply)),
        "service_tier": "default",
        "system_fingerprint": "fp_fake_llm",
    }


def _chunk_envelope(model: str, with_usage: bool) -> JSON:
    """Fields every chunk of one stream shares (same id and created, as OpenAI sends)."""
    envelope: JSON = {
        "id": _completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "service_tier": "default",
        "system_fingerprint": "fp_fake_llm",
    }
    if with_usage:
        envelope["usage"] = None
    return envelope


def _chunk_choice(delta: JSON, finish_reason: str | None) -> JSON:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


async def _send(response: web.StreamResponse, chunk: JSON) -> None:
    await response.write(f"data: {json.dumps(chunk)}\n\n".encode())


def _model_json(name: str) -> JSON:
    return {"id": name, "object": "model", "created": _MODEL_CREATED, "owned_by": "fake-llm"}


def _error_response(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = error_body(status, message, type_=type_, code=code)
    return web.json_response(body, status=status, headers=headers)
