"""Gateway sessions: IDENTIFY/READY, RESUME with replay, member requests, dispatch by intents.

A session outlives its connections so a RESUME on a new connection replays what was
dispatched after the client's last ``seq`` (or from where a test asked).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.discord_emulator.gateway.protocol import (
    ALL_INTENTS,
    CLOSE_ALREADY_AUTHENTICATED,
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_DISALLOWED_INTENTS,
    CLOSE_INVALID_INTENTS,
    CLOSE_INVALID_SHARD,
    CLOSE_SHARDING_REQUIRED,
    CLOSE_UNKNOWN_ERROR,
    DISPATCH,
    GUILD_MEMBERS,
    GUILDS,
    INVALID_SESSION,
    PRIVILEGED_INTENTS,
)
from tests.discord_emulator.gateway.wire import GatewayConnection

log = logging.getLogger(__name__)

REPLAY_BUFFER = 5000


@dataclass(eq=False)
class GatewaySession:
    session_id: str
    user_id: int
    intents: int
    shard: tuple[int, int] | None
    seq: int = 0
    buffer: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    connection: GatewayConnection | None = None
    invalidated: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Set by a test: the next RESUME replays from this sequence number (inclusive) even if
    # the client had already received those events. Cleared by that RESUME.
    replay_from: int | None = None

    def has_intent(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def sees_guild(self, guild_id: int | None) -> bool:
        """Whether this shard gets a guild's events; ``None`` (DMs) goes to shard 0 only."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id

    def dispatched(self, event: str, match: Callable[[Any], bool]) -> dict[str, Any] | None:
        """The last buffered dispatch of ``event`` whose data matches, or None."""
        for _, frame in reversed(self.buffer):
            if frame["t"] == event and match(frame["d"]):
                return frame
        return None


# Given a session, return the event data for it, or None to skip that session.
EventBuilder = Callable[[GatewaySession], dict[str, Any] | None]


class SessionOps:
    """Opening, resuming and dispatching to sessions: a mixin of ``connections.Gateway``."""

    async def _refuse_credentials(self, conn: GatewayConnection, data: dict[str, Any]) -> bool:
        """Close a connection that is already authenticated or sent the wrong token, as both
        IDENTIFY and RESUME must; True if it was closed."""
        if conn.session is not None:
            await self._close(conn, CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return True
        if data.get("token") != self.emu.token:
            await self._close(conn, CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return True
        return False

    async def _identify(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        self.identify_count += 1
        if await self._refuse_credentials(conn, data):
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents & ~ALL_INTENTS:
            await self._close(conn, CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return
        for name, bit in PRIVILEGED_INTENTS.items():
            if intents & bit and name not in self.emu.privileged_intents:
                await self._close(conn, CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
                return
        shard: tuple[int, int] | None = None
        if data.get("shard") is not None:
            shard_id, count = (int(x) for x in data["shard"])
            if count < 1 or not 0 <= shard_id < count:
                await self._close(conn, CLOSE_INVALID_SHARD, "Invalid shard.")
                return
            shard = (shard_id, count)
        elif self.emu.recommended_shards > 1:
            await self._close(conn, CLOSE_SHARDING_REQUIRED, "Sharding required.")
            return
        session = GatewaySession(
            session_id=secrets.token_hex(16),
            user_id=self.emu.bot_user.id,
            intents=intents,
            shard=shard,
        )
        self.sessions[session.session_id] = session
        self.identified.append(shard)
        conn.session = session
        async with session.lock:
            session.connection = conn
            await self._dispatch_locked(session, "READY", self.emu.ready_payload(session))
            if session.has_intent(GUILDS):
                for guild in list(self.emu.store.guilds.values()):
                    if session.sees_guild(guild.id):
                        await self._dispatch_locked(
                            session, "GUILD_CREATE", self.emu.guild_create_payload(guild, session)
                        )

    async def _resume(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        self.resume_count += 1
        if await self._refuse_credentials(conn, data):
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if (
            session is None
            or session.invalidated
            or not isinstance(seq, int)
            or seq > session.seq
            or (session.buffer and seq < session.buffer[0][0] - 1)
        ):
            log.info("gateway RESUME refused on conn=%s: invalid session", conn.id)
            await self._send(conn, {"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        async with session.lock:
            old = session.connection
            session.connection = conn
            conn.session = session
            if old is not None and old is not conn and not old.ws.closed:
                old.session = None
                await self._close(old, CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere.")
            after = seq
            if session.replay_from is not None:
                after = min(seq, session.replay_from - 1)
                log.info(
                    "gateway RESUME of session %s at seq=%s replays from s=%s (test-requested)",
                    session.session_id,
                    seq,
                    after + 1,
                )
                session.replay_from = None
            for s, frame in session.buffer:
                if s > after:
                    await self._send(conn, frame, replayed=True)
            await self._dispatch_locked(session, "RESUMED", {"_trace": ['["discord-emulator"]']})

    async def _request_members(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        session = conn.session
        assert session is not None
        try:
            guild = self.emu.store.guilds[int(data.get("guild_id", 0))]
        except (KeyError, TypeError, ValueError):
            return
        query = data.get("query")
        user_ids = {int(u) for u in data.get("user_ids") or []}
        if query == "" and not session.has_intent(GUILD_MEMBERS):
            await self._close(conn, CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        members = []
        for member in guild.members.values():
            user = self.emu.store.users[member.user_id]
            if user_ids and member.user_id not in user_ids:
                continue
            if query and not user.username.lower().startswith(query.lower()):
                continue
            members.append(self.emu.member_payload(member))
        limit = int(data.get("limit") or 0)
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if user_ids:
            found = {int(m["user"]["id"]) for m in members}
            chunk["not_found"] = [str(u) for u in user_ids - found]
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        async with session.lock:
            await self._dispatch_locked(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _dispatch_locked(
        self, session: GatewaySession, event: str, data: Any, *, redelivered: bool = False
    ) -> None:
        session.seq += 1
        frame = {"op": DISPATCH, "d": data, "s": session.seq, "t": event}
        session.buffer.append((session.seq, frame))
        if len(session.buffer) > REPLAY_BUFFER:
            del session.buffer[: len(session.buffer) - REPLAY_BUFFER]
        conn = session.connection
        if conn is not None and not conn.ws.closed:
            await self._send(conn, frame, redelivered=redelivered)
        else:
            log.info(
                "gateway %s s=%s buffered for session %s", event, session.seq, session.session_id
            )

    async def dispatch(
        self,
        event: str,
        build: EventBuilder,
        *,
        guild_id: int | None,
        redelivered: bool = False,
    ) -> int:
        """Send an event to every live session that should see it (buffered while away).

        Returns how many sessions it was dispatched to.
        """
        count = 0
        for session in list(self.sessions.values()):
            if session.invalidated or not session.sees_guild(guild_id):
                continue
            data = build(session)
            if data is None:
                continue
            async with session.lock:
                await self._dispatch_locked(session, event, data, redelivered=redelivered)
            count += 1
        return count

    def replay_on_next_resume(self, replay_from: int) -> None:
        """Make every live session's next RESUME replay from ``replay_from`` (inclusive).

        Discord may replay events the client already received (it resumes from what it
        believes was acknowledged); this makes that happen on demand.
        """
        if replay_from < 1:
            raise ValueError("replay_from is a sequence number, 1 or more")
        for session in self.sessions.values():
            if session.invalidated:
                continue
            if session.buffer and replay_from < session.buffer[0][0]:
                raise ValueError(
                    f"s={replay_from} is no longer in session {session.session_id}'s replay "
                    f"buffer (oldest s={session.buffer[0][0]})"
                )
            if replay_from > session.seq:
                raise ValueError(
                    f"s={replay_from} was never dispatched to session {session.session_id} "
                    f"(last s={session.seq})"
                )
            session.replay_from = replay_from

    def invalidate_all(self) -> None:
        for session in self.sessions.values():
            session.invalidated = True
        self.sessions.clear()
