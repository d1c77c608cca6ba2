"""The gateway: HELLO, heartbeats, IDENTIFY/READY, RESUME with replay, dispatch by intents.

Each websocket connection has its own transport compressor (zlib-stream by default, the
same stream for the connection's whole life, a sync flush after every payload) because
that is what discord.py asks for and decodes; a session outlives its connections so a
RESUME on a new connection replays what was dispatched after the client's last ``seq``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.discord_emulator.server import DiscordEmulator

try:  # pragma: no cover - only with discord.py[speed]
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

log = logging.getLogger(__name__)

# Opcodes
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

OP_NAMES = {
    0: "DISPATCH",
    1: "HEARTBEAT",
    2: "IDENTIFY",
    3: "PRESENCE_UPDATE",
    4: "VOICE_STATE_UPDATE",
    6: "RESUME",
    7: "RECONNECT",
    8: "REQUEST_GUILD_MEMBERS",
    9: "INVALID_SESSION",
    10: "HELLO",
    11: "HEARTBEAT_ACK",
}

# Close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
CLOSE_INVALID_API_VERSION = 4012
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014

# Intents
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_PRESENCES = 1 << 8
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
GUILD_MESSAGE_TYPING = 1 << 11
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
DIRECT_MESSAGE_TYPING = 1 << 14
MESSAGE_CONTENT = 1 << 15
ALL_INTENTS = (1 << 26) - 1
PRIVILEGED_INTENTS = {
    "members": GUILD_MEMBERS,
    "presences": GUILD_PRESENCES,
    "message_content": MESSAGE_CONTENT,
}

REPLAY_BUFFER = 5000


@dataclass
class GatewayFrame:
    """One frame on the wire, either direction, decoded."""

    direction: str  # "send" (emulator -> bot) or "recv" (bot -> emulator)
    connection_id: int
    session_id: str | None
    op: int | None
    t: str | None
    s: int | None
    d: Any
    time: float
    replayed: bool = False
    path: str = "/"
    # a new dispatch (new ``s``) of an event the session was already sent
    redelivered: bool = False

    @property
    def name(self) -> str:
        """The event name for dispatches, else the opcode's name."""
        return self.t or OP_NAMES.get(self.op if self.op is not None else -1, str(self.op))


class _Compressor:
    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        self._zlib = zlib.compressobj() if kind == "zlib-stream" else None
        self._zstd = None
        if kind == "zstd-stream":
            if zstandard is None:
                raise ValueError("zstd-stream needs the zstandard module")
            self._zstd = zstandard.ZstdCompressor().compressobj()

    def compress(self, text: str) -> bytes | str:
        data = text.encode()
        if self._zlib is not None:
            return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:  # pragma: no cover - needs zstandard
            return self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return text


@dataclass(eq=False)
class GatewayConnection:
    id: int
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    compressor: _Compressor
    session: GatewaySession | None = None
    closing_by_server: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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


class Gateway:
    """All connections and sessions of the emulated gateway."""

    def __init__(self, emulator: DiscordEmulator) -> None:
        self.emu = emulator
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[GatewayConnection] = []
        self.log: list[GatewayFrame] = []
        self.identify_count = 0
        # The shard ([id, count], or None unsharded) of every IDENTIFY that opened a session.
        self.identified: list[tuple[int, int] | None] = []
        self.resume_count = 0
        self._conn_ids = itertools.count(1)

    # -- wire ---------------------------------------------------------------

    async def _send(
        self,
        conn: GatewayConnection,
        payload: dict[str, Any],
        *,
        replayed: bool = False,
        redelivered: bool = False,
    ) -> None:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        session_id = conn.session.session_id if conn.session else None
        self._record(
            "send",
            conn,
            payload,
            replayed=replayed,
            redelivered=redelivered,
            session_id=session_id,
        )
        async with conn.send_lock:
            if conn.ws.closed:
                return
            data = conn.compressor.compress(text)
            try:
                if isinstance(data, bytes):
                    await conn.ws.send_bytes(data)
                else:
                    await conn.ws.send_str(data)
            except (ConnectionError, RuntimeError) as exc:
                log.debug("gateway send on a closing connection %s failed: %s", conn.id, exc)

    def _record(
        self,
        direction: str,
        conn: GatewayConnection,
        payload: dict[str, Any],
        *,
        replayed: bool = False,
        redelivered: bool = False,
        session_id: str | None = None,
    ) -> None:
        frame = GatewayFrame(
            direction=direction,
            connection_id=conn.id,
            session_id=session_id,
            op=payload.get("op"),
            t=payload.get("t"),
            s=payload.get("s"),
            d=payload.get("d"),
            time=time.monotonic(),
            replayed=replayed,
            path=conn.path,
            redelivered=redelivered,
        )
        self.log.append(frame)
        level = logging.DEBUG if frame.op in (HEARTBEAT, HEARTBEAT_ACK) else logging.INFO
        log.log(
            level,
            "gateway %s conn=%s %s s=%s%s%s",
            "->" if direction == "send" else "<-",
            conn.id,
            frame.name,
            frame.s,
            " (replay)" if replayed else "",
            " (redelivery)" if redelivered else "",
        )

    async def _close(self, conn: GatewayConnection, code: int, reason: str) -> None:
        log.info("gateway closing conn=%s with %s (%s)", conn.id, code, reason)
        conn.closing_by_server = True
        self.log.append(
            GatewayFrame(
                "send",
                conn.id,
                conn.session.session_id if conn.session else None,
                None,
                f"CLOSE {code}",
                None,
                {"code": code, "reason": reason},
                time.monotonic(),
                path=conn.path,
            )
        )
        await conn.ws.close(code=code, message=reason.encode())

    # -- connection handler -------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress")
        try:
            compressor = _Compressor(compress if compress else None)
        except ValueError:
            compressor = _Compressor(None)
            compress = None
        conn = GatewayConnection(
            id=next(self._conn_ids),
            ws=ws,
            request=request,
            path=request.path,
            compressor=compressor,
        )
        self.connections.append(conn)
        log.info(
            "gateway connection %s opened on %s (v=%s encoding=%s compress=%s)",
            conn.id,
            request.path,
            request.query.get("v"),
            request.query.get("encoding"),
            compress,
        )
        try:
            if request.query.get("v", "10") != "10":
                await self._close(conn, CLOSE_INVALID_API_VERSION, "Invalid API version.")
                return ws
            if request.query.get("encoding", "json") != "json":
                await self._close(conn, CLOSE_DECODE_ERROR, "Only JSON encoding is emulated.")
                return ws
            await self._send(
                conn,
                {
                    "op": HELLO,
                    "d": {
                        "heartbeat_interval": self.emu.heartbeat_interval_ms,
                        "_trace": ['["discord-emulator",{"micros":0}]'],
                    },
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        payload = json.loads(msg.data)
                    except ValueError:
                        await self._close(conn, CLOSE_DECODE_ERROR, "Error while decoding payload.")
                        break
                    if not isinstance(payload, dict):
                        await self._close(conn, CLOSE_DECODE_ERROR, "Error while decoding payload.")
                        break
                    await self._on_payload(conn, payload)
                elif msg.type is WSMsgType.BINARY:
                    await self._close(conn, CLOSE_DECODE_ERROR, "Binary frames are not emulated.")
                    break
                else:  # pragma: no cover - aiohttp ends the iteration on close frames
                    break
        finally:
            self._on_closed(conn)
        return ws

    def _on_closed(self, conn: GatewayConnection) -> None:
        client_code = conn.ws.close_code
        log.info(
            "gateway connection %s closed (code %s, by %s)",
            conn.id,
            client_code,
            "emulator" if conn.closing_by_server else "client",
        )
        if conn in self.connections:
            self.connections.remove(conn)
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            # A clean close by the client ends its session, as on Discord.
            if not conn.closing_by_server and client_code in (1000, 1001):
                session.invalidated = True
                self.sessions.pop(session.session_id, None)
        self.emu.notify()

    async def _on_payload(self, conn: GatewayConnection, payload: dict[str, Any]) -> None:
        session_id = conn.session.session_id if conn.session else None
        op = payload.get("op")
        self._record("recv", conn, payload, session_id=session_id)
        data = payload.get("d")
        if op == HEARTBEAT:
            await self._send(conn, {"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(conn, data if isinstance(data, dict) else {})
        elif op == RESUME:
            await self._resume(conn, data if isinstance(data, dict) else {})
        elif op in (PRESENCE_UPDATE, VOICE_STATE_UPDATE, REQUEST_GUILD_MEMBERS):
            if conn.session is None:
                await self._close(conn, CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
            elif op == REQUEST_GUILD_MEMBERS:
                await self._request_members(conn, data if isinstance(data, dict) else {})
        else:
            await self._close(conn, CLOSE_UNKNOWN_OPCODE, "Unknown opcode.")
        self.emu.notify()

    async def _identify(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        self.identify_count += 1
        if conn.session is not None:
            await self._close(conn, CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if data.get("token") != self.emu.token:
            await self._close(conn, CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
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
        if conn.session is not None:
            await self._close(conn, CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return
        if data.get("token") != self.emu.token:
            await self._close(conn, CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
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

    # -- dispatch -----------------------------------------------------------

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

    # -- faults -------------------------------------------------------------

    async def drop(self, code: int | None = CLOSE_UNKNOWN_ERROR) -> int:
        """Close every live connection; ``code=None`` cuts TCP with no close frame."""
        conns = list(self.connections)
        for conn in conns:
            if code is None:
                log.info("gateway aborting conn=%s (abnormal closure)", conn.id)
                conn.closing_by_server = True
                self.log.append(
                    GatewayFrame(
                        "send",
                        conn.id,
                        conn.session.session_id if conn.session else None,
                        None,
                        "CLOSE abnormal",
                        None,
                        None,
                        time.monotonic(),
                        path=conn.path,
                    )
                )
                if conn.session is not None and conn.session.connection is conn:
                    conn.session.connection = None
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                if conn.session is not None and conn.session.connection is conn:
                    conn.session.connection = None
                await self._close(conn, code, "Dropped by the test.")
        return len(conns)

    async def send_op(self, op: int, d: Any) -> None:
        """Send a bare opcode (RECONNECT, INVALID_SESSION, HEARTBEAT) to every connection."""
        for conn in list(self.connections):
            await self._send(conn, {"op": op, "d": d, "s": None, "t": None})

    def invalidate_all(self) -> None:
        for session in self.sessions.values():
            session.invalidated = True
        self.sessions.clear()
