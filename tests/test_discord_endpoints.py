"""DISCORD_API_BASE / DISCORD_GATEWAY_URL: validation, application to discord.py, restore."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import discord.gateway
import discord.http
import pytest
import yarl

from bot.discord.endpoints import (
    DEFAULT_API_BASE,
    DEFAULT_GATEWAY_URL,
    apply_discord_endpoints,
    current_discord_endpoints,
    endpoints_from_env,
    resolve_discord_endpoints,
)


@pytest.fixture(autouse=True)
def restore_defaults() -> Iterator[None]:
    yield
    apply_discord_endpoints()


def test_library_defaults_are_discords_own() -> None:
    apply_discord_endpoints()
    assert discord.http.Route.BASE == "https://discord.com/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"
    assert current_discord_endpoints().is_default


def test_apply_redirects_rest_routes_and_the_gateway(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.discord.endpoints"):
        apply_discord_endpoints("http://127.0.0.1:8080/api/v10/", "ws://127.0.0.1:8080")

    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=5)
    assert route.url == "http://127.0.0.1:8080/api/v10/channels/5/messages"
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert isinstance(gateway, yarl.URL)
    assert str(gateway.with_query(v=10)) == "ws://127.0.0.1:8080/?v=10"
    assert any("127.0.0.1:8080" in r.getMessage() for r in caplog.records)


def test_applying_defaults_restores_the_originals() -> None:
    apply_discord_endpoints("https://127.0.0.1:8443/api/v10", "wss://127.0.0.1:8443/gateway")
    apply_discord_endpoints(DEFAULT_API_BASE, DEFAULT_GATEWAY_URL)
    assert discord.http.Route.BASE == DEFAULT_API_BASE
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "wss://gateway.discord.gg/"


def test_apply_is_idempotent() -> None:
    first = apply_discord_endpoints("https://127.0.0.1:8443/api/v10", "wss://127.0.0.1:8443/gw")
    second = apply_discord_endpoints("https://127.0.0.1:8443/api/v10", "wss://127.0.0.1:8443/gw")
    assert first == second == current_discord_endpoints()


@pytest.mark.parametrize(
    ("api_base", "gateway_url", "setting"),
    [
        ("ftp://discord.com/api", DEFAULT_GATEWAY_URL, "DISCORD_API_BASE"),
        ("discord.com/api/v10", DEFAULT_GATEWAY_URL, "DISCORD_API_BASE"),
        ("", DEFAULT_GATEWAY_URL, "DISCORD_API_BASE"),
        ("https://127.0.0.1/api?v=10", DEFAULT_GATEWAY_URL, "DISCORD_API_BASE"),
        (DEFAULT_API_BASE, "https://gateway.discord.gg", "DISCORD_GATEWAY_URL"),
        (DEFAULT_API_BASE, "wss://gateway.discord.gg/?v=10", "DISCORD_GATEWAY_URL"),
        (DEFAULT_API_BASE, "not a url", "DISCORD_GATEWAY_URL"),
    ],
)
def test_bad_urls_raise_naming_the_setting(api_base: str, gateway_url: str, setting: str) -> None:
    with pytest.raises(ValueError, match=setting):
        apply_discord_endpoints(api_base, gateway_url)
    assert current_discord_endpoints().is_default  # nothing half-applied


def test_from_env_uses_defaults_for_unset_or_blank() -> None:
    assert endpoints_from_env({}) == resolve_discord_endpoints()
    assert endpoints_from_env({"DISCORD_API_BASE": "  "}).is_default
    env = {
        "DISCORD_API_BASE": "http://127.0.0.1:3000/api/v10",
        "DISCORD_GATEWAY_URL": "ws://127.0.0.1:3001/",
    }
    endpoints = endpoints_from_env(env)
    assert endpoints.api_base == "http://127.0.0.1:3000/api/v10"
    assert endpoints.gateway_url == "ws://127.0.0.1:3001"
    assert not endpoints.is_default
