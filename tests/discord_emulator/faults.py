"""Injected REST failures: rate limits and server errors, shaped as Discord sends them.

discord.py only waits out a 429 that carries a ``Via`` header and a JSON body with
``retry_after`` (anything else it treats as a Cloudflare ban), and retries 500/502/504
itself; the shapes here are what make those code paths run.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{[a-zA-Z_]+\}")


def compile_path(pattern: str) -> re.Pattern[str]:
    """A route template (``/channels/{channel_id}/messages``) or a concrete path, as a regex.

    ``{name}`` matches one path segment; ``*`` matches the rest of the path.
    """
    pattern = pattern.rstrip("/") or "/"
    out = []
    pos = 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]).replace(r"\*", ".*"))
        out.append(r"[^/]+")
        pos = m.end()
    out.append(re.escape(pattern[pos:]).replace(r"\*", ".*"))
    return re.compile("".join(out))


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON with ``Content-Type`` exactly ``application/json`` (discord.py compares it verbatim)."""
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, headers=all_headers
    )


@dataclass
class RouteFault:
    """Answer matching requests with an error ``times`` times (``hits`` counts them)."""

    method: str
    path: str
    status: int
    retry_after: float = 0.3
    times: int = 1
    code: int | None = None
    message: str | None = None
    is_global: bool = False
    via: bool = True
    hits: int = 0
    hit_times: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self._regex = compile_path(self.path)

    @property
    def exhausted(self) -> bool:
        return self.hits >= self.times

    def matches(self, method: str, path: str) -> bool:
        if self.exhausted:
            return False
        if self.method not in ("*", method.upper()):
            return False
        return self._regex.fullmatch(path.rstrip("/") or "/") is not None

    def respond(self) -> web.Response:
        self.hits += 1
        self.hit_times.append(time.monotonic())
        if self.status == 429:
            return self._rate_limited()
        default_message = {
            500: "500: Internal Server Error",
            502: "502: Bad Gateway",
            503: "503: Service Unavailable",
            504: "504: Gateway Timeout",
            403: "Missing Permissions",
            404: "404: Not Found",
        }.get(self.status, f"{self.status}: Error")
        body = {
            "message": self.message or default_message,
            "code": self.code if self.code is not None else 0,
        }
        return json_response(body, status=self.status)

    def _rate_limited(self) -> web.Response:
        scope = "global" if self.is_global else "user"
        headers = {
            "Retry-After": str(max(1, math.ceil(self.retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
            "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
            "X-RateLimit-Bucket": "emulated-" + re.sub(r"\W", "", self.path)[:24],
            "X-RateLimit-Scope": scope,
        }
        if self.is_global:
            headers["X-RateLimit-Global"] = "true"
        if self.via:
            headers["Via"] = "1.1 google"
        body = {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
        }
        if self.code is not None:
            body["code"] = self.code
        return json_response(body, status=429, headers=headers)


@dataclass
class ChannelRateLimit:
    """Discord's per-channel bucket for message writes, with the headers it sends.

    Opt-in (``DiscordEmulator.limit_message_rate``): with the headers discord.py waits a
    bucket out by itself, so a bot that streams edits too fast gets slowed down exactly
    as on Discord, and a test can see it (``throttled``) instead of guessing.
    """

    limit: int = 5
    per: float = 5.0
    methods: tuple[str, ...] = ("POST", "PATCH", "DELETE")
    windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    throttled: int = 0

    def __post_init__(self) -> None:
        self._regex = compile_path("/channels/{channel_id}/messages*")

    def channel_of(self, method: str, path: str) -> str | None:
        if method.upper() not in self.methods or not self._regex.fullmatch(path):
            return None
        parts = path.split("/")
        # only the message itself, not /threads, /reactions or /bulk-delete
        if len(parts) > 5 or (len(parts) == 5 and not parts[4].isdigit()):
            return None
        return parts[2]

    def acquire(self, method: str, path: str) -> web.Response | dict[str, str] | None:
        """None: not limited; headers: allowed; a response: 429."""
        channel = self.channel_of(method, path)
        if channel is None:
            return None
        now = time.monotonic()
        reset_at, used = self.windows.get(channel, (now + self.per, 0))
        if now >= reset_at:
            reset_at, used = now + self.per, 0
        # rounded up: a client that waits exactly this long must find the window reset
        reset_after = max(math.ceil((reset_at - now) * 1000) / 1000, 0.001)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "emulated-channel-messages",
        }
        if used >= self.limit:
            self.throttled += 1
            log.warning("rate limited %s %s for %.3fs", method, path, reset_after)
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(max(1, math.ceil(reset_after))),
                    "Via": "1.1 google",
                }
            )
            body = {
                "message": "You are being rate limited.",
                "retry_after": round(reset_after, 3),
                "global": False,
            }
            return json_response(body, status=429, headers=headers)
        used += 1
        self.windows[channel] = (reset_at, used)
        headers["X-RateLimit-Remaining"] = str(self.limit - used)
        return headers


@dataclass
class GlobalRateLimit:
    """Discord's global limit: about 50 requests per second per bot, across every route.

    Opt-in (``DiscordEmulator.limit_global_rate``). Interaction callbacks and webhooks are not
    counted, as on Discord. A request over the budget gets the global 429 discord.py waits out
    for every route at once (``X-RateLimit-Global``, ``"global": true``, ``Via``); ``throttled``
    counts them. A fixed window of ``per`` seconds: the simplest model that a client sending
    faster than ``limit`` per window runs into.
    """

    limit: int = 50
    per: float = 1.0
    window_start: float = 0.0
    used: int = 0
    throttled: int = 0

    def acquire(self, path: str) -> web.Response | None:
        """None: allowed; a response: the global 429."""
        if path.startswith(("/interactions/", "/webhooks/")):
            return None
        now = time.monotonic()
        if now >= self.window_start + self.per:
            self.window_start, self.used = now, 0
        if self.used < self.limit:
            self.used += 1
            return None
        self.throttled += 1
        retry_after = max(math.ceil((self.window_start + self.per - now) * 1000) / 1000, 0.001)
        log.warning("global rate limit: %s refused for %.3fs", path, retry_after)
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Global": "true",
            "X-RateLimit-Scope": "global",
            "Via": "1.1 google",
        }
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": True,
        }
        return json_response(body, status=429, headers=headers)
