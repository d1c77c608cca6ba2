"""Gateway frames on the wire: encoded, compressed, sent, closed and logged.

Each websocket connection has its own transport compressor (zlib-stream by default, the
same stream for the connection's whole life, a sync flush after every payload) because
that is what discord.py asks for and decodes. Every frame, either direction, is kept as a
``GatewayFrame`` for tests to look at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.discord_emulator.gateway.protocol import HEARTBEAT, HEARTBEAT_ACK, OP_NAMES

if TYPE_CHECKING:
    from tests.discord_emulator.gateway.sessions import GatewaySession

try:  # pragma: no cover - only with discord.py[speed]
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

log = logging.getLogger(__name__)


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


class Compressor:
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
    compressor: Compressor
    session: GatewaySession | None = None
    closing_by_server: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WireOps:
    """Sending, logging and closing frames: a mixin of ``connections.Gateway``."""

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
        self._record_close(conn, f"CLOSE {code}", {"code": code, "reason": reason})
        await conn.ws.close(code=code, message=reason.encode())

    def _record_close(self, conn: GatewayConnection, name: str, data: Any) -> None:
        """Mark ``conn`` as closed by the server and log the closing as a sent frame."""
        conn.closing_by_server = True
        self.log.append(
            GatewayFrame(
                "send",
                conn.id,
                conn.session.session_id if conn.session else None,
                None,
                name,
                None,
                data,
                time.monotonic(),
                path=conn.path,
            )
        )
