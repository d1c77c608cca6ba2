"""Turning the ``openai`` SDK's exceptions into ``LLMError``: one kind for users, the
server's own words for the operator.

Servers word their errors differently: OpenAI's ``{"error": {"message", "type", "code"}}``,
a bare string (LM Studio: ``{"error": "..."}``), OpenRouter's upstream reason in
``error.metadata.raw``, and errors *inside* a 200 stream (Groq's ``event: error`` with
``status_code``, OpenRouter's chunk with ``error.code``) whose status is in the body, not
on the response. Each is read here, so the log line names the real cause and a refused
request inside a stream is a bad request, not "can't reach the model".
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionChunk

from bot.llm.base import LLMError, LLMErrorKind

log = logging.getLogger(__name__)

__all__ = ["error_status", "provider_message", "stream_error", "to_llm_error"]

# The keys every chunk has (the SDK's typed chunk declares them): the rest of a bare error
# event is the error's body, as the typed chunk's extras were.
_CHUNK_KEYS = frozenset(ChatCompletionChunk.model_fields)
# An upstream's own words can be long (a whole HTML page, a moderation report).
_DETAIL_LIMIT = 400
# Error ``type``/``code`` strings some servers send instead of a numeric status.
_KIND_OF_CODE: dict[str, LLMErrorKind] = {
    "rate_limit_exceeded": "rate_limited",
    "rate_limit_error": "rate_limited",
    "insufficient_quota": "rate_limited",
    "server_error": "unavailable",
    "overloaded_error": "unavailable",
    "service_unavailable": "unavailable",
    "invalid_request_error": "bad_request",
    "context_length_exceeded": "bad_request",
    "authentication_error": "auth",
    "invalid_api_key": "auth",
    "permission_error": "auth",
}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _inner(body: object) -> object:
    """The error object of a body: the SDK unwraps ``{"error": ...}`` for HTTP errors but
    a proxy may nest it once more."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict | str):
        return body["error"]
    return body


def provider_message(exc: openai.APIError) -> str:
    """The server's own words, not the SDK's ``Error code: 429 - {...}`` dump."""
    error = _inner(exc.body)
    if isinstance(error, str) and error.strip():
        return _short(error)
    if not isinstance(error, dict):
        return exc.message
    message = error.get("message")
    if not (isinstance(message, str) and message):
        message = error.get("detail")  # FastAPI-style servers
    parts = [_short(message) if isinstance(message, str) and message else exc.message]
    code = error.get("code")
    if isinstance(code, str) and code and not code.isdigit() and code not in parts[0]:
        parts.append(f"[{code}]")
    metadata = error.get("metadata")
    if isinstance(metadata, dict):
        # OpenRouter: which upstream refused, in its own words.
        upstream = metadata.get("provider_name")
        raw = metadata.get("raw")
        if raw is not None and not isinstance(raw, str):
            raw = json.dumps(raw, ensure_ascii=False)
        if upstream or raw:
            label = f"upstream {upstream}" if upstream else "upstream"
            parts.append(f"({label}: {_short(raw)})" if raw else f"({label})")
    return " ".join(parts)


def stream_error(chunk: dict[str, Any], request: Any) -> openai.APIError | None:
    """An error sent as a bare event the SDK takes for a chunk (vLLM before 0.10:
    ``{"object": "error", "message": ..., "code": 400}``, no ``error`` key).

    ``chunk`` is the event's decoded JSON; the error's body is the event without the keys
    a chunk has itself (``object``, ``id``, ``model``...)."""
    if chunk.get("object") != "error":
        return None
    body = {key: value for key, value in chunk.items() if key not in _CHUNK_KEYS}
    message = body.get("message")
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    return openai.APIError(message, request, body=body)


def error_status(body: object) -> int | None:
    """The HTTP status an error inside a stream carries in its body, if any."""
    error = _inner(body)
    if not isinstance(error, dict):
        return None
    for key in ("status_code", "status", "code"):
        value = error.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and 100 <= value <= 599:
            return value
        if isinstance(value, str) and value.isdigit() and 100 <= int(value) <= 599:
            return int(value)
    return None


def _kind_of_status(status: int) -> LLMErrorKind:
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "unavailable"
    return "bad_request"


def _kind_of_body(body: object) -> LLMErrorKind | None:
    error = _inner(body)
    if not isinstance(error, dict):
        return None
    for key in ("code", "type"):
        value: Any = error.get(key)
        if isinstance(value, str) and value in _KIND_OF_CODE:
            return _KIND_OF_CODE[value]
    return None


def to_llm_error(exc: openai.OpenAIError, *, where: str, timeout: float) -> LLMError:
    """The one place an SDK exception becomes an ``LLMError``; ``where`` names the server."""
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", f"no answer within {timeout:g}s from {where}")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {cause}" if cause else exc.message
        if isinstance(cause, httpx2.RemoteProtocolError | httpx2.ReadError):
            # The connection was up and broke: "cannot connect" would send the operator
            # looking at the wrong thing.
            return LLMError("unavailable", f"connection to {where} lost mid-answer: {detail}")
        return LLMError("unavailable", f"cannot connect to {where}: {detail}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        cause = f"HTTP {status} from {where}: {provider_message(exc)}"
        if isinstance(exc, openai.RateLimitError):
            return LLMError("rate_limited", cause, status_code=status)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return LLMError("auth", cause, status_code=status)
        return LLMError(_kind_of_status(status), cause, status_code=status)
    if isinstance(exc, openai.APIError):
        # An error event inside a stream that began 200 OK: its status is in the body.
        status = error_status(exc.body)
        said = f"error {status}" if status else "error"
        cause = f"{said} from {where} mid-stream: {provider_message(exc)}"
        kind = _kind_of_status(status) if status else _kind_of_body(exc.body)
        return LLMError(kind or "unavailable", cause, status_code=status)
    return LLMError("unavailable", f"{type(exc).__name__} from {where}: {exc}")
