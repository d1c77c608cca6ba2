"""REST API v10 routing: the route table, parsing, auth, fault injection, rate limits, logging.

Every request is logged (method, path, query, JSON body, file names, status) before the
test looks at it, and a route the emulator does not know answers Discord's 404 and is
logged as an error, so a bot calling something unemulated fails loudly, not silently.
The handlers are per resource, in this package's other modules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.discord_emulator.errors import DiscordAPIError
from tests.discord_emulator.faults import json_response
from tests.discord_emulator.rest.application import ApplicationHandlers
from tests.discord_emulator.rest.channels import ChannelHandlers
from tests.discord_emulator.rest.guilds import GuildHandlers
from tests.discord_emulator.rest.handlers import ApiRequest, Handler, Reply
from tests.discord_emulator.rest.interactions import InteractionHandlers
from tests.discord_emulator.rest.messages import MessageHandlers
from tests.discord_emulator.state import UploadedFile
from tests.discord_emulator.world.core import RequestRecord

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"


def _route_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([a-z_]+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


class RestApi(
    ApplicationHandlers, GuildHandlers, ChannelHandlers, MessageHandlers, InteractionHandlers
):
    """The route table and the aiohttp handler in front of it."""

    def __init__(self, world: DiscordWorld) -> None:
        self.world = world
        self.routes: list[tuple[str, str, re.Pattern[str], Handler, bool]] = []
        w = self
        table: list[tuple[str, str, Handler, bool]] = [
            # (method, template, handler, needs bot auth)
            ("GET", "/gateway", w.get_gateway, False),
            ("GET", "/gateway/bot", w.get_gateway_bot, True),
            ("GET", "/users/@me", w.get_me, True),
            ("GET", "/users/{user_id}", w.get_user, True),
            ("POST", "/users/@me/channels", w.open_dm, True),
            ("GET", "/oauth2/applications/@me", w.get_application, True),
            ("GET", "/applications/@me", w.get_application, True),
            ("GET", "/applications/{app_id}/commands", w.list_commands, True),
            ("PUT", "/applications/{app_id}/commands", w.put_commands, True),
            ("POST", "/applications/{app_id}/commands", w.post_command, True),
            ("GET", "/applications/{app_id}/commands/{command_id}", w.get_command, True),
            ("PATCH", "/applications/{app_id}/commands/{command_id}", w.patch_command, True),
            ("DELETE", "/applications/{app_id}/commands/{command_id}", w.delete_command, True),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", w.list_commands, True),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", w.put_commands, True),
            ("POST", "/applications/{app_id}/guilds/{guild_id}/commands", w.post_command, True),
            (
                "GET",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                w.get_command,
                True,
            ),
            (
                "PATCH",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                w.patch_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{app_id}/guilds/{guild_id}/commands/{command_id}",
                w.delete_command,
                True,
            ),
            ("GET", "/guilds/{guild_id}", w.get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", w.get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", w.get_roles, True),
            ("GET", "/guilds/{guild_id}/members", w.list_members, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", w.get_member, True),
            ("GET", "/guilds/{guild_id}/threads/active", w.active_threads, True),
            ("GET", "/channels/{channel_id}", w.get_channel, True),
            ("PATCH", "/channels/{channel_id}", w.patch_channel, True),
            ("DELETE", "/channels/{channel_id}", w.delete_channel, True),
            ("POST", "/channels/{channel_id}/typing", w.typing, True),
            ("GET", "/channels/{channel_id}/messages", w.list_messages, True),
            ("POST", "/channels/{channel_id}/messages", w.post_message, True),
            ("POST", "/channels/{channel_id}/messages/bulk-delete", w.bulk_delete, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", w.get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", w.patch_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", w.delete_message, True),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                w.add_reaction,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                w.remove_reaction,
                True,
            ),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                w.thread_from_message,
                True,
            ),
            ("POST", "/channels/{channel_id}/threads", w.thread_without_message, True),
            ("GET", "/channels/{channel_id}/threads/archived/public", w.archived_threads, True),
            ("GET", "/channels/{channel_id}/thread-members", w.list_thread_members, True),
            ("PUT", "/channels/{channel_id}/thread-members/{user_id}", w.join_thread, True),
            ("DELETE", "/channels/{channel_id}/thread-members/{user_id}", w.leave_thread, True),
            ("POST", "/interactions/{interaction_id}/{token}/callback", w.callback, False),
            ("POST", "/webhooks/{webhook_id}/{token}", w.execute_webhook, False),
            (
                "GET",
                "/webhooks/{webhook_id}/{token}/messages/{message_id}",
                w.get_webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{token}/messages/{message_id}",
                w.patch_webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{token}/messages/{message_id}",
                w.delete_webhook_message,
                False,
            ),
        ]
        for method, template, handler, auth in table:
            self.routes.append((method, template, _route_regex(template), handler, auth))

    # -- plumbing -------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        method = request.method.upper()
        full_path = request.path
        path = full_path[len(API_PREFIX) :] if full_path.startswith(API_PREFIX + "/") else None
        record = RequestRecord(
            method=method,
            path=path if path is not None else full_path,
            query=dict(request.query),
            json=None,
            files=[],
            status=0,
            response=None,
            time=started,
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("user-agent", "content-type", "x-audit-log-reason")
            },
        )
        try:
            response = await self._handle(request, record, path)
            if self.world.rest_latency > 0:
                # After the world changed, before the client hears: a round trip's delay.
                await asyncio.sleep(self.world.rest_latency)
        except Exception:
            log.exception("discord emulator: handler crashed on %s %s", method, full_path)
            response = json_response({"message": "500: Internal Server Error", "code": 0}, 500)
        record.status = response.status
        body = getattr(response, "body", None)
        if isinstance(body, bytes) and body:
            try:
                record.response = json.loads(body)
            except ValueError:
                record.response = body.decode(errors="replace")
        log.info(
            "REST %s %s -> %s%s",
            method,
            record.path,
            response.status,
            " (injected)" if record.fault else "",
        )
        self.world.record_request(record)
        return response

    async def _handle(
        self, request: web.Request, record: RequestRecord, path: str | None
    ) -> web.StreamResponse:
        try:
            record.json, files = await self._parse_body(request)
        except DiscordAPIError as exc:
            return json_response(exc.body(), exc.status)
        record.files = [f.filename for f in files]
        if path is None:
            return self._unknown(record, "not under " + API_PREFIX)
        for fault in self.world.faults:
            if fault.matches(record.method, path):
                record.fault = True
                return fault.respond()
        matched_path = False
        for method, template, regex, handler, needs_auth in self.routes:
            m = regex.fullmatch(path)
            if m is None:
                continue
            matched_path = True
            if method != record.method:
                continue
            record.route = template
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.world.token}":
                return json_response({"message": "401: Unauthorized", "code": 0}, 401)
            overall = self.world.global_rate
            refused = overall.acquire(path) if overall is not None else None
            if refused is not None:
                record.fault = True
                return refused
            rate = self.world.message_rate
            limited = rate.acquire(record.method, path) if rate is not None else None
            if isinstance(limited, web.Response):
                record.fault = True
                return limited
            response = await self._call(handler, path, m.groupdict(), request, record.json, files)
            if isinstance(limited, dict):
                response.headers.update(limited)
            return response
        if matched_path:
            log.error("discord emulator: method %s not emulated for %s", record.method, record.path)
            return json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
        return self._unknown(record, "no such route")

    async def _call(
        self,
        handler: Handler,
        path: str,
        params: dict[str, str],
        request: web.Request,
        body: Any,
        files: list[UploadedFile],
    ) -> web.Response:
        api_request = ApiRequest(
            method=request.method.upper(),
            path=path,
            params=params,
            query=request.query,
            json=body,
            files=files,
        )
        try:
            result = await handler(api_request)
        except DiscordAPIError as exc:
            return json_response(exc.body(), exc.status)
        if isinstance(result, Reply):
            if result.body is None:
                return web.Response(status=result.status)
            return json_response(result.body, result.status)
        if result is None:
            return web.Response(status=204)
        return json_response(result)

    def _unknown(self, record: RequestRecord, why: str) -> web.Response:
        log.error(
            "discord emulator: unknown route %s %s (%s)"
            " - add it to tests/discord_emulator/rest/routing.py",
            record.method,
            record.path,
            why,
        )
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    async def _parse_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        ctype = request.content_type
        if ctype == "multipart/form-data":
            payload: Any = None
            files: list[UploadedFile] = []
            reader = await request.multipart()
            async for part in reader:
                name = getattr(part, "name", None) or ""
                data = await part.read()  # type: ignore[union-attr]
                if name == "payload_json":
                    payload = self._loads(bytes(data))
                elif getattr(part, "filename", None) is not None:
                    files.append(
                        UploadedFile(
                            field_name=name,
                            filename=part.filename or name,  # type: ignore[union-attr]
                            content_type=part.headers.get("Content-Type", ""),
                            data=bytes(data),
                        )
                    )
            return payload, files
        raw = await request.read()
        if not raw:
            return None, []
        if ctype == "application/json":
            return self._loads(raw), []
        return None, []

    @staticmethod
    def _loads(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise DiscordAPIError(400, 50109, "The request body contains invalid JSON.") from None
