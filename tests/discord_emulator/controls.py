"""Faults a test injects: failing routes, Discord's rate limits, and gateway trouble.

A mixin of ``DiscordEmulator`` (``server.py``): the REST router consults ``faults`` and the
enabled limits on every request (``rest/routing.py``); the gateway ones act on the bot's
connections (``gateway/``).
"""

from __future__ import annotations

from tests.discord_emulator.faults import ChannelRateLimit, GlobalRateLimit, RouteFault
from tests.discord_emulator.gateway.protocol import INVALID_SESSION, RECONNECT

__all__ = ["FaultControls"]


class FaultControls:
    """Make Discord misbehave, as it sometimes does."""

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
