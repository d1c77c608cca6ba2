"""Downloading a text attachment, never more than a limit of bytes.

The size Discord announces for an attachment is what the uploader's client claimed; the URL
may serve far more. ``discord.Attachment.read`` reads the whole body into memory, so a file
claiming to be tiny could make every message cost as much memory as its server chose to send.
Here the body is streamed and the download stops as soon as it passes the limit.
"""

from __future__ import annotations

import logging

import aiohttp

log = logging.getLogger(__name__)

__all__ = ["AttachmentTooLarge", "AttachmentUnreadable", "read_at_most"]

_CHUNK = 64 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10, sock_read=10)
"""A slow attachment server must not hold the recording of a message for long."""


class AttachmentUnreadable(Exception):
    """The attachment could not be downloaded (network, HTTP status, timeout)."""


class AttachmentTooLarge(Exception):
    """The attachment's URL served more than the limit, whatever size was announced."""


async def read_at_most(url: str, limit: int) -> bytes:
    """The body at ``url`` if it is at most ``limit`` bytes; else ``AttachmentTooLarge``,
    having read no more than about ``limit`` bytes (plus one network chunk)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.get(url) as response,
        ):
            if response.status != 200:
                raise AttachmentUnreadable(f"HTTP {response.status}")
            length = response.content_length
            if length is not None and length > limit:
                response.close()
                raise AttachmentTooLarge(f"its URL serves {length} bytes")
            body = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > limit:
                    response.close()  # drop the connection: reading on would fetch the rest
                    raise AttachmentTooLarge(f"its URL serves more than {limit} bytes")
            return bytes(body)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise AttachmentUnreadable(str(exc) or type(exc).__name__) from None
