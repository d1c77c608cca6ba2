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
import logging
import mimetypes
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.discord_emulator import payloads
from tests.discord_emulator.commands import CommandRegistry
from tests.discord_emulator.errors import (
    CANNOT_EDIT_OTHERS_MESSAGE,
    CANNOT_EXECUTE_ON_DM,
    CANNOT_SEND_TO_USER,
    EMPTY_MESSAGE,
    THREAD_ALREADY_CREATED,
    DiscordAPIError,
    form_error,
)
from tests.discord_emulator.faults import ChannelRateLimit, GlobalRateLimit, RouteFault
from tests.discord_emulator.gateway import (
    DIRECT_MESSAGES,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    Gateway,
    GatewayFrame,
    GatewaySession,
)
from tests.discord_emulator.interactions import InteractionHandle, InteractionService
from tests.discord_emulator.mentions import filter_mentions, parse_mentions
from tests.discord_emulator.state import (
    BOT_ROLE_PERMISSIONS,
    DEFAULT_MESSAGE,
    DM,
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
    FLAG_HAS_THREAD,
    FLAG_IS_COMPONENTS_V2,
    FLAG_LOADING,
    SENDABLE_FLAGS,
    validate_components,
    validate_embeds,
    validate_message_body,
    validate_thread_body,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_INTERVAL = 0.01


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
        rest_latency: float = 0.0,
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
        # What /gateway/bot advertises. Above 1, an IDENTIFY without a shard is refused with
        # 4011 (sharding required), as Discord does for a bot past 2,500 servers.
        self.recommended_shards = 1
        self.max_concurrency = 1
        self.global_rate: GlobalRateLimit | None = None
        # Seconds each REST answer is held back, as Discord's round trip would (0: none).
        self.rest_latency = rest_latency
        self.command_registry = CommandRegistry(self.store, self.application_id, self.notify)
        self.interactions = InteractionService(self)
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
        timeout: float,
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
            note = " (replay)" if f.replayed else " (redelivery)" if f.redelivered else ""
            lines.append(f"  {arrow} {f.name} s={f.s}{note}")
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

    def dm_channel(self, user_id: int) -> Channel:
        """The bot's DM channel with a user (type 1, no guild), created on first use.

        As on Discord, opening it dispatches nothing to the bot and it keeps its id for
        good: ``POST /users/@me/channels`` returns the same channel.
        """
        user = self.store.user(user_id)
        if user.id == self.bot_user.id:
            raise DiscordAPIError(400, CANNOT_SEND_TO_USER, "Cannot send messages to this user")
        channel_id = self.store.dm_channels.get(user.id)
        if channel_id is not None:
            return self.store.channels[channel_id]
        channel = Channel(self.store.next_id(), None, DM, "", recipient_ids=[user.id])
        self.store.channels[channel.id] = channel
        self.store.dm_channels[user.id] = channel.id
        log.info("DM channel %s opened with user %s", channel.id, user.id)
        return channel

    # -- messages -----------------------------------------------------------

    def build_attachments(
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

    def new_message(
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
            if ref_channel_id != channel.id:
                # A reply must be in the referenced message's channel, whatever
                # fail_if_not_exists says (a thread is another channel than its parent).
                raise form_error(
                    "message_reference",
                    "REPLIES_CANNOT_REFERENCE_OTHER_CHANNEL",
                    "Cannot reply to a message in a different channel",
                )
            ref = self.store.messages.get(int(reference["message_id"]))
            if ref is None or ref.deleted or ref.channel_id != ref_channel_id:
                # fail_if_not_exists=false: sent as a plain message, without a reference.
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
                }
                if channel.guild_id is not None:
                    message_reference["guild_id"] = str(channel.guild_id)
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

    def _message_event_builder(self, m: Message) -> Callable[[GatewaySession], Any]:
        """Per-session MESSAGE_CREATE/UPDATE data, by intents, as Discord filters it.

        Guild messages need GUILD_MESSAGES, DMs DIRECT_MESSAGES; without MESSAGE_CONTENT
        the content is hidden unless the bot wrote it, is mentioned, or it is a DM.
        """
        full = payloads.message(m, self.store, url_base=self.url_base, gateway=True)
        hidden = dict(full, content="", embeds=[], attachments=[], components=[])
        is_dm = m.guild_id is None

        def build(session: GatewaySession) -> dict[str, Any] | None:
            if not session.has_intent(DIRECT_MESSAGES if is_dm else GUILD_MESSAGES):
                return None
            visible = (
                is_dm
                or session.has_intent(MESSAGE_CONTENT)
                or m.author_id == session.user_id
                or session.user_id in m.mention_ids
            )
            return copy.deepcopy(full if visible else hidden)

        return build

    async def dispatch_message(self, event: str, m: Message) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE, content hidden as Discord hides it per session."""
        if m.flags & FLAG_EPHEMERAL:
            return  # ephemeral messages exist only for the invoking user
        self.notify()
        await self.emit(event, self._message_event_builder(m), guild_id=m.guild_id)

    async def redeliver_message(self, message_id: int) -> int:
        """Dispatch a stored message's MESSAGE_CREATE again, with a new sequence number.

        What the bot was sent the first time is sent again, byte for byte (the buffered
        frame; a session that never had it gets the message as it is now). Returns the
        number of sessions it went to. The frames are logged with ``redelivered=True``.
        """
        m = self.store.messages[int(message_id)]
        if m.flags & FLAG_EPHEMERAL:
            raise ValueError(f"message {m.id} is ephemeral: Discord never dispatched it")
        fresh = self._message_event_builder(m)

        def build(session: GatewaySession) -> dict[str, Any] | None:
            sent = session.dispatched("MESSAGE_CREATE", lambda d: d.get("id") == str(m.id))
            return copy.deepcopy(sent["d"]) if sent is not None else fresh(session)

        await self.flush_events()
        async with self._emit_lock:
            count = await self.gateway.dispatch(
                "MESSAGE_CREATE", build, guild_id=m.guild_id, redelivered=True
            )
        log.info("message %s redelivered to %s session(s)", m.id, count)
        self.notify()
        return count

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
        if channel.is_dm and author_id == self.bot_user.id:
            recipient = self.store.user(channel.recipient_ids[0])
            if recipient.bot or not recipient.accepts_dms:
                raise DiscordAPIError(403, CANNOT_SEND_TO_USER, "Cannot send messages to this user")
        embeds = validate_embeds(body.get("embeds"))
        message = self.new_message(
            channel,
            author_id,
            content=body.get("content") or "",
            embeds=embeds,
            attachments=self.build_attachments(body, files),
            components=validate_components(
                body.get("components"),
                v2=bool((body.get("flags") or 0) & FLAG_IS_COMPONENTS_V2),
            ),
            flags=body.get("flags") or 0,
            reference=body.get("message_reference"),
            allowed_mentions=body.get("allowed_mentions"),
            nonce=body.get("nonce"),
            tts=bool(body.get("tts")),
        )
        await self._unarchive_if_needed(channel)
        await self.dispatch_message("MESSAGE_CREATE", message)
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
        validate_message_body(
            body,
            file_count=len(files),
            editing=True,
            allow_flags=allow_flags,
            current_flags=message.flags,
        )
        content = message.content
        if "content" in body:
            content = body["content"] or ""
        embeds = validate_embeds(body["embeds"]) if "embeds" in body else message.embeds
        components = message.components
        if "components" in body:
            v2 = ((body.get("flags") or 0) | message.flags) & FLAG_IS_COMPONENTS_V2
            components = validate_components(body["components"], v2=bool(v2))
        attachments = message.attachments
        if "attachments" in body or files:
            attachments = self.build_attachments(body, files, keep=message.attachments)
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
        await self.dispatch_message("MESSAGE_UPDATE", message)
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

        intent = GUILD_MESSAGES if message.guild_id is not None else DIRECT_MESSAGES

        def build(session: GatewaySession) -> dict[str, Any] | None:
            return dict(payload) if session.has_intent(intent) else None

        await self.emit("MESSAGE_DELETE", build, guild_id=message.guild_id)

    async def remove_messages(self, channel_id: int, messages: list[Message]) -> None:
        """A bulk delete: one MESSAGE_DELETE_BULK, as Discord sends it (not one per message)."""
        channel = self.store.channel(channel_id)
        for message in messages:
            message.deleted = True
        if channel.is_thread:
            channel.message_count = max(0, channel.message_count - len(messages))
        payload: dict[str, Any] = {
            "ids": [str(m.id) for m in messages],
            "channel_id": str(channel_id),
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)

        def build(session: GatewaySession) -> dict[str, Any] | None:
            return copy.deepcopy(payload) if session.has_intent(GUILD_MESSAGES) else None

        await self.emit("MESSAGE_DELETE_BULK", build, guild_id=channel.guild_id)

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
            notice = self.new_message(parent, owner_id, content=name, mtype=THREAD_CREATED)
            notice.message_reference = {
                "type": 0,
                "channel_id": str(thread.id),
                "guild_id": str(parent.guild_id),
            }
            await self.dispatch_message("MESSAGE_CREATE", notice)
        return thread

    async def modify_channel(self, channel_id: int, body: dict[str, Any]) -> Channel:
        channel = self.store.channel(channel_id)
        if channel.is_dm:
            raise DiscordAPIError(
                400, CANNOT_EXECUTE_ON_DM, "Cannot execute action on a DM channel"
            )
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
        if channel.is_dm:
            return channel  # "closing" a DM: it keeps its id and messages, nothing dispatched
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

    # -- application commands and interactions (test side) --------------------

    def commands(self, guild_id: int | None = None) -> list[Command]:
        """Synced commands: global ones (``guild_id=None``) or one guild's."""
        return self.command_registry.list(guild_id)

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
        return await self.interactions.invoke_command(
            guild_id, channel_id, user_id, name, options, locale=locale
        )

    async def click(
        self,
        message_id: int,
        custom_id: str,
        user_id: int,
        *,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """``user_id`` clicks the button ``custom_id`` on a message: a MESSAGE_COMPONENT
        interaction, answered through the handle like a command.

        Raises ``ClickRefused`` for what no Discord client would send: a disabled, link or
        unknown button, or an ephemeral message shown to someone else.
        """
        return await self.interactions.click(message_id, custom_id, user_id, locale=locale)

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
