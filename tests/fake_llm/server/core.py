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
import logging
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import openai
from aiohttp import web

from tests.fake_llm.raw import RawReply
from tests.fake_llm.replies import (
    Reply,
)
from tests.fake_llm.server.recording import RecordedRequest, RecordingOps
from tests.fake_llm.server.routes import RouteOps
from tests.fake_llm.server.script import ScriptOps

log = logging.getLogger(__name__)

DEFAULT_REPLY = "This is the fake model's default reply."
DEFAULT_MODEL = "fake-model"
DEFAULT_API_KEY = "test-key"
_HOST = "127.0.0.1"
# Long enough for a handler to finish writing, short enough that a test never waits on it.
_SHUTDOWN_TIMEOUT = 1.0


class FakeLLM(ScriptOps, RecordingOps, RouteOps):
    """The fake server; an async context manager that starts and stops it."""

    def __init__(
        self,
        *,
        default_reply: str = DEFAULT_REPLY,
        model: str = DEFAULT_MODEL,
        models: Iterable[str] = (),
        api_key: str = DEFAULT_API_KEY,
        require_api_key: bool = False,
        default_delay: float = 0.0,
        default_chunk_delay: float = 0.0,
        default_chunk_size: int = 8,
    ) -> None:
        self.default_reply = default_reply
        # How the default reply is served: a think time, then deltas this far apart (a model
        # that streams, for load benchmarks; 0 for the tests).
        self.default_delay = default_delay
        self.default_chunk_delay = default_chunk_delay
        self.default_chunk_size = default_chunk_size

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
