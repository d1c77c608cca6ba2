"""``DiscordWorld``: the emulator's state, change notification, ordered event emission and logs.

REST handlers and the test-side API both go through the world's operations, so a message a
test posts and a message the bot posts are stored, mention-parsed and dispatched the same
way. Gateway events are emitted through one ordered queue (here): what happened first is
dispatched first, whoever caused it. The operations themselves come from one mixin per
subject: ``guilds``, ``channels``, ``messages``, ``attachments``.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.discord_emulator.commands import CommandRegistry
from tests.discord_emulator.faults import ChannelRateLimit, GlobalRateLimit, RouteFault
from tests.discord_emulator.gateway.connections import Gateway
from tests.discord_emulator.gateway.sessions import GatewaySession
from tests.discord_emulator.gateway.wire import GatewayFrame
from tests.discord_emulator.interactions.model import InteractionHandle
from tests.discord_emulator.interactions.service import InteractionService
from tests.discord_emulator.state import Command, DefaultWorld, Store, User
from tests.discord_emulator.world.attachments import AttachmentOps
from tests.discord_emulator.world.channels import ChannelOps
from tests.discord_emulator.world.guilds import GuildOps
from tests.discord_emulator.world.messages import MessageOps

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


class DiscordWorld(GuildOps, ChannelOps, MessageOps, AttachmentOps):
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
