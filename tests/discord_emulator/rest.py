"""REST API v10 routes: parsing, auth, fault injection, logging, then the world's operations.

Every request is logged (method, path, query, JSON body, file names, status) before the
test looks at it, and a route the emulator does not know answers Discord's 404 and is
logged as an error, so a bot calling something unemulated fails loudly, not silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from tests.discord_emulator import payloads
from tests.discord_emulator.errors import CANNOT_EXECUTE_ON_DM, DiscordAPIError, form_error
from tests.discord_emulator.faults import json_response
from tests.discord_emulator.gateway import DIRECT_MESSAGE_REACTIONS, GUILD_MESSAGE_REACTIONS
from tests.discord_emulator.state import UploadedFile
from tests.discord_emulator.validation import INTERACTION_FLAGS
from tests.discord_emulator.world.core import RequestRecord

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import DiscordWorld

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"


@dataclass
class ApiRequest:
    method: str
    path: str
    params: dict[str, str]
    query: Mapping[str, str]
    json: Any
    files: list[UploadedFile] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        """The JSON object body (``{}`` when there is none); a non-object is a form error."""
        if self.json is None:
            return {}
        if not isinstance(self.json, dict):
            raise form_error("_root", "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        return self.json

    def flag(self, name: str) -> bool:
        return self.query.get(name, "").lower() in ("1", "true")


@dataclass
class Reply:
    status: int
    body: Any = None


Handler = Callable[[ApiRequest], Awaitable[Any]]


def _route_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([a-z_]+)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


class RestApi:
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
            "discord emulator: unknown route %s %s (%s) - add it to tests/discord_emulator/rest.py",
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

    def _app_id(self, request: ApiRequest) -> None:
        if int(request.params["app_id"]) != self.world.application_id:
            raise DiscordAPIError(
                403, 20012, "You are not authorized to perform this action on this application"
            )

    def _message_payload(self, message: Any) -> dict[str, Any]:
        return payloads.message(message, self.world.store, url_base=self.world.url_base)

    # -- gateway, users, application ------------------------------------------

    async def get_gateway(self, request: ApiRequest) -> Any:
        return {"url": self.world.gateway_url}

    async def get_gateway_bot(self, request: ApiRequest) -> Any:
        return {
            "url": self.world.gateway_url,
            "shards": self.world.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.world.gateway.identify_count,
                "reset_after": 14400000,
                "max_concurrency": self.world.max_concurrency,
            },
        }

    async def get_me(self, request: ApiRequest) -> Any:
        me = payloads.user(self.world.bot_user)
        me.update(
            {"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "bio": ""}
        )
        return me

    async def get_user(self, request: ApiRequest) -> Any:
        return payloads.user(self.world.store.user(int(request.params["user_id"])))

    async def open_dm(self, request: ApiRequest) -> Any:
        """POST /users/@me/channels: the bot's DM channel with ``recipient_id`` (get or create)."""
        recipient = request.body().get("recipient_id")
        if recipient is None:
            raise form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        try:
            user_id = int(recipient)
        except (TypeError, ValueError):
            raise form_error(
                "recipient_id", "NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.'
            ) from None
        channel = self.world.dm_channel(user_id)
        return payloads.channel(channel, store=self.world.store)

    async def get_application(self, request: ApiRequest) -> Any:
        return payloads.application(
            app_id=self.world.application_id,
            bot=self.world.bot_user,
            owner=self.world.app_owner,
            flags=self.world.application_flags,
            guild_count=len(self.world.store.guilds),
        )

    # -- application commands -------------------------------------------------

    @staticmethod
    def _scope(request: ApiRequest) -> int | None:
        guild_id = request.params.get("guild_id")
        return int(guild_id) if guild_id is not None else None

    async def list_commands(self, request: ApiRequest) -> Any:
        self._app_id(request)
        return [payloads.command(c) for c in self.world.command_registry.list(self._scope(request))]

    async def put_commands(self, request: ApiRequest) -> Any:
        self._app_id(request)
        commands = self.world.command_registry.bulk_overwrite(
            self._scope(request), request.json or []
        )
        return [payloads.command(c) for c in commands]

    async def post_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.upsert(self._scope(request), request.body())
        return Reply(201, payloads.command(command))

    async def get_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.get(
            self._scope(request), int(request.params["command_id"])
        )
        return payloads.command(command)

    async def patch_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        command = self.world.command_registry.get(
            self._scope(request), int(request.params["command_id"])
        )
        body = {**command.body, **request.body()}
        updated = self.world.command_registry.upsert(self._scope(request), body)
        return payloads.command(updated)

    async def delete_command(self, request: ApiRequest) -> Any:
        self._app_id(request)
        self.world.command_registry.delete(self._scope(request), int(request.params["command_id"]))
        return None

    # -- guilds -----------------------------------------------------------------

    async def get_guild(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        return payloads.guild(guild, self.world.store)

    async def get_guild_channels(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        store = self.world.store
        return [
            payloads.channel(store.channels[c]) for c in guild.channel_ids if c in store.channels
        ]

    async def get_roles(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        return [payloads.role(r) for r in guild.roles.values()]

    async def list_members(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        limit = max(1, min(1000, int(request.query.get("limit", "1"))))
        after = int(request.query.get("after", "0"))
        members = sorted(
            (m for m in guild.members.values() if m.user_id > after), key=lambda m: m.user_id
        )
        return [payloads.member(m, self.world.store) for m in members[:limit]]

    async def get_member(self, request: ApiRequest) -> Any:
        member = self.world.store.member(
            int(request.params["guild_id"]), int(request.params["user_id"])
        )
        return payloads.member(member, self.world.store)

    async def active_threads(self, request: ApiRequest) -> Any:
        guild = self.world.store.guild(int(request.params["guild_id"]))
        bot_id = self.world.bot_user.id
        threads = [t for t in self.world.store.threads_of(guild.id) if not t.archived]
        return {
            "threads": [payloads.channel(t) for t in threads],
            "members": [
                payloads.thread_member(t, bot_id, t.create_timestamp)
                for t in threads
                if bot_id in t.member_ids
            ],
        }

    # -- channels and threads ---------------------------------------------------

    async def get_channel(self, request: ApiRequest) -> Any:
        channel = self.world.store.channel(int(request.params["channel_id"]))
        return payloads.channel(channel, member_of=self.world.bot_user.id, store=self.world.store)

    async def patch_channel(self, request: ApiRequest) -> Any:
        channel = await self.world.modify_channel(int(request.params["channel_id"]), request.body())
        return payloads.channel(channel, member_of=self.world.bot_user.id, store=self.world.store)

    async def delete_channel(self, request: ApiRequest) -> Any:
        channel = await self.world.delete_channel(int(request.params["channel_id"]))
        return payloads.channel(channel, store=self.world.store)

    async def typing(self, request: ApiRequest) -> Any:
        self.world.store.channel(int(request.params["channel_id"]))
        return None

    async def thread_from_message(self, request: ApiRequest) -> Any:
        thread = await self.world.start_thread(
            int(request.params["channel_id"]),
            self.world.bot_user.id,
            request.body(),
            message_id=int(request.params["message_id"]),
        )
        return Reply(201, payloads.channel(thread, member_of=self.world.bot_user.id))

    async def thread_without_message(self, request: ApiRequest) -> Any:
        thread = await self.world.start_thread(
            int(request.params["channel_id"]), self.world.bot_user.id, request.body()
        )
        return Reply(201, payloads.channel(thread, member_of=self.world.bot_user.id))

    async def archived_threads(self, request: ApiRequest) -> Any:
        parent_id = int(request.params["channel_id"])
        self.world.store.channel(parent_id)
        threads = [
            t
            for t in self.world.store.channels.values()
            if t.is_thread and t.parent_id == parent_id and t.archived and t.type == 11
        ]
        return {"threads": [payloads.channel(t) for t in threads], "members": [], "has_more": False}

    def _thread(self, request: ApiRequest) -> Any:
        thread = self.world.store.channel(int(request.params["channel_id"]))
        if not thread.is_thread:
            raise DiscordAPIError(400, 50024, "Cannot execute action on this channel type")
        return thread

    def _user_param(self, request: ApiRequest) -> int:
        raw = request.params["user_id"]
        return self.world.bot_user.id if raw == "@me" else self.world.store.user(int(raw)).id

    async def list_thread_members(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        return [
            payloads.thread_member(thread, uid, thread.create_timestamp)
            for uid in thread.member_ids
        ]

    async def join_thread(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        user_id = self._user_param(request)
        if user_id not in thread.member_ids:
            thread.member_ids.append(user_id)
        return None

    async def leave_thread(self, request: ApiRequest) -> Any:
        thread = self._thread(request)
        user_id = self._user_param(request)
        if user_id in thread.member_ids:
            thread.member_ids.remove(user_id)
        return None

    # -- messages -----------------------------------------------------------------

    async def list_messages(self, request: ApiRequest) -> Any:
        channel_id = int(request.params["channel_id"])
        self.world.store.channel(channel_id)
        messages = self.world.store.channel_messages(channel_id)
        limit = max(1, min(100, int(request.query.get("limit", "50"))))
        if "before" in request.query:
            before = int(request.query["before"])
            selected = [m for m in messages if m.id < before][-limit:]
        elif "after" in request.query:
            after = int(request.query["after"])
            selected = [m for m in messages if m.id > after][:limit]
        elif "around" in request.query:
            around = int(request.query["around"])
            older = [m for m in messages if m.id <= around]
            newer = [m for m in messages if m.id > around]
            half = limit // 2
            selected = older[-(limit - half) :] + newer[:half]
        else:
            selected = messages[-limit:]
        return [self._message_payload(m) for m in reversed(selected)]

    async def post_message(self, request: ApiRequest) -> Any:
        message = await self.world.create_message(
            int(request.params["channel_id"]),
            self.world.bot_user.id,
            request.body(),
            request.files,
        )
        return self._message_payload(message)

    async def get_message(self, request: ApiRequest) -> Any:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        return self._message_payload(message)

    async def patch_message(self, request: ApiRequest) -> Any:
        message = await self.world.bot_edit_message(
            int(request.params["channel_id"]),
            int(request.params["message_id"]),
            request.body(),
            request.files,
        )
        return self._message_payload(message)

    async def delete_message(self, request: ApiRequest) -> Any:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        channel = self.world.store.channel(message.channel_id)
        if channel.is_dm and message.author_id != self.world.bot_user.id:
            raise DiscordAPIError(
                403, CANNOT_EXECUTE_ON_DM, "Cannot execute action on a DM channel"
            )
        await self.world.remove_message(message)
        return None

    async def bulk_delete(self, request: ApiRequest) -> Any:
        channel_id = int(request.params["channel_id"])
        ids = request.body().get("messages") or []
        if not 2 <= len(ids) <= 100:
            raise form_error(
                "messages", "BASE_TYPE_BAD_LENGTH", "Must be between 2 and 100 in length."
            )
        messages = [self.world.store.message(channel_id, int(i)) for i in ids]
        await self.world.remove_messages(channel_id, messages)
        return None

    async def add_reaction(self, request: ApiRequest) -> Any:
        await self._react(request, add=True)
        return None

    async def remove_reaction(self, request: ApiRequest) -> Any:
        await self._react(request, add=False)
        return None

    async def _react(self, request: ApiRequest, *, add: bool) -> None:
        message = self.world.store.message(
            int(request.params["channel_id"]), int(request.params["message_id"])
        )
        emoji = unquote(request.params["emoji"])
        users = message.reactions.setdefault(emoji, [])
        bot_id = self.world.bot_user.id
        if add and bot_id not in users:
            users.append(bot_id)
        elif not add and bot_id in users:
            users.remove(bot_id)
        if not users:
            message.reactions.pop(emoji, None)
        name, _, emoji_id = emoji.partition(":")
        event: dict[str, Any] = {
            "user_id": str(bot_id),
            "channel_id": str(message.channel_id),
            "message_id": str(message.id),
            "emoji": {"id": emoji_id or None, "name": name},
            "burst": False,
            "type": 0,
        }
        if message.guild_id is not None:
            event["guild_id"] = str(message.guild_id)
        if add:
            event["message_author_id"] = str(message.author_id)
            event["burst_colors"] = []
        intent = (
            GUILD_MESSAGE_REACTIONS if message.guild_id is not None else DIRECT_MESSAGE_REACTIONS
        )
        await self.world.emit(
            "MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE",
            lambda s: dict(event) if s.has_intent(intent) else None,
            guild_id=message.guild_id,
        )

    # -- interactions and their webhooks ------------------------------------------

    async def callback(self, request: ApiRequest) -> Any:
        result = await self.world.interactions.callback(
            int(request.params["interaction_id"]),
            request.params["token"],
            request.body(),
            request.files,
            with_response=request.flag("with_response"),
        )
        return result  # None -> 204, as Discord answers without ?with_response

    async def execute_webhook(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = await self.world.interactions.followup(handle, request.body(), request.files)
        if request.flag("wait"):
            return self._message_payload(message)
        return None

    async def get_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        return self._message_payload(
            self.world.interactions.webhook_message(handle, request.params["message_id"])
        )

    async def patch_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = self.world.interactions.webhook_message(handle, request.params["message_id"])
        await self.world.edit_message_body(
            message, request.body(), request.files, allow_flags=INTERACTION_FLAGS
        )
        self.world.notify()
        return self._message_payload(message)

    async def delete_webhook_message(self, request: ApiRequest) -> Any:
        handle = self.world.interactions.by_webhook(
            int(request.params["webhook_id"]), request.params["token"]
        )
        message = self.world.interactions.webhook_message(handle, request.params["message_id"])
        await self.world.remove_message(message)
        return None
