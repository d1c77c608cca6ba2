"""``DiscordEmulator``: the loopback server and the API tests drive it with.

One aiohttp app on 127.0.0.1 and a free port serves REST under ``/api/v10``, the gateway
at ``/`` (and ``/resume``, the ``resume_gateway_url``, so a test can see the client used
it), and attachment downloads. Everything a test does to the world goes through the same
operations the bot's requests go through (``world.core.DiscordWorld``).
"""

from __future__ import annotations

import logging
from typing import Any, Self

from aiohttp import web

from tests.discord_emulator.acting import ActingAsUsers
from tests.discord_emulator.controls import FaultControls
from tests.discord_emulator.observing import Observing
from tests.discord_emulator.rest.routing import RestApi
from tests.discord_emulator.spec import SpecMonitor, load_spec
from tests.discord_emulator.state import Attachment
from tests.discord_emulator.world.core import DiscordWorld, RequestRecord

log = logging.getLogger(__name__)


class DiscordEmulator(ActingAsUsers, Observing, FaultControls, DiscordWorld):
    """A Discord (REST v10 + gateway) for the real discord.py client, on loopback.

    Lifecycle and attachment downloads are here; what test users do is
    ``acting.ActingAsUsers``, what a test reads and waits for ``observing.Observing``, the
    faults it injects ``controls.FaultControls``."""

    def __init__(self, *, host: str = "127.0.0.1", **options: Any) -> None:
        super().__init__(**options)
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the emulator only listens on loopback")
        self.host = host
        self.port = 0
        self.rest = RestApi(self)
        # Every routed exchange is held to Discord's OpenAPI spec (tests/README.md).
        self.spec = SpecMonitor(load_spec())
        self._runner: web.AppRunner | None = None
        # serve_attachment_as(): what an attachment URL serves instead of the uploaded bytes.
        self._served_instead: dict[str, tuple[bytes, bool]] = {}
        self.attachment_bytes_sent: dict[int, int] = {}
        """Per attachment id, bytes written to the socket for its URL (fewer if the client
        hung up before the end)."""

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._attachment)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.url_base = f"http://{self.host}:{self.port}"
        self.gateway_url = f"ws://{self.host}:{self.port}"
        self.resume_gateway_url = f"ws://{self.host}:{self.port}/resume"
        log.info("discord emulator listening on %s", self.url_base)
        return self

    async def close(self) -> None:
        await self.flush_events()
        for task in list(self._tasks):
            await task
        for conn in list(self.gateway.connections):
            await conn.ws.close(code=1001, message=b"emulator shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def record_request(self, record: RequestRecord) -> None:
        self.spec.observe(record)
        super().record_request(record)

    @property
    def api_base(self) -> str:
        """What ``DISCORD_API_BASE`` must be set to."""
        return f"{self.url_base}/api/v10"

    def serve_attachment_as(
        self, filename: str, body: bytes, *, length_header: bool = False
    ) -> None:
        """Make the URL of every attachment named ``filename`` serve ``body`` while its message
        still announces the uploaded size: a body larger than its claim, as a hostile or broken
        CDN answer would be. Served in 64 KiB writes, chunked (no ``Content-Length``) unless
        ``length_header``; ``attachment_bytes_sent`` counts what got out."""
        self._served_instead[filename] = (body, length_header)

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        attachment_id = int(request.match_info["attachment_id"])
        for message in self.store.messages.values():
            for attachment in message.attachments:
                if attachment.id == attachment_id:
                    if attachment.filename in self._served_instead:
                        return await self._stream_attachment(request, attachment)
                    return web.Response(
                        body=attachment.data, headers={"Content-Type": attachment.content_type}
                    )
        return web.Response(status=404, text="404: Not Found")

    async def _stream_attachment(
        self, request: web.Request, attachment: Attachment
    ) -> web.StreamResponse:
        body, length_header = self._served_instead[attachment.filename]
        response = web.StreamResponse(headers={"Content-Type": attachment.content_type})
        if length_header:
            response.content_length = len(body)
        else:
            response.enable_chunked_encoding()
        self.attachment_bytes_sent[attachment.id] = 0
        try:
            await response.prepare(request)
            for start in range(0, len(body), 64 * 1024):
                piece = body[start : start + 64 * 1024]
                await response.write(piece)
                self.attachment_bytes_sent[attachment.id] += len(piece)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: that is what a capped download does
        return response
