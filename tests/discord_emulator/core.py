"""The emulator's behaviour: what happens to the world when the bot or a test acts.

REST handlers and the test-side API both go through these operations, so a message a
test posts and a message the bot posts are stored, mention-parsed and dispatched the
same way. Gateway events are emitted through one ordered queue: what happened first is
dispatched first, whoever caused it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import logging
import mimetypes
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.discord_emulator import payloads
from tests.discord_emulator.commands import (
    build_options,
    nest_subcommands,
    validate_command_body,
)
from tests.discord_emulator.errors import (
    ALREADY_ACKNOWLEDGED,
    CANNOT_EDIT_OTHERS_MESSAGE,
    EMPTY_MESSAGE,
    THREAD_ALREADY_CREATED,
    UNKNOWN_APPLICATION_COMMAND,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    DiscordAPIError,
    form_error,
    not_found,
)
from tests.discord_emulator.faults import ChannelRateLimit, RouteFault
from tests.discord_emulator.gateway import (
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    Gateway,
    GatewayFrame,
    GatewaySession,
)
from tests.discord_emulator.interactions import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    DEFERRED_UPDATE_MESSAGE,
    MODAL,
    MODAL_SUBMIT,
    UPDATE_MESSAGE,
    InteractionHandle,
)
from tests.discord_emulator.mentions import filter_mentions, parse_mentions
from tests.discord_emulator.state import (
    BOT_ROLE_PERMISSIONS,
    CHAT_INPUT_COMMAND,
    DEFAULT_MESSAGE,
    EVERYONE_PERMISSIONS,
    GUILD_TEXT,
    PERM_MENTION_EVERYONE,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    REPLY,
    THREAD_CREATED,
    Attachment,
    Channel,
    Command,
    DefaultWorld,
    Guild,
    Member,
    Message,
    Role,
    Store,
    UploadedFile,
    User,
    iso,
)
from tests.discord_emulator.validation import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    SENDABLE_FLAGS,
    validate_embeds,
    validate_message_body,
    validate_thread_body,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

FLAG_HAS_THREAD = 1 << 5
POLL_INTERVAL = 0.01
INTERACTION_FLAGS = SENDABLE_FLAGS | FLAG_EPHEMERAL


@dataclass
class RequestRecord:
    """One REST request the bot made, and what the emulator answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[str]
    status: int
    response: Any
    time: float
    route: str | None = None
    fault: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class DiscordWorld:
    """State, operations, event emission, waiting and logs of the emulator."""

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_name: str = "Echo",
        heartbeat_interval_ms: int = 41250,
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 900.0,
        privileged_intents: Iterable[str] = ("members", "presences", "message_content"),
    ) -> None:
        self.store = Store()
        self.bot_user = User(self.store.next_id(), bot_name, bot=True)
        self.store.users[self.bot_user.id] = self.bot_user
        self.store.bot_id = self.bot_user.id
        self.app_owner = User(self.store.next_id(), f"{bot_name.lower()}-developer")
        self.store.users[self.app_owner.id] = self.app_owner
        self.application_id = self.bot_user.id
        encoded_id = base64.urlsafe_b64encode(str(self.bot_user.id).encode()).decode().rstrip("=")
        self.token = token or f"{encoded_id}.{secrets.token_urlsafe(5)}.{secrets.token_urlsafe(27)}"
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.privileged_intents = set(privileged_intents)
        self.gateway = Gateway(self)
        self.requests: list[RequestRecord] = []
        self.faults: list[RouteFault] = []
        self.message_rate: ChannelRateLimit | None = None
        self.interactions: dict[int, InteractionHandle] = {}
        self.url_base = "http://127.0.0.1:0"
        self.gateway_url = "ws://127.0.0.1:0"
        self.resume_gateway_url = "ws://127.0.0.1:0/resume"
        self._changed = asyncio.Event()
        self._pending: list[tuple[str, Callable[[GatewaySession], Any], int | None]] = []
        self._emit_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.world: DefaultWorld | None = None

    # -- change notification and waiting -------------------------------------

    def notify(self) -> None:
        """Wake every ``wait_for``: something in the world changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(
        self,
        check: Callable[[], T | None],
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for the wait itself
        what: str,
    ) -> T:
        """Return ``check()``'s first non-None value.

        Re-checked on every change in the emulator, and every few milliseconds besides,
        so ``check`` may also look at the bot's own state (what its handlers recorded).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}\n{self.summary()}"
                )
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, POLL_INTERVAL))
            except TimeoutError:
                continue

    def summary(self, last: int = 12) -> str:
        """The tail of both logs, for failure messages."""
        lines = ["last REST requests:"]
        for r in self.requests[-last:]:
            lines.append(f"  {r.method} {r.path} -> {r.status}")
        lines.append("last gateway frames:")
        for f in [f for f in self.gateway.log if f.op not in (1, 11)][-last:]:
            arrow = "->" if f.direction == "send" else "<-"
            lines.append(f"  {arrow} {f.name} s={f.s}{' (replay)' if f.replayed else ''}")
        return "\n".join(lines)

    # -- event emission -------------------------------------------------------

    def _queue(
        self, event: str, build: Callable[[GatewaySession], Any], guild_id: int | None
    ) -> None:
        """Emit from synchronous code: queued now, flushed in order by the next emit."""
        self._pending.append((event, build, guild_id))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.flush_events())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def emit(
        self, event: str, build: Callable[[GatewaySession], Any], *, guild_id: int | None
    ) -> None:
        self._pending.append((event, build, guild_id))
        await self.flush_events()

    async def flush_events(self) -> None:
        async with self._emit_lock:
            while self._pending:
                event, build, guild_id = self._pending.pop(0)
                await self.gateway.dispatch(event, build, guild_id=guild_id)
        self.notify()

    def _guild_event(self, event: str, payload: dict[str, Any], intent: int, guild_id: int) -> None:
        def build(session: GatewaySession) -> dict[str, Any] | None:
            return copy.deepcopy(payload) if session.has_intent(intent) else None

        self._queue(event, build, guild_id)

    # -- payload helpers ------------------------------------------------------

    def message_payload(self, m: Message) -> dict[str, Any]:
        """A message as the REST API returns it, plus ``guild_id`` for test convenience."""
        payload = payloads.message(m, self.store, url_base=self.url_base)
        if m.guild_id is not None:
            payload["guild_id"] = str(m.guild_id)
        return payload

    def member_payload(self, member: Member) -> dict[str, Any]:
        return payloads.member(member, self.store)

    def ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        me = payloads.user(self.bot_user)
        me.update({"verified": True, "mfa_enabled": False, "email": None, "bot": True})
        payload: dict[str, Any] = {
            "v": 10,
            "user": me,
            "user_settings": {},
            "guilds": [
                {"id": str(g.id), "unavailable": True}
                for g in self.store.guilds.values()
                if session.sees_guild(g.id)
            ],
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["emulated"],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(self.application_id), "flags": self.application_flags},
            "auth": {},
            "_trace": ['["discord-emulator",{"micros":0}]'],
        }
        if session.shard is not None:
            payload["shard"] = list(session.shard)
        return payload

    def guild_create_payload(self, guild: Guild, session: GatewaySession) -> dict[str, Any]:
        me = guild.members.get(self.bot_user.id)
        return payloads.guild_create(
            guild,
            self.store,
            bot_id=self.bot_user.id,
            all_members=session.has_intent(GUILD_MEMBERS),
            joined_at=me.joined_at if me else iso(),
        )

    @property
    def application_flags(self) -> int:
        flags = payloads.APP_FLAG_APPLICATION_COMMAND_BADGE
        if "presences" in self.privileged_intents:
            flags |= payloads.APP_FLAG_GATEWAY_PRESENCE_LIMITED
        if "members" in self.privileged_intents:
            flags |= payloads.APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
        if "message_content" in self.privileged_intents:
            flags |= payloads.APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED
        return flags

    # -- world building (test side, synchronous) -----------------------------

    def create_user(self, name: str, *, bot: bool = False, global_name: str | None = None) -> User:
        user = User(self.store.next_id(), name, global_name=global_name, bot=bot)
        self.store.users[user.id] = user
        return user

    def create_guild(self, name: str, *, owner_id: int | None = None) -> Guild:
        """A guild the bot is in (with its managed bot role); dispatched if the bot is online."""
        guild_id = self.store.next_id()
        if owner_id is None:
            owner_id = self.create_user(f"{name.lower().replace(' ', '-')}-owner").id
        self.store.user(owner_id)
        guild = Guild(guild_id, name, owner_id)
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", EVERYONE_PERMISSIONS)
        bot_role = Role(
            self.store.next_id(),
            guild_id,
            self.bot_user.username,
            BOT_ROLE_PERMISSIONS,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner_id] = Member(owner_id, guild_id)
        guild.members[self.bot_user.id] = Member(self.bot_user.id, guild_id, roles=[bot_role.id])
        self.store.guilds[guild_id] = guild

        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(GUILDS):
                return None
            return self.guild_create_payload(guild, session)

        self._queue("GUILD_CREATE", build, guild_id)
        return guild

    def create_text_channel(self, guild_id: int, name: str, *, topic: str | None = None) -> Channel:
        guild = self.store.guild(guild_id)
        channel = Channel(
            self.store.next_id(),
            guild.id,
            GUILD_TEXT,
            name,
            position=len(guild.channel_ids),
            topic=topic,
        )
        self.store.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        self._guild_event("CHANNEL_CREATE", payloads.channel(channel), GUILDS, guild.id)
        return channel

    def create_role(
        self, guild_id: int, name: str, *, permissions: int = 0, mentionable: bool = True
    ) -> Role:
        guild = self.store.guild(guild_id)
        role = Role(
            self.store.next_id(),
            guild.id,
            name,
            permissions,
            position=len(guild.roles),
            mentionable=mentionable,
        )
        guild.roles[role.id] = role
        self._guild_event(
            "GUILD_ROLE_CREATE",
            {"guild_id": str(guild.id), "role": payloads.role(role)},
            GUILDS,
            guild.id,
        )
        return role

    def add_member(
        self, guild_id: int, user_id: int, *, roles: Iterable[int] = (), nick: str | None = None
    ) -> Member:
        guild = self.store.guild(guild_id)
        self.store.user(user_id)
        role_ids = [int(r) for r in roles]
        for role_id in role_ids:
            if role_id not in guild.roles:
                raise KeyError(f"role {role_id} is not in guild {guild_id}")
        member = Member(int(user_id), guild.id, roles=role_ids, nick=nick)
        guild.members[member.user_id] = member
        payload = payloads.member(member, self.store)
        payload["guild_id"] = str(guild.id)
        self._guild_event("GUILD_MEMBER_ADD", payload, GUILD_MEMBERS, guild.id)
        return member

    def populate(self) -> DefaultWorld:
        """A guild "Test Guild" with #general and a member "alice": what most tests need.

        Also kept as ``self.world``.
        """
        guild = self.create_guild("Test Guild")
        channel = self.create_text_channel(guild.id, "general")
        user = self.create_user("alice", global_name="Alice")
        self.add_member(guild.id, user.id)
        self.world = DefaultWorld(guild=guild, channel=channel, user=user)
        return self.world

    # -- messages -----------------------------------------------------------

    def _attachments(
        self,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        keep: list[Attachment] | None = None,
    ) -> list[Attachment]:
        """Map ``attachments`` entries to uploaded ``files[n]`` parts (and kept old ones)."""
        by_field = {f.field_name: f for f in files}
        result: list[Attachment] = []
        kept_ids: set[int] = set()
        described = body.get("attachments")
        used: set[str] = set()
        if isinstance(described, list):
            for entry in described:
                entry_id = str(entry.get("id"))
                upload = by_field.get(f"files[{entry_id}]")
                if upload is not None:
                    used.add(upload.field_name)
                    result.append(self._new_attachment(upload, entry))
                elif keep is not None and entry_id.isdigit():
                    kept_ids.add(int(entry_id))
        for upload in files:
            if upload.field_name not in used:
                result.append(self._new_attachment(upload, {}))
        if keep is not None:
            if isinstance(described, list):
                result = [a for a in keep if a.id in kept_ids] + result
            else:
                result = list(keep) + result
        return result

    def _new_attachment(self, upload: UploadedFile, entry: dict[str, Any]) -> Attachment:
        filename = entry.get("filename") or upload.filename
        content_type = upload.content_type
        if not content_type or content_type == "application/octet-stream":
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return Attachment(
            self.store.next_id(),
            filename,
            upload.data,
            content_type,
            description=entry.get("description"),
        )

    def _mentions_for(
        self,
        channel: Channel,
        author_id: int,
        content: str,
        allowed: dict[str, Any] | None,
        replied_user_id: int | None,
        *,
        from_app: bool,
    ) -> tuple[list[int], list[int], bool]:
        parsed = parse_mentions(content)
        # allowed_mentions only applies to what bots and webhooks send.
        filtered = filter_mentions(
            parsed, allowed if from_app else None, replied_user_id=replied_user_id
        )
        guild = self.store.guilds.get(channel.guild_id)
        users = [u for u in filtered.users if u in self.store.users]
        roles = [r for r in filtered.roles if guild is not None and r in guild.roles]
        everyone = bool(
            filtered.everyone
            and guild is not None
            and self.store.permissions(guild.id, author_id) & PERM_MENTION_EVERYONE
        )
        return users, roles, everyone

    def _new_message(
        self,
        channel: Channel,
        author_id: int,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[Attachment] | None = None,
        components: list[dict[str, Any]] | None = None,
        flags: int = 0,
        reference: dict[str, Any] | None = None,
        allowed_mentions: dict[str, Any] | None = None,
        nonce: str | int | None = None,
        tts: bool = False,
        mtype: int | None = None,
        webhook_id: int | None = None,
        interaction_metadata: dict[str, Any] | None = None,
        interaction_id: int | None = None,
    ) -> Message:
        from_app = author_id == self.bot_user.id or webhook_id is not None
        message_reference = None
        replied_user_id = None
        if reference is not None and reference.get("message_id") is not None:
            ref_channel_id = int(reference.get("channel_id") or channel.id)
            ref = self.store.messages.get(int(reference["message_id"]))
            if ref is None or ref.deleted or ref.channel_id != ref_channel_id:
                if reference.get("fail_if_not_exists", True):
                    raise form_error(
                        "message_reference",
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
            else:
                replied_user_id = ref.author_id
                message_reference = {
                    "type": 0,
                    "message_id": str(ref.id),
                    "channel_id": str(ref.channel_id),
                    "guild_id": str(channel.guild_id),
                }
        users, roles, everyone = self._mentions_for(
            channel, author_id, content, allowed_mentions, replied_user_id, from_app=from_app
        )
        if mtype is None:
            mtype = REPLY if message_reference is not None else DEFAULT_MESSAGE
        message = Message(
            id=self.store.next_id(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id,
            content=content,
            type=mtype,
            tts=tts,
            mention_everyone=everyone,
            mention_ids=users,
            mention_role_ids=roles,
            attachments=attachments or [],
            embeds=embeds or [],
            components=components or [],
            flags=flags,
            nonce=nonce,
            webhook_id=webhook_id,
            application_id=self.application_id if webhook_id is not None else None,
            message_reference=message_reference,
            interaction_metadata=interaction_metadata,
            allowed_mentions=allowed_mentions,
            interaction_id=interaction_id,
        )
        if channel.is_thread:
            message.position = channel.total_message_sent
            channel.message_count += 1
            channel.total_message_sent += 1
            if author_id not in channel.member_ids:
                channel.member_ids.append(author_id)
        channel.last_message_id = message.id
        self.store.messages[message.id] = message
        log.info("message %s in %s by %s: %r", message.id, channel.id, author_id, content[:80])
        return message

    async def _dispatch_message(self, event: str, m: Message) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE, content hidden as Discord hides it per session."""
        if m.flags & FLAG_EPHEMERAL:
            return  # ephemeral messages exist only for the invoking user
        full = payloads.message(m, self.store, url_base=self.url_base, gateway=True)
        hidden = dict(full, content="", embeds=[], attachments=[], components=[])

        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(GUILD_MESSAGES):
                return None
            visible = (
                session.has_intent(MESSAGE_CONTENT)
                or m.author_id == session.user_id
                or session.user_id in m.mention_ids
            )
            return copy.deepcopy(full if visible else hidden)

        self.notify()
        await self.emit(event, build, guild_id=m.guild_id)

    async def _unarchive_if_needed(self, channel: Channel) -> None:
        if channel.is_thread and channel.archived and not channel.locked:
            channel.archived = False
            channel.archive_timestamp = iso()
            await self._dispatch_thread("THREAD_UPDATE", channel)

    async def create_message(
        self,
        channel_id: int,
        author_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
    ) -> Message:
        """POST /channels/{id}/messages, for the bot (REST) and for test users alike."""
        channel = self.store.channel(channel_id)
        validate_message_body(body, file_count=len(files))
        embeds = validate_embeds(body.get("embeds"))
        message = self._new_message(
            channel,
            author_id,
            content=body.get("content") or "",
            embeds=embeds,
            attachments=self._attachments(body, files),
            components=body.get("components"),
            flags=body.get("flags") or 0,
            reference=body.get("message_reference"),
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
        )
        await self._unarchive_if_needed(channel)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def edit_message_body(
        self,
        message: Message,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        allow_flags: int = SENDABLE_FLAGS,
    ) -> Message:
        """Apply a PATCH body (content, embeds, attachments, ...) and emit MESSAGE_UPDATE."""
        validate_message_body(body, file_count=len(files), editing=True, allow_flags=allow_flags)
        content = message.content
        if "content" in body:
            content = body["content"] or ""
        embeds = validate_embeds(body["embeds"]) if "embeds" in body else message.embeds
        components = (body.get("components") or []) if "components" in body else message.components
        attachments = message.attachments
        if "attachments" in body or files:
            attachments = self._attachments(body, files, keep=message.attachments)
        if not (content.strip() or embeds or attachments or components):
            raise DiscordAPIError(400, EMPTY_MESSAGE, "Cannot send an empty message")
        message.content = content
        message.embeds = embeds
        message.components = components
        message.attachments = attachments
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if body.get("flags") is not None:
            kept = message.flags & (FLAG_EPHEMERAL | FLAG_HAS_THREAD)
            message.flags = kept | (body["flags"] & allow_flags & ~FLAG_EPHEMERAL)
        was_loading = bool(message.flags & FLAG_LOADING)
        message.flags &= ~FLAG_LOADING
        if not was_loading:
            message.edited_timestamp = iso()
        channel = self.store.channel(message.channel_id)
        replied = None
        if message.message_reference is not None:
            ref = self.store.messages.get(int(message.message_reference["message_id"]))
            replied = ref.author_id if ref is not None else None
        from_app = message.author_id == self.bot_user.id or message.webhook_id is not None
        message.mention_ids, message.mention_role_ids, message.mention_everyone = (
            self._mentions_for(
                channel,
                message.author_id,
                message.content,
                message.allowed_mentions,
                replied,
                from_app=from_app,
            )
        )
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return message

    async def bot_edit_message(
        self, channel_id: int, message_id: int, body: dict[str, Any], files: list[UploadedFile]
    ) -> Message:
        message = self.store.message(channel_id, message_id)
        if message.author_id != self.bot_user.id or message.webhook_id is not None:
            raise DiscordAPIError(
                403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user"
            )
        return await self.edit_message_body(message, body, files)

    async def remove_message(self, message: Message) -> None:
        message.deleted = True
        payload: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            payload["guild_id"] = str(message.guild_id)
        channel = self.store.channels.get(message.channel_id)
        if channel is not None and channel.is_thread:
            channel.message_count = max(0, channel.message_count - 1)
        if message.flags & FLAG_EPHEMERAL:
            self.notify()
            return

        def build(session: GatewaySession) -> dict[str, Any] | None:
            return dict(payload) if session.has_intent(GUILD_MESSAGES) else None

        await self.emit("MESSAGE_DELETE", build, guild_id=message.guild_id)

    # -- threads ------------------------------------------------------------

    async def _dispatch_thread(
        self, event: str, thread: Channel, *, newly_created: bool = False
    ) -> None:
        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(GUILDS):
                return None
            payload = payloads.channel(thread, member_of=session.user_id)
            if newly_created:
                payload["newly_created"] = True
            return payload

        await self.emit(event, build, guild_id=thread.guild_id)

    async def start_thread(
        self,
        parent_id: int,
        owner_id: int,
        body: dict[str, Any],
        *,
        message_id: int | None = None,
    ) -> Channel:
        """A thread from a message (public, id = message id) or without one (default private)."""
        parent = self.store.channel(parent_id)
        if parent.is_thread or parent.type not in (GUILD_TEXT, 5):
            raise DiscordAPIError(400, 50024, "Cannot execute action on this channel type")
        name, duration = validate_thread_body(body)
        message = None
        if message_id is not None:
            message = self.store.message(parent.id, message_id)
            if message.thread_id is not None:
                raise DiscordAPIError(
                    400,
                    THREAD_ALREADY_CREATED,
                    "A thread has already been created for this message",
                )
            thread_type = PUBLIC_THREAD
            thread_id = message.id
        else:
            thread_type = int(body.get("type") or PRIVATE_THREAD)
            if thread_type not in (PUBLIC_THREAD, PRIVATE_THREAD):
                raise form_error("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
            thread_id = self.store.next_id()
        thread = Channel(
            thread_id,
            parent.guild_id,
            thread_type,
            name,
            parent_id=parent.id,
            owner_id=owner_id,
            auto_archive_duration=duration,
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
            invitable=bool(body.get("invitable", True)),
            member_ids=[owner_id],
        )
        self.store.channels[thread.id] = thread
        if message is not None:
            message.thread_id = thread.id
            message.flags |= FLAG_HAS_THREAD
        log.info("thread %s %r created in %s by %s", thread.id, name, parent.id, owner_id)
        await self._dispatch_thread("THREAD_CREATE", thread, newly_created=True)
        if message is None and thread_type == PUBLIC_THREAD:
            # Discord announces a public thread without a starter message in the parent.
            notice = self._new_message(parent, owner_id, content=name, mtype=THREAD_CREATED)
            notice.message_reference = {
                "type": 0,
                "channel_id": str(thread.id),
                "guild_id": str(parent.guild_id),
            }
            await self._dispatch_message("MESSAGE_CREATE", notice)
        return thread

    async def modify_channel(self, channel_id: int, body: dict[str, Any]) -> Channel:
        channel = self.store.channel(channel_id)
        if "name" in body:
            if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 100:
                raise form_error(
                    "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            channel.name = body["name"]
        if "topic" in body and not channel.is_thread:
            channel.topic = body["topic"]
        if channel.is_thread:
            if "archived" in body:
                channel.archived = bool(body["archived"])
                channel.archive_timestamp = iso()
            if "locked" in body:
                channel.locked = bool(body["locked"])
            if "auto_archive_duration" in body:
                channel.auto_archive_duration = int(body["auto_archive_duration"])
            if "invitable" in body:
                channel.invitable = bool(body["invitable"])
            await self._dispatch_thread("THREAD_UPDATE", channel)
        else:
            await self.emit(
                "CHANNEL_UPDATE",
                lambda s: payloads.channel(channel) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        return channel

    async def delete_channel(self, channel_id: int) -> Channel:
        channel = self.store.channel(channel_id)
        del self.store.channels[channel.id]
        guild = self.store.guilds.get(channel.guild_id)
        if channel.is_thread:
            payload = {
                "id": str(channel.id),
                "guild_id": str(channel.guild_id),
                "parent_id": str(channel.parent_id),
                "type": channel.type,
            }
            await self.emit(
                "THREAD_DELETE",
                lambda s: dict(payload) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        else:
            if guild is not None and channel.id in guild.channel_ids:
                guild.channel_ids.remove(channel.id)
            payload = payloads.channel(channel)
            await self.emit(
                "CHANNEL_DELETE",
                lambda s: dict(payload) if s.has_intent(GUILDS) else None,
                guild_id=channel.guild_id,
            )
        return channel

    # -- application commands -------------------------------------------------

    def commands(self, guild_id: int | None = None) -> list[Command]:
        """Synced commands: global ones (``guild_id=None``) or one guild's."""
        return sorted(
            (c for c in self.store.commands.values() if c.guild_id == guild_id), key=lambda c: c.id
        )

    def bulk_overwrite_commands(self, guild_id: int | None, bodies: Any) -> list[Command]:
        if guild_id is not None:
            self.store.guild(guild_id)
        if not isinstance(bodies, list):
            raise form_error("_root", "BASE_TYPE_LIST", "Must be a list.")
        seen: set[tuple[str, int]] = set()
        for i, body in enumerate(bodies):
            validate_command_body(body, i)
            key = (body["name"], int(body.get("type", 1)))
            if key in seen:
                raise form_error(
                    str(i), "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Duplicate name {key[0]!r}"
                )
            seen.add(key)
        existing = {(c.name, c.type): c for c in self.commands(guild_id)}
        result = []
        for body in bodies:
            ctype = int(body.get("type", 1))
            old = existing.pop((body["name"], ctype), None)
            command = Command(
                id=old.id if old else self.store.next_id(),
                application_id=self.application_id,
                guild_id=guild_id,
                name=body["name"],
                type=ctype,
                body=copy.deepcopy(body),
                version=self.store.next_id(),
            )
            self.store.commands[command.id] = command
            result.append(command)
        for stale in existing.values():
            del self.store.commands[stale.id]
        log.info(
            "commands synced (%s): %s",
            f"guild {guild_id}" if guild_id else "global",
            [c.name for c in result],
        )
        self.notify()
        return result

    def upsert_command(self, guild_id: int | None, body: Any) -> Command:
        others = [c.body for c in self.commands(guild_id)]
        validate_command_body(body, 0)
        key = (body["name"], int(body.get("type", 1)))
        others = [b for b in others if (b["name"], int(b.get("type", 1))) != key]
        commands = self.bulk_overwrite_commands(guild_id, [*others, body])
        return next(c for c in commands if (c.name, c.type) == key)

    def command(self, guild_id: int | None, command_id: int) -> Command:
        command = self.store.commands.get(int(command_id))
        if command is None or command.guild_id != guild_id:
            raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")
        return command

    # -- interactions ---------------------------------------------------------

    def _find_command(self, guild_id: int, name: str) -> Command:
        for scope in (guild_id, None):
            for command in self.commands(scope):
                if command.name == name and command.type == 1:
                    return command
        synced = [c.name for c in self.commands(guild_id)] + [c.name for c in self.commands(None)]
        raise LookupError(f"slash command {name!r} was never synced; synced commands: {synced}")

    def _interaction_base(
        self, itype: int, guild: Guild, channel: Channel, user_id: int, locale: str
    ) -> tuple[int, str, dict[str, Any]]:
        if user_id not in guild.members:
            raise LookupError(f"user {user_id} is not a member of guild {guild.id}")
        interaction_id = self.store.next_id()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(120)
        user_perms = self.store.permissions(guild.id, user_id)
        channel_payload = payloads.channel(channel)
        channel_payload["permissions"] = str(user_perms)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": itype,
            "token": token,
            "version": 1,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "member": payloads.member(guild.members[user_id], self.store, permissions=user_perms),
            "app_permissions": str(self.store.permissions(guild.id, self.bot_user.id)),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": payloads.ATTACHMENT_SIZE_LIMIT,
        }
        return interaction_id, token, payload

    def _new_handle(
        self,
        itype: int,
        interaction_id: int,
        token: str,
        payload: dict[str, Any],
        command: Command | None,
        guild_id: int,
        channel_id: int,
        user_id: int,
    ) -> InteractionHandle:
        now = time.monotonic()
        handle = InteractionHandle(
            world=self,
            id=interaction_id,
            token=token,
            type=itype,
            command=command,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            created_at=now,
            deadline=now + self.interaction_deadline,
            token_expires=now + self.interaction_token_ttl,
        )
        self.interactions[interaction_id] = handle
        return handle

    async def invoke_command(
        self,
        guild_id: int,
        channel_id: int,
        user_id: int,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """A user runs ``/name`` (``"group sub"`` for subcommands) with these option values."""
        guild = self.store.guild(guild_id)
        channel = self.store.channel(channel_id)
        if channel.guild_id != guild.id:
            raise LookupError(f"channel {channel_id} is not in guild {guild_id}")
        parts = name.split()
        command = self._find_command(guild.id, parts[0])
        specs, chain = nest_subcommands(command.body, parts[1:])
        options_out, resolved = build_options(
            specs, dict(options or {}), store=self.store, guild=guild, payloads=payloads
        )
        if chain:
            for outer, inner in itertools.pairwise(chain):
                outer["options"] = [inner]
            chain[-1]["options"] = options_out
            options_out = [chain[0]]
        data: dict[str, Any] = {
            "id": str(command.id),
            "name": command.name,
            "type": command.type,
            "options": options_out,
        }
        if resolved:
            data["resolved"] = resolved
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        interaction_id, token, payload = self._interaction_base(
            APPLICATION_COMMAND, guild, channel, user_id, locale
        )
        payload["data"] = data
        handle = self._new_handle(
            APPLICATION_COMMAND,
            interaction_id,
            token,
            payload,
            command,
            guild.id,
            channel.id,
            user_id,
        )
        log.info("interaction %s: /%s %s by %s", interaction_id, name, options or {}, user_id)
        await self.emit("INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id=guild.id)
        return handle

    async def submit_modal(
        self, opened: InteractionHandle, values: dict[str, str]
    ) -> InteractionHandle:
        modal = opened.modal or {}
        guild = self.store.guild(opened.guild_id or 0)
        channel = self.store.channel(opened.channel_id)
        known: set[str] = set()

        def submitted(component: dict[str, Any]) -> dict[str, Any]:
            custom_id = component.get("custom_id") or ""
            known.add(custom_id)
            value = values.get(custom_id, component.get("value") or "")
            if component.get("required", True) and not value:
                raise ValueError(f"modal field {custom_id!r} is required")
            return {"type": component.get("type", 4), "custom_id": custom_id, "value": value}

        rows: list[dict[str, Any]] = []
        for row in modal.get("components") or []:
            if row.get("type") == 18:  # a label wraps one component
                rows.append({"type": 18, "component": submitted(row.get("component") or {})})
            else:
                inputs = [submitted(c) for c in row.get("components") or []]
                rows.append({"type": 1, "components": inputs})
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"the modal has no fields {sorted(unknown)}; it has {sorted(known)}")
        interaction_id, token, payload = self._interaction_base(
            MODAL_SUBMIT, guild, channel, opened.user_id, "en-US"
        )
        payload["data"] = {"custom_id": modal.get("custom_id"), "components": rows}
        handle = self._new_handle(
            MODAL_SUBMIT,
            interaction_id,
            token,
            payload,
            opened.command,
            guild.id,
            channel.id,
            opened.user_id,
        )
        await self.emit("INTERACTION_CREATE", lambda s: copy.deepcopy(payload), guild_id=guild.id)
        return handle

    def _interaction_metadata(self, handle: InteractionHandle) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "id": str(handle.id),
            "type": handle.type,
            "user": payloads.user(self.store.user(handle.user_id)),
            "authorizing_integration_owners": {"0": str(handle.guild_id)},
        }
        if handle.command is not None:
            metadata["name"] = handle.command.name
            metadata["command_type"] = handle.command.type
        return metadata

    def _interaction_message(
        self,
        handle: InteractionHandle,
        data: dict[str, Any],
        files: list[UploadedFile],
        *,
        flags: int,
    ) -> Message:
        channel = self.store.channel(handle.channel_id)
        return self._new_message(
            channel,
            self.bot_user.id,
            content=data.get("content") or "",
            embeds=validate_embeds(data.get("embeds")),
            attachments=self._attachments(data, files),
            components=data.get("components"),
            flags=flags,
            allowed_mentions=data.get("allowed_mentions"),
            tts=bool(data.get("tts")),
            mtype=CHAT_INPUT_COMMAND,
            webhook_id=self.application_id,
            interaction_metadata=self._interaction_metadata(handle),
            interaction_id=handle.id,
        )

    async def interaction_callback(
        self,
        interaction_id: int,
        token: str,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        with_response: bool,
    ) -> dict[str, Any] | None:
        handle = self.interactions.get(int(interaction_id))
        if handle is None or handle.token != token:
            raise DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
        if handle.responded:
            error = DiscordAPIError(
                400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged."
            )
            handle.rejected.append(error)
            raise error
        if handle.expired():
            error = DiscordAPIError(404, UNKNOWN_INTERACTION, "Unknown interaction")
            handle.rejected.append(error)
            log.warning(
                "interaction %s answered %.2fs after its %.1fs deadline",
                handle.id,
                time.monotonic() - handle.deadline,
                self.interaction_deadline,
            )
            self.notify()
            raise error
        ctype = body.get("type")
        data = body.get("data") or {}
        valid = {
            APPLICATION_COMMAND: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                MODAL,
            ),
            MODAL_SUBMIT: (
                CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                DEFERRED_UPDATE_MESSAGE,
                UPDATE_MESSAGE,
            ),
        }[handle.type]
        if ctype not in valid:
            raise form_error(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type"
            )
        message: Message | None = None
        if ctype == CHANNEL_MESSAGE_WITH_SOURCE:
            validate_message_body(data, file_count=len(files), allow_flags=INTERACTION_FLAGS)
            message = self._interaction_message(handle, data, files, flags=data.get("flags") or 0)
        elif ctype == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = FLAG_LOADING | ((data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._interaction_message(handle, {}, [], flags=flags)
        elif ctype == MODAL:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise form_error(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            handle.modal = data
        handle.callbacks.append({"type": ctype, "data": data, "time": time.monotonic()})
        if message is not None:
            handle.original_message_id = message.id
            await self._dispatch_message("MESSAGE_CREATE", message)
        self.notify()
        if not with_response:
            return None
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            interaction["response_message_id"] = str(message.id)
            interaction["response_message_loading"] = bool(message.flags & FLAG_LOADING)
            interaction["response_message_ephemeral"] = bool(message.flags & FLAG_EPHEMERAL)
            resource["message"] = payloads.message(message, self.store, url_base=self.url_base)
        return {"interaction": interaction, "resource": resource}

    def webhook_handle(self, webhook_id: int, token: str) -> InteractionHandle:
        """The interaction behind an interaction webhook (app id + interaction token)."""
        handle = None
        if int(webhook_id) == self.application_id:
            handle = next((h for h in self.interactions.values() if h.token == token), None)
        if handle is None or not handle.responded:
            raise not_found(UNKNOWN_WEBHOOK, "Webhook")
        if time.monotonic() > handle.token_expires:
            raise DiscordAPIError(401, 50027, "Invalid Webhook Token")
        return handle

    def webhook_message(self, handle: InteractionHandle, message_id: str) -> Message:
        if message_id == "@original":
            mid = handle.original_message_id
        else:
            mid = int(message_id) if message_id.isdigit() else None
            if mid != handle.original_message_id and mid not in handle.followup_ids:
                mid = None
        message = self.store.messages.get(mid) if mid is not None else None
        if message is None or message.deleted:
            raise DiscordAPIError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    async def followup(
        self, handle: InteractionHandle, body: dict[str, Any], files: list[UploadedFile]
    ) -> Message:
        validate_message_body(body, file_count=len(files), allow_flags=INTERACTION_FLAGS)
        if handle.deferred and handle.original_message_id is not None:
            original = self.store.messages.get(handle.original_message_id)
            if original is not None and original.flags & FLAG_LOADING:
                # Discord fills a still-loading deferred response with the first follow-up.
                await self.edit_message_body(original, body, files, allow_flags=INTERACTION_FLAGS)
                handle.followup_ids.append(original.id)
                self.notify()
                return original
        message = self._interaction_message(handle, body, files, flags=body.get("flags") or 0)
        handle.followup_ids.append(message.id)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    # -- REST log -------------------------------------------------------------

    def record_request(self, record: RequestRecord) -> None:
        self.requests.append(record)
        self.notify()

    def gateway_frames(
        self, name: str | None = None, *, direction: str | None = None
    ) -> list[GatewayFrame]:
        """Frames by event or opcode name (``"IDENTIFY"``, ``"MESSAGE_CREATE"``, ``"RESUMED"``)."""
        return [
            f
            for f in self.gateway.log
            if (name is None or f.name == name) and (direction is None or f.direction == direction)
        ]
