"""What a test reads of the emulated world, and how it waits for something to happen there.

Messages, files, threads, the request log and the gateway log as tests look at them, and the
``wait_for_*`` helpers that poll the world until a message, thread, frame or request shows up.
A mixin of ``DiscordEmulator`` (``server.py``): it reads the state of ``world.core.DiscordWorld``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.discord_emulator.faults import compile_path
from tests.discord_emulator.gateway.wire import GatewayFrame
from tests.discord_emulator.state import Channel, Message
from tests.discord_emulator.world.core import RequestRecord

__all__ = ["Observing", "Predicate"]

Predicate = Callable[[dict[str, Any]], bool]


class Observing:
    """The test's view of the world: what is there, and waiting until something is."""

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
