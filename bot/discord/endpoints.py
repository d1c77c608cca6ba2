"""Where discord.py sends its REST calls and opens its gateway.

Operators run bots behind HTTP and gateway proxies, and the test suite points the real
client at a loopback emulator; both need the same two knobs. discord.py keeps them as
class attributes (``Route.BASE`` is read whenever a route is built, so interaction
callbacks and webhooks follow it too; ``DiscordWebSocket.DEFAULT_GATEWAY`` is where a
new session starts), so they must be set before login and are process-wide.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import yarl

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY_URL = "wss://gateway.discord.gg"

API_BASE_SETTING = "DISCORD_API_BASE"
GATEWAY_URL_SETTING = "DISCORD_GATEWAY_URL"


@dataclass(frozen=True)
class DiscordEndpoints:
    """The two addresses, already validated and normalised."""

    api_base: str
    gateway_url: str

    @property
    def is_default(self) -> bool:
        return self.api_base == DEFAULT_API_BASE and self.gateway_url == DEFAULT_GATEWAY_URL


def _normalise_api_base(value: str) -> str:
    text = value.strip()
    url = _parse(text, API_BASE_SETTING)
    if url.scheme not in ("http", "https"):
        raise ValueError(f"{API_BASE_SETTING} must be an http:// or https:// URL, got {value!r}")
    if url.query_string or url.fragment:
        raise ValueError(f"{API_BASE_SETTING} must not carry a query or fragment, got {value!r}")
    # discord.py appends paths that start with '/', so a trailing slash would double it.
    return str(url).rstrip("/")


def _normalise_gateway_url(value: str) -> str:
    text = value.strip()
    url = _parse(text, GATEWAY_URL_SETTING)
    if url.scheme not in ("ws", "wss"):
        raise ValueError(f"{GATEWAY_URL_SETTING} must be a ws:// or wss:// URL, got {value!r}")
    if url.query_string or url.fragment:
        # discord.py replaces the query with its own (v, encoding, compress).
        raise ValueError(f"{GATEWAY_URL_SETTING} must not carry a query or fragment, got {value!r}")
    return str(url).rstrip("/")


def _parse(text: str, setting: str) -> yarl.URL:
    if not text:
        raise ValueError(f"{setting} must not be empty")
    try:
        url = yarl.URL(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{setting} is not a valid URL: {text!r}") from exc
    if not url.is_absolute() or not url.host:
        raise ValueError(f"{setting} must be an absolute URL with a host, got {text!r}")
    return url


def resolve_discord_endpoints(
    api_base: str = DEFAULT_API_BASE, gateway_url: str = DEFAULT_GATEWAY_URL
) -> DiscordEndpoints:
    """Validate both addresses; a bad one raises ValueError naming its setting."""
    return DiscordEndpoints(_normalise_api_base(api_base), _normalise_gateway_url(gateway_url))


def endpoints_from_env(env: Mapping[str, str]) -> DiscordEndpoints:
    """Read the two settings from an environment mapping; unset or blank means Discord's own."""
    api_base = env.get(API_BASE_SETTING, "").strip() or DEFAULT_API_BASE
    gateway_url = env.get(GATEWAY_URL_SETTING, "").strip() or DEFAULT_GATEWAY_URL
    return resolve_discord_endpoints(api_base, gateway_url)


def apply_discord_endpoints(
    api_base: str = DEFAULT_API_BASE, gateway_url: str = DEFAULT_GATEWAY_URL
) -> DiscordEndpoints:
    """Point discord.py at these addresses; call before login.

    Idempotent, and calling it with the defaults restores discord.py's own values, which
    is how tests undo it.
    """
    endpoints = resolve_discord_endpoints(api_base, gateway_url)
    import discord.gateway  # here, not at the top: the settings (and so every CLI command)
    import discord.http  # read this module, and discord.py takes a second to import

    discord.http.Route.BASE = endpoints.api_base
    # discord.py calls .with_query() on it, so it must be a yarl.URL; Discord's own value
    # carries a trailing slash, keep it byte-identical to the library default.
    gateway = endpoints.gateway_url + "/" if endpoints.is_default else endpoints.gateway_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    if endpoints.is_default:
        log.debug("Discord endpoints: Discord's own")
    else:
        log.info(
            "Discord endpoints: REST %s, gateway %s", endpoints.api_base, endpoints.gateway_url
        )
    return endpoints


async def recommended_shard_count(api_base: str, token: str) -> int:
    """Discord's recommended shard count (``GET /gateway/bot``).

    discord.py's sharded client asks this itself only to also take the gateway URL Discord
    names, which would bypass DISCORD_GATEWAY_URL (a proxy, the tests' emulator); asking it
    here and passing the count keeps discord.py on the configured gateway.
    """
    import aiohttp

    url = f"{api_base}/gateway/bot"
    headers = {"Authorization": f"Bot {token}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session,
        session.get(url, headers=headers) as response,
    ):
        response.raise_for_status()
        data = await response.json(content_type=None)
    shards = data.get("shards") if isinstance(data, dict) else None
    if not isinstance(shards, int) or shards < 1:
        raise ValueError(f"GET {url} gave no shard count: {data!r}")
    return shards


def current_discord_endpoints() -> DiscordEndpoints:
    """What discord.py will use right now (for diagnostics and tests)."""
    import discord.gateway
    import discord.http

    return DiscordEndpoints(
        discord.http.Route.BASE,
        str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY).rstrip("/"),
    )
