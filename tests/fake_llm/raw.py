"""Raw replay: the fake server answers with bytes a real server once sent, untouched.

Scripted replies (``replies.py``) say what the fake thinks a server sends; a raw reply is
what one did send (``../shared/data/llm-captures``): reasoning fields, comments, ``event:``
lines, error envelopes and bugs included. How the bytes are cut matters to a client's SSE
decoder, so a stream can go out one event per write (as servers flush) or in pieces of a
few bytes that split events, lines and multi-byte characters anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)

__all__ = ["RawReply", "serve_raw", "sse_events"]

# An SSE event ends at a blank line; servers use LF, some CRLF.
_EVENT_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class RawReply:
    """A body served verbatim with its status and content type.

    ``piece_size=None`` writes a stream one SSE event per write (a JSON body in one
    write); a number writes every body in pieces of that many bytes.
    """

    body: bytes
    status: int = 200
    content_type: str = "text/event-stream"
    piece_size: int | None = None
    piece_delay: float = 0.0

    def pieces(self) -> list[bytes]:
        if self.piece_size is not None:
            size = max(1, self.piece_size)
            return [self.body[i : i + size] for i in range(0, len(self.body), size)]
        if self.content_type.startswith("text/event-stream"):
            return sse_events(self.body)
        return [self.body]


def sse_events(body: bytes) -> list[bytes]:
    """The body cut after each event's blank line; nothing is dropped or added."""
    events: list[bytes] = []
    start = 0
    for match in _EVENT_END.finditer(body):
        events.append(body[start : match.end()])
        start = match.end()
    if start < len(body):
        events.append(body[start:])
    return events


async def serve_raw(request: web.Request, reply: RawReply) -> web.StreamResponse:
    """Write the body as ``reply.pieces()`` says, flushing each piece to the socket."""
    response = web.StreamResponse(
        status=reply.status,
        headers={"Content-Type": reply.content_type, "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    try:
        for piece in reply.pieces():
            await response.write(piece)
            if reply.piece_delay:
                await asyncio.sleep(reply.piece_delay)
        await response.write_eof()
    except ConnectionResetError:
        log.info("fake LLM: client hung up during a raw replay")
    return response
