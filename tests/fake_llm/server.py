"""A loopback fake of an OpenAI-compatible Chat Completions server, with scripted replies.

Why: the bot reaches every model (OpenAI, Ollama, vLLM, ...) through the real ``openai``
SDK, so the tests keep that SDK in the loop and fake only the far end of the wire. Each
request pops the next scripted reply, and every request is recorded so a test can check
the context the bot built (messages, tools, model, Authorization).

Usage (the ``fake_llm`` fixture in ``tests/fake_llm/fixtures.py`` starts and closes one)::

    async def test_answer(fake_llm):
        fake_llm.queue_text("Hello there", reasoning="User greets; greet back.")
        client = openai.AsyncOpenAI(base_url=fake_llm.base_url, api_key=fake_llm.api_key)
        ...  # or: async with fake_llm.client(max_retries=0) as client:
        stream = await client.chat.completions.create(model="m", messages=[...], stream=True)
        ...
        await client.close()
        [request] = await fake_llm.wait_for_requests(1)
        assert request.messages[-1]["content"] == "hi"

Scripting (first in, first out; an empty queue answers ``default_reply``):

- ``queue_text(text, reasoning=..., think_tags=..., chunk_size=8, chunk_delay=0, delay=0)``:
  an answer, streamed in ``chunk_size``-character deltas. ``reasoning`` goes out as
  ``reasoning_content`` deltas (DeepSeek/vLLM; ``reasoning_field="reasoning"`` for the
  OpenRouter spelling) and in ``message.reasoning_content`` when not streaming; with
  ``think_tags=True`` it goes inside ``<think>...</think>`` at the start of ``content``
  (Ollama/Qwen), the tags arriving as deltas of their own.
- ``queue_tool_call(name, arguments)`` / ``queue_tool_calls([(name, arguments), ...],
  content=...)``: ``finish_reason="tool_calls"``; dict arguments are JSON-encoded, str
  arguments go out verbatim (use that for malformed JSON). Streamed as OpenAI does: a
  header delta (index, id, type, name) then argument fragments.
- ``queue_error(status, message, times=N, retry_after=seconds)``: an HTTP error with
  OpenAI's error body. The SDK retries 408/409/429/5xx ``max_retries`` times (default 2),
  and a retry pops the *next* entry: queue ``times=3`` to see the error raised, ``times=1``
  to see a retry succeed. Give ``retry_after`` (e.g. 0.01) or the SDK backs off ~0.5 s+.
- ``queue_raw(body, status=200, content_type=..., piece_size=None)``: bytes a real server
  sent, served verbatim (``raw.py``): a stream one SSE event per write, or every body in
  ``piece_size``-byte pieces, ``piece_delay`` seconds apart. For replaying recorded captures
  in their own dialect.
- ``queue_slow(text, delay)``: nothing is sent for ``delay`` seconds (client timeouts).
  The SDK retries timeouts too, so use ``max_retries=0`` or queue what the retry gets.

  A timed-out reply is consumed all the same. ``chunk_delay`` sleeps after every delta,
  the opening role delta included (a mid-stream read timeout).  A small ``chunk_size`` with a
  ``chunk_delay`` under the client's read timeout makes a model that trickles: every read is
  prompt, the whole answer is not. ``hangups`` counts streams the client closed midway.

Reading what the SDK gives back: it has no ``reasoning_content`` field, but keeps unknown
fields as pydantic extras, so ``delta.model_extra.get("reasoning_content")`` or
``getattr(delta, "reasoning_content", None)`` (the attribute exists only on deltas that
carry it); the same on ``choices[0].message`` when not streaming.

Inspecting: ``requests`` is every request in order (``.body``, ``.headers``, ``.path``,
shortcuts ``.messages``, ``.tools``, ``.model``, ``.stream``, ``.authorization``);
``chat_requests`` only the completions calls; ``wait_for_requests(n)`` waits for ``n``
completions calls (``path=None``: any). ``pending`` counts unserved replies, and closing
with some left logs a warning. ``FakeLLM(require_api_key=True)`` answers 401 unless
``Authorization: Bearer <api_key>``.

A request is served non-streaming unless it says ``stream: true``; ``model`` is echoed;
``stream_options.include_usage`` adds the final usage chunk. ``GET /v1/models`` lists
``models`` plus every model requested so far. Anything else is a 404 in OpenAI's error
format and a logged warning. Ignored on purpose: ``n`` (always one choice), ``stop``,
``max_tokens``, ``response_format``: the script decides.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import openai
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.fake_llm.raw import RawReply, serve_raw
from tests.fake_llm.replies import (
    JSON,
    ErrorReply,
    Reply,
    TextReply,
    ToolCall,
    ToolCallsReply,
    deltas_of,
    error_body,
    error_headers,
    generated_text,
    message_of,
    new_call_id,
    usage_of,
)

log = logging.getLogger(__name__)

DEFAULT_REPLY = "This is the fake model's default reply."
DEFAULT_MODEL = "fake-model"
DEFAULT_API_KEY = "test-key"
CHAT_PATH = "/v1/chat/completions"
_HOST = "127.0.0.1"
_MODEL_CREATED = 1_700_000_000
# Long enough for a handler to finish writing, short enough that a test never waits on it.
_SHUTDOWN_TIMEOUT = 1.0


@dataclass(frozen=True)
class RecordedRequest:
    """What the client sent, kept whole so tests can assert on the bot's real context."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: JSON | None
    raw: bytes

    @property
    def messages(self) -> list[JSON]:
        return list((self.body or {}).get("messages") or [])

    @property
    def tools(self) -> list[JSON] | None:
        return (self.body or {}).get("tools")

    @property
    def model(self) -> str | None:
        return (self.body or {}).get("model")

    @property
    def stream(self) -> bool:
        return bool((self.body or {}).get("stream"))

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


ToolCallSpec = ToolCall | tuple[str, Mapping[str, Any] | str]


class FakeLLM:
    """The fake server; an async context manager that starts and stops it."""

    def __init__(
        self,
        *,
        default_reply: str = DEFAULT_REPLY,
        model: str = DEFAULT_MODEL,
        models: Iterable[str] = (),
        api_key: str = DEFAULT_API_KEY,
        require_api_key: bool = False,
    ) -> None:
        self.default_reply = default_reply
        self.model = model
        self.models: list[str] = [model, *models]
        self.api_key = api_key
        # Off by default: local servers (Ollama, llama.cpp) ignore the key, and so may tests.
        self.require_api_key = require_api_key
        self.requests: list[RecordedRequest] = []
        self.hangups = 0  # streams the client closed before their end
        self._queue: deque[Reply | RawReply] = deque()
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port, so parallel test runs never collide."""
        if self._runner is not None:
            raise RuntimeError("FakeLLM already started")
        # handler_cancellation: a client that timed out and hung up must not leave a
        # handler sleeping through a slow reply until shutdown.
        runner = web.AppRunner(
            self._make_app(), handler_cancellation=True, shutdown_timeout=_SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, _HOST, 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        log.info("fake LLM listening on %s", self.base_url)

    async def close(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self._queue:
            # A reply nobody asked for usually means the bot made fewer calls than the
            # test expected; say so where the failing test's log will show it.
            log.warning("fake LLM closed with %d scripted replies unused", len(self._queue))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeLLM not started: use `async with FakeLLM()` or the fixture")
        return self._port

    @property
    def base_url(self) -> str:
        """What goes to ``openai.AsyncOpenAI(base_url=...)``."""
        return f"http://{_HOST}:{self.port}/v1"

    def client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A real SDK client aimed here; the caller closes it (``async with`` works)."""
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, **kwargs)

    # --- scripting -------------------------------------------------------------------------

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

    # --- inspection ------------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Only the completions calls: a health check on /v1/models must not shift indexes."""
        return [r for r in self.requests if r.method == "POST" and r.path == CHAT_PATH]

    async def wait_for_requests(
        self,
        n: int,
        timeout: float = 5.0,
        *,
        path: str | None = CHAT_PATH,
    ) -> list[RecordedRequest]:
        """Wait until ``n`` requests to ``path`` (None: any path) arrived; return them all.

        For the bot's replies that happen in the background of a Discord event, where the
        test has nothing else to await.
        """

        def matching() -> list[RecordedRequest]:
            return [r for r in self.requests if path is None or r.path == path]

        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: len(matching()) >= n)
        except TimeoutError:
            seen = [f"{r.method} {r.path}" for r in self.requests]
            raise TimeoutError(
                f"expected {n} requests to {path or 'any path'} within {timeout}s; got {seen}"
            ) from None
        return matching()

    # --- HTTP ------------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        return app

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        body: JSON | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                log.warning(
                    "fake LLM: %s %s body is not JSON: %r", request.method, request.path, raw[:200]
                )
            else:
                body = parsed if isinstance(parsed, dict) else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            raw=raw,
        )
        self.requests.append(recorded)
        async with self._arrived:
            self._arrived.notify_all()
        return recorded

    def _rejection(self, recorded: RecordedRequest) -> web.Response | None:
        """A 4xx for a request a real server would refuse, before it consumes a reply."""
        if self.require_api_key and recorded.authorization != f"Bearer {self.api_key}":
            return _error_response(401, "Incorrect API key provided.")
        if recorded.body is None:
            return _error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(recorded.body.get("messages"), list):
            log.warning("fake LLM: chat completion without a messages list: %r", recorded.body)
            return _error_response(
                400, "Missing required parameter: 'messages'.", code="missing_required_parameter"
            )
        return None

    def _next_reply(self) -> Reply | RawReply:
        if self._queue:
            return self._queue.popleft()
        log.info("fake LLM: queue empty, sending the default reply")
        return TextReply(self.default_reply)

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        rejection = self._rejection(recorded)
        if rejection is not None:
            return rejection
        body = recorded.body or {}
        reply = self._next_reply()
        if isinstance(reply, RawReply):
            return await serve_raw(request, reply)
        if isinstance(reply, ErrorReply):
            return _error_response(
                reply.status,
                reply.message,
                type_=reply.type,
                code=reply.code,
                headers=error_headers(reply),
            )
        await asyncio.sleep(reply.delay)
        model = body.get("model") or self.model
        call_ids = _call_ids(reply)
        if body.get("stream"):
            return await self._stream(request, reply, body, model, call_ids)
        return web.json_response(_completion(reply, body, model, call_ids))

    async def _stream(
        self,
        request: web.Request,
        reply: TextReply | ToolCallsReply,
        body: JSON,
        model: str,
        call_ids: list[str],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        envelope = _chunk_envelope(model, with_usage)
        try:
            for delta in deltas_of(reply, call_ids):
                await _send(response, {**envelope, "choices": [_chunk_choice(delta, None)]})
                await asyncio.sleep(reply.chunk_delay)
            final = _chunk_choice({}, reply.finish_reason)
            await _send(response, {**envelope, "choices": [final]})
            if with_usage:
                usage = usage_of(body, generated_text(reply))
                await _send(response, {**envelope, "choices": [], "usage": usage})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            self.hangups += 1
            log.info("fake LLM: client hung up mid-stream")
        except asyncio.CancelledError:  # handler_cancellation: the client closed the stream
            self.hangups += 1
            raise
        return response

    async def _list_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        data = [_model_json(name) for name in self._known_models()]
        return web.json_response({"object": "list", "data": data})

    async def _get_model(self, request: web.Request) -> web.Response:
        await self._record(request)
        name = request.match_info["model"]
        if name not in self._known_models():
            return _error_response(404, f"The model '{name}' does not exist.")
        return web.json_response(_model_json(name))

    def _known_models(self) -> list[str]:
        """Configured models plus any a client asked for: the fake serves every name."""
        names = dict.fromkeys(self.models)
        names.update(dict.fromkeys(r.model for r in self.chat_requests if r.model))
        return list(names)

    async def _unknown_route(self, request: web.Request) -> web.Response:
        await self._record(request)
        log.warning(
            "fake LLM: no route for %s %s (the bot called an endpoint the fake lacks)",
            request.method,
            request.path,
        )
        return _error_response(
            404, f"Invalid URL ({request.method} {request.path})", type_="invalid_request_error"
        )


# --- helpers ---------------------------------------------------------------------------------


def _as_arguments(arguments: Mapping[str, Any] | str) -> dict[str, Any] | str:
    return arguments if isinstance(arguments, str) else dict(arguments)


def _as_tool_call(spec: ToolCallSpec) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    name, arguments = spec
    return ToolCall(name, _as_arguments(arguments))


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


__all__ = [
    "CHAT_PATH",
    "DEFAULT_API_KEY",
    "DEFAULT_MODEL",
    "DEFAULT_REPLY",
    "FakeLLM",
    "RecordedRequest",
    "ToolCall",
]
