"""``Gateway``: the websocket endpoint, one connection per socket.

It says HELLO, reads the client's frames and routes their opcodes, notes who closed a
connection (a clean close by the client ends its session, as on Discord) and drops
connections or sends bare opcodes when a test asks. Sessions and the wire come from the
``sessions`` and ``wire`` mixins.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.discord_emulator.gateway.protocol import (
    CLOSE_DECODE_ERROR,
    CLOSE_INVALID_API_VERSION,
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_UNKNOWN_ERROR,
    CLOSE_UNKNOWN_OPCODE,
    HEARTBEAT,
    HEARTBEAT_ACK,
    HELLO,
    IDENTIFY,
    PRESENCE_UPDATE,
    REQUEST_GUILD_MEMBERS,
    RESUME,
    VOICE_STATE_UPDATE,
)
from tests.discord_emulator.gateway.sessions import GatewaySession, SessionOps
from tests.discord_emulator.gateway.wire import Compressor, GatewayConnection, GatewayFrame, WireOps

if TYPE_CHECKING:
    from tests.discord_emulator.server import DiscordEmulator

log = logging.getLogger(__name__)


class Gateway(WireOps, SessionOps):
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

    # -- connection handler -------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
        await ws.prepare(request)
        compress = request.query.get("compress")
        try:
            compressor = Compressor(compress if compress else None)
        except ValueError:
            compressor = Compressor(None)
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

    # -- faults -------------------------------------------------------------

    async def drop(self, code: int | None = CLOSE_UNKNOWN_ERROR) -> int:
        """Close every live connection; ``code=None`` cuts TCP with no close frame."""
        conns = list(self.connections)
        for conn in conns:
            if code is None:
                log.info("gateway aborting conn=%s (abnormal closure)", conn.id)
                self._record_close(conn, "CLOSE abnormal", None)
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
