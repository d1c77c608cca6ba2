"""``DiscordEmulator``: the loopback server and the API tests drive it with.

One aiohttp app on 127.0.0.1 and a free port serves REST under ``/api/v10``, the gateway
at ``/`` (and ``/resume``, the ``resume_gateway_url``, so a test can see the client used
it), and attachment downloads. Everything a test does to the world goes through the same
operations the bot's requests go through (``world.core.DiscordWorld``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Self

from aiohttp import web

from tests.discord_emulator.faults import (
    ChannelRateLimit,
    GlobalRateLimit,
    RouteFault,
    compile_path,
)
from tests.discord_emulator.gateway.protocol import INVALID_SESSION, RECONNECT
from tests.discord_emulator.gateway.wire import GatewayFrame
from tests.discord_emulator.rest.routing import RestApi
from tests.discord_emulator.spec import SpecMonitor, load_spec
from tests.discord_emulator.state import Attachment, Channel, Message, UploadedFile
from tests.discord_emulator.world.core import DiscordWorld, RequestRecord

log = logging.getLogger(__name__)

Predicate = Callable[[dict[str, Any]], bool]
FileSpec = tuple[str, bytes] | UploadedFile


class DiscordEmulator(DiscordWorld):
    """A Discord (REST v10 + gateway) for the real discord.py client, on loopback."""

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

    # -- acting as users ------------------------------------------------------

    async def post_message(
        self,
        channel_id: int,
        author_id: int,
        content: str = "",
        *,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user posts in a channel, thread or DM; mentions are filled in as Discord does."""
        channel = self.store.channel(channel_id)
        if channel.is_dm:
            if int(author_id) not in channel.recipient_ids:
                raise LookupError(f"user {author_id} is not the recipient of DM {channel.id}")
        else:
            self.store.member(channel.guild_id, author_id)
        files = [
            f if isinstance(f, UploadedFile) else UploadedFile(f"files[{i}]", f[0], "", f[1])
            for i, f in enumerate(attachments)
        ]
        body: dict[str, Any] = {"content": content}
        if embeds:
            body["embeds"] = embeds
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
        message = await self.create_message(channel_id, author_id, body, files)
        return self.message_payload(message)

    async def post_dm(
        self,
        author_id: int,
        content: str = "",
        *,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user sends the bot a direct message (in ``dm_channel(author_id)``, made if needed).

        The bot gets MESSAGE_CREATE without ``guild_id`` or ``member``, only with the
        ``dm_messages`` intent, and with its content even without ``message_content``.
        """
        channel = self.dm_channel(author_id)
        return await self.post_message(
            channel.id,
            author_id,
            content,
            attachments=attachments,
            embeds=embeds,
            reply_to=reply_to,
        )

    async def edit_message(self, channel_id: int, message_id: int, content: str) -> dict[str, Any]:
        """The author edits a message (MESSAGE_UPDATE)."""
        message = self.store.message(channel_id, message_id)
        await self.edit_message_body(message, {"content": content}, [])
        return self.message_payload(message)

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """Someone deletes a message (MESSAGE_DELETE)."""
        await self.remove_message(self.store.message(channel_id, message_id))

    async def bulk_delete_messages(self, channel_id: int, message_ids: Iterable[int]) -> None:
        """A moderator deletes several messages at once (MESSAGE_DELETE_BULK)."""
        messages = [self.store.message(channel_id, int(i)) for i in message_ids]
        await self.remove_messages(channel_id, messages)

    async def create_thread(
        self,
        channel_id: int,
        name: str,
        *,
        owner_id: int,
        message_id: int | None = None,
        private: bool = False,
    ) -> Channel:
        """A user starts a thread (THREAD_CREATE), from a message or not."""
        body: dict[str, Any] = {"name": name, "type": 12 if private else 11}
        return await self.start_thread(channel_id, owner_id, body, message_id=message_id)

    async def archive_thread(self, thread_id: int, *, archived: bool = True) -> Channel:
        return await self.modify_channel(thread_id, {"archived": archived})

    # -- looking at the world -------------------------------------------------

    def get_message(self, message_id: int) -> Message:
        """The stored message, including ``allowed_mentions`` as the bot sent it."""
        return self.store.messages[int(message_id)]

    def files(self, message: dict[str, Any] | Message | int) -> dict[str, bytes]:
        """A message's attachments as ``{filename: content}`` (a payload, ``Message`` or id).

        E.g. ``emu.files(await handle.followup(0))["export.json"]``.
        """
        if isinstance(message, dict):
            message = int(message["id"])
        if not isinstance(message, Message):
            message = self.get_message(message)
        result: dict[str, bytes] = {}
        for attachment in message.attachments:
            if attachment.filename in result:
                raise ValueError(f"message {message.id} has two files named {attachment.filename}")
            result[attachment.filename] = attachment.data
        return result

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Live messages of a channel or thread, oldest first, as REST returns them."""
        return [self.message_payload(m) for m in self.store.channel_messages(int(channel_id))]

    def threads(self, parent_id: int | None = None) -> list[Channel]:
        return sorted(
            (
                c
                for c in self.store.channels.values()
                if c.is_thread and (parent_id is None or c.parent_id == parent_id)
            ),
            key=lambda c: c.id,
        )

    def requests_to(self, method: str, path: str) -> list[RequestRecord]:
        """Logged requests matching a method (``*`` for any) and a route template or path."""
        regex = compile_path(path)
        return [
            r
            for r in self.requests
            if method.upper() in ("*", r.method) and regex.fullmatch(r.path.rstrip("/") or "/")
        ]

    @property
    def unknown_routes(self) -> list[RequestRecord]:
        """Requests no emulated route answered (404/405 from the router itself)."""
        return [
            r for r in self.requests if r.route is None and not r.fault and r.status in (404, 405)
        ]

    @property
    def gateway_log(self) -> list[GatewayFrame]:
        return self.gateway.log

    @property
    def identify_count(self) -> int:
        return self.gateway.identify_count

    @property
    def resume_count(self) -> int:
        return self.gateway.resume_count

    # -- waiting ----------------------------------------------------------------

    async def wait_for_message(
        self,
        channel_id: int | None = None,
        *,
        author_id: int | None = None,
        any_author: bool = False,
        predicate: Predicate | None = None,
        include_threads: bool = False,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """The oldest message, existing or future, that matches; edits are re-checked.

        By default only the bot's messages match (``author_id`` picks another author,
        ``any_author=True`` anyone). ``channel_id=None`` means anywhere;
        ``include_threads`` widens a channel to its threads.
        """
        if author_id is None and not any_author:
            author_id = self.bot_user.id

        def in_scope(m: Message) -> bool:
            if channel_id is None or m.channel_id == int(channel_id):
                return True
            if include_threads:
                channel = self.store.channels.get(m.channel_id)
                return channel is not None and channel.parent_id == int(channel_id)
            return False

        def check() -> dict[str, Any] | None:
            for m in sorted(self.store.messages.values(), key=lambda m: m.id):
                if m.deleted or not in_scope(m):
                    continue
                if author_id is not None and m.author_id != int(author_id):
                    continue
                payload = self.message_payload(m)
                if predicate is None or predicate(payload):
                    return payload
            return None

        where = f"channel {channel_id}" if channel_id is not None else "any channel"
        return await self.wait_for(check, timeout=timeout, what=f"a message in {where}")

    async def wait_for_thread(
        self,
        parent_id: int | None = None,
        *,
        name: str | None = None,
        predicate: Callable[[Channel], bool] | None = None,
        timeout: float = 5.0,
    ) -> Channel:
        """The oldest thread (existing or future) under ``parent_id`` that matches."""

        def check() -> Channel | None:
            for thread in self.threads(parent_id):
                if name is not None and thread.name != name:
                    continue
                if predicate is None or predicate(thread):
                    return thread
            return None

        return await self.wait_for(check, timeout=timeout, what=f"a thread under {parent_id}")

    async def wait_for_gateway(
        self,
        name: str,
        *,
        direction: str | None = None,
        count: int = 1,
        timeout: float = 5.0,
    ) -> GatewayFrame:
        """The ``count``-th frame named ``name`` (event or opcode name, e.g. ``"RESUME"``)."""

        def check() -> GatewayFrame | None:
            frames = self.gateway_frames(name, direction=direction)
            return frames[count - 1] if len(frames) >= count else None

        return await self.wait_for(check, timeout=timeout, what=f"gateway frame {name} x{count}")

    async def wait_for_request(
        self,
        method: str,
        path: str,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> RequestRecord:
        """The ``count``-th logged request to a route (template or concrete path)."""

        def check() -> RequestRecord | None:
            matching = self.requests_to(method, path)
            return matching[count - 1] if len(matching) >= count else None

        return await self.wait_for(check, timeout=timeout, what=f"{method} {path} x{count}")

    # -- faults -------------------------------------------------------------------

    def fail_route(
        self,
        method: str,
        path: str,
        *,
        status: int = 429,
        retry_after: float = 0.3,
        times: int = 1,
        code: int | None = None,
        message: str | None = None,
        is_global: bool = False,
        via: bool = True,
    ) -> RouteFault:
        """Answer the next ``times`` matching requests with ``status`` (429 or 5xx usually).

        ``path`` is relative to the API base, a template (``/channels/{channel_id}/messages``)
        or a concrete path. ``via=False`` makes a 429 look like a Cloudflare ban.
        """
        fault = RouteFault(
            method,
            path,
            status,
            retry_after=retry_after,
            times=times,
            code=code,
            message=message,
            is_global=is_global,
            via=via,
        )
        self.faults.append(fault)
        return fault

    def limit_message_rate(self, limit: int = 5, per: float = 5.0) -> ChannelRateLimit:
        """Enforce Discord's per-channel message-write bucket (create/edit/delete), with headers.

        Off by default so tests run fast; turn it on to see how a bot's streaming edits
        fare under the limit discord.py then waits out (``.throttled`` counts 429s).
        """
        self.message_rate = ChannelRateLimit(limit=limit, per=per)
        return self.message_rate

    def limit_global_rate(self, limit: int = 50, per: float = 1.0) -> GlobalRateLimit:
        """Enforce Discord's global budget (about 50 requests per second per bot, every route
        but interaction callbacks and webhooks), answering the global 429 beyond it.

        Off by default. With ``limit_message_rate`` and ``DiscordEmulator(rest_latency=...)``
        it makes the emulator as strict and as slow as Discord for a load test.
        """
        self.global_rate = GlobalRateLimit(limit=limit, per=per)
        return self.global_rate

    @property
    def rate_limited(self) -> int:
        """429s answered by the enabled limits (per-channel and global) so far."""
        channel = self.message_rate.throttled if self.message_rate is not None else 0
        overall = self.global_rate.throttled if self.global_rate is not None else 0
        return channel + overall

    async def drop_gateway(self, code: int | None = 4000, *, replay_from: int | None = None) -> int:
        """Close the bot's gateway connections (``code=None``: abnormal, no close frame).

        ``replay_from=s``: the RESUME that follows replays every event from sequence
        number ``s`` on (inclusive), even those the bot had already received, with their
        original ``s``; by default only what the bot missed is replayed.
        """
        if replay_from is not None:
            self.gateway.replay_on_next_resume(replay_from)
        return await self.gateway.drop(code)

    async def send_reconnect(self, *, replay_from: int | None = None) -> None:
        """Op 7 RECONNECT: Discord asking the client to reconnect and resume.

        ``replay_from`` as for ``drop_gateway``.
        """
        if replay_from is not None:
            self.gateway.replay_on_next_resume(replay_from)
        await self.gateway.send_op(RECONNECT, None)

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION; unless ``resumable`` the sessions are forgotten first."""
        if not resumable:
            self.gateway.invalidate_all()
        await self.gateway.send_op(INVALID_SESSION, resumable)
