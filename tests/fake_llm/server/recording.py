"""What the client sent: ``RecordedRequest`` and the request log a test inspects and waits on.

Every request is recorded whole before it is answered, so a test can check the context the
bot built (messages, tools, model, Authorization). A mixin of ``core.FakeLLM``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from tests.fake_llm.replies import (
    JSON,
)
from tests.fake_llm.server.payloads import CHAT_PATH

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedRequest:
    """What the client sent, kept whole so tests can assert on the bot's real context."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: JSON | None
    raw: bytes
    # When it arrived and when its first content delta was written (time.monotonic), for
    # benchmarks timing a client from outside.
    arrived: float = 0.0
    first_content_at: list[float] = field(default_factory=list, compare=False)

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


class RecordingOps:
    """Recording and inspecting requests: a mixin of ``core.FakeLLM``."""

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

    async def _record(self, request: web.Request) -> RecordedRequest:
        arrived = time.monotonic()
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
            arrived=arrived,
        )
        self.requests.append(recorded)
        async with self._arrived:
            self._arrived.notify_all()
        return recorded
