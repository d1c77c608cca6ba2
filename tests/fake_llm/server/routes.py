"""The fake's HTTP endpoints: chat completions (JSON or an SSE stream), models, and a loud
404 for anything else.

A request a real server would refuse gets its 4xx before it consumes a scripted reply; a
stream the client closes midway counts as a hangup. A mixin of ``core.FakeLLM``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from tests.fake_llm.raw import RawReply, serve_raw
from tests.fake_llm.replies import (
    JSON,
    ErrorReply,
    TextReply,
    ToolCallsReply,
    deltas_of,
    error_headers,
    generated_text,
    usage_of,
)
from tests.fake_llm.server.payloads import (
    CHAT_PATH,
    _call_ids,
    _chunk_choice,
    _chunk_envelope,
    _completion,
    _error_response,
    _model_json,
    _send,
)
from tests.fake_llm.server.recording import RecordedRequest

log = logging.getLogger(__name__)


class RouteOps:
    """The aiohttp application and its handlers: a mixin of ``core.FakeLLM``."""

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat_completions)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        return app

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
            return await self._stream(request, reply, body, model, call_ids, recorded)
        return web.json_response(_completion(reply, body, model, call_ids))

    async def _stream(
        self,
        request: web.Request,
        reply: TextReply | ToolCallsReply,
        body: JSON,
        model: str,
        call_ids: list[str],
        recorded: RecordedRequest,
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
                if delta.get("content") and not recorded.first_content_at:
                    recorded.first_content_at.append(time.monotonic())
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
