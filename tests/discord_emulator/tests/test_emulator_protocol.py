"""The emulator's wire protocol, checked with a bare aiohttp client instead of discord.py.

These pin what discord.py depends on (zlib-stream framing, exact Content-Type, close
codes) so a change to the emulator that breaks them fails here with a precise message.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio

from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.errors import DiscordAPIError
from tests.discord_emulator.fixtures import make_bot, running_bot
from tests.discord_emulator.mentions import (
    filter_mentions,
    parse_mentions,
    validate_allowed_mentions,
)
from tests.discord_emulator.state import SnowflakeGenerator, snowflake_time

SYNC_FLUSH = b"\x00\x00\xff\xff"


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class ZlibStream:
    """The client half of zlib-stream: one inflater for the whole connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inflater = zlib.decompressobj()
        self.frames: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        self.frames.append(msg.data)
        assert msg.data.endswith(SYNC_FLUSH)
        return json.loads(self.inflater.decompress(msg.data))


def _gateway(emu: DiscordEmulator, **query: str) -> str:
    query = {"v": "10", "encoding": "json", **query}
    return emu.gateway_url + "/?" + "&".join(f"{k}={v}" for k, v in query.items())


def _identify(emu: DiscordEmulator, **overrides: Any) -> dict[str, Any]:
    d = {
        "token": emu.token,
        "intents": discord.Intents.default().value,
        "properties": {"os": "linux", "browser": "test", "device": "test"},
    }
    d.update(overrides)
    return {"op": 2, "d": d}


async def test_zlib_stream_framing_over_a_whole_session(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    emu = discord_emulator
    async with http.ws_connect(_gateway(emu, compress="zlib-stream")) as ws:
        stream = ZlibStream(ws)
        hello = await stream.receive()
        assert hello == {
            "op": 10,
            "d": {"heartbeat_interval": 41250, "_trace": hello["d"]["_trace"]},
            "s": None,
            "t": None,
        }
        await ws.send_json({"op": 1, "d": None})
        assert (await stream.receive())["op"] == 11
        await ws.send_json(_identify(emu))
        ready = await stream.receive()
        guild_create = await stream.receive()

    # One deflate stream: later frames do not inflate on their own.
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(stream.frames[-1])
    assert (ready["t"], ready["s"]) == ("READY", 1)
    assert ready["d"]["resume_gateway_url"] == emu.resume_gateway_url
    assert ready["d"]["application"] == {
        "id": str(emu.application_id),
        "flags": emu.application_flags,
    }
    assert ready["d"]["guilds"] == [{"id": str(emu.world.guild.id), "unavailable": True}]  # type: ignore[union-attr]
    assert (guild_create["t"], guild_create["s"]) == ("GUILD_CREATE", 2)
    guild = guild_create["d"]
    # Without GUILD_MEMBERS Discord sends only the bot's own member.
    assert [m["user"]["id"] for m in guild["members"]] == [str(emu.bot_user.id)]
    assert guild["channels"][0]["type"] == 0
    assert guild["roles"][0]["id"] == guild["id"]  # @everyone has the guild's id
    assert isinstance(guild["roles"][0]["permissions"], str)


async def test_uncompressed_connection_gets_text_frames(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(_gateway(discord_emulator)) as ws:
        msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.TEXT
    assert json.loads(msg.data)["op"] == 10


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"op": 2, "d": {"token": "wrong", "intents": 0, "properties": {}}}, 4004),
        ({"op": 3, "d": {"status": "online"}}, 4003),
        ({"op": 42, "d": None}, 4001),
        ({"op": 2, "d": {"token": "", "properties": {}}}, 4004),
    ],
    ids=["bad-token", "not-authenticated", "unknown-opcode", "empty-token"],
)
async def test_gateway_close_codes(
    discord_emulator: DiscordEmulator,
    http: aiohttp.ClientSession,
    payload: dict[str, Any],
    code: int,
) -> None:
    async with http.ws_connect(_gateway(discord_emulator)) as ws:
        await ws.receive(timeout=5)
        await ws.send_json(payload)
        msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == code


async def test_missing_intents_close_with_4013(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    emu = discord_emulator
    identify = _identify(emu)
    del identify["d"]["intents"]
    async with http.ws_connect(_gateway(emu)) as ws:
        await ws.receive(timeout=5)
        await ws.send_json(identify)
        msg = await ws.receive(timeout=5)
    assert msg.data == 4013


async def test_resume_of_an_unknown_session_is_invalid_session(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    emu = discord_emulator
    async with http.ws_connect(_gateway(emu)) as ws:
        await ws.receive(timeout=5)
        await ws.send_json({"op": 6, "d": {"token": emu.token, "session_id": "nope", "seq": 3}})
        msg = await ws.receive(timeout=5)
    assert json.loads(msg.data) == {"op": 9, "d": False, "s": None, "t": None}


async def test_rest_json_content_type_is_exact_and_auth_is_required(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    emu = discord_emulator
    auth = {"Authorization": f"Bot {emu.token}"}
    async with http.get(emu.api_base + "/users/@me", headers=auth) as resp:
        me = await resp.json()
        assert resp.headers["Content-Type"] == "application/json"
    assert (me["id"], me["bot"], me["username"]) == (str(emu.bot_user.id), True, "Echo")
    async with http.get(emu.api_base + "/users/@me") as resp:
        assert resp.status == 401
        assert await resp.json() == {"message": "401: Unauthorized", "code": 0}
    async with http.get(emu.api_base + "/no/such/route", headers=auth) as resp:
        assert resp.status == 404
        assert await resp.json() == {"message": "404: Not Found", "code": 0}
    async with http.delete(emu.api_base + "/users/@me", headers=auth) as resp:
        assert resp.status == 405
    async with http.get(emu.api_base + "/gateway") as resp:
        assert await resp.json() == {"url": emu.gateway_url}


async def test_injected_429_has_what_discord_py_needs(
    discord_emulator: DiscordEmulator, http: aiohttp.ClientSession
) -> None:
    emu = discord_emulator
    emu.fail_route("GET", "/users/@me", status=429, retry_after=1.5)
    async with http.get(
        emu.api_base + "/users/@me", headers={"Authorization": f"Bot {emu.token}"}
    ) as resp:
        body = await resp.json()
        headers = resp.headers
    assert resp.status == 429
    assert body == {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}
    assert headers["Via"] == "1.1 google"
    assert headers["Retry-After"] == "2"
    assert headers["X-RateLimit-Remaining"] == "0"
    assert float(headers["X-RateLimit-Reset-After"]) == 1.5
    assert headers["X-RateLimit-Scope"] == "user"


async def test_user_message_mentions_are_filled_in_as_discord_does(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    world = emu.world
    assert world is not None
    role = emu.create_role(world.guild.id, "helpers")
    owner_id = world.guild.owner_id
    text = f"<@{emu.bot_user.id}> and <@!{world.user.id}> and <@&{role.id}> and <@123> @everyone"
    by_alice = await emu.post_message(world.channel.id, world.user.id, text)
    by_owner = await emu.post_message(world.channel.id, owner_id, text)

    assert [u["id"] for u in by_alice["mentions"]] == [str(emu.bot_user.id), str(world.user.id)]
    assert by_alice["mention_roles"] == [str(role.id)]
    assert by_alice["mention_everyone"] is False  # alice lacks MENTION_EVERYONE
    assert by_owner["mention_everyone"] is True
    assert by_alice["author"]["username"] == "alice"
    assert by_alice["timestamp"].endswith("+00:00")
    assert by_alice["edited_timestamp"] is None


async def test_files_upload_as_multipart_and_download_from_the_emulator(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    bot = make_bot()
    async with running_bot(bot, emu):
        channel = bot.get_channel(emu.world.channel.id)  # type: ignore[union-attr]
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send(
            "the export", file=discord.File(io.BytesIO(b'{"history": []}'), "export.json")
        )
        downloaded = await sent.attachments[0].read()

    [post] = emu.requests_to("POST", "/channels/{channel_id}/messages")
    assert post.files == ["export.json"]
    assert post.json["content"] == "the export"
    assert sent.attachments[0].filename == "export.json"
    assert sent.attachments[0].content_type == "application/json"
    assert downloaded == b'{"history": []}'


def test_mention_parsing_and_allowed_mentions_filtering() -> None:
    parsed = parse_mentions("<@1> <@!2> <@1> <@&3> @here")
    assert (parsed.users, parsed.roles, parsed.everyone) == ([1, 2], [3], True)
    assert filter_mentions(parsed, None).users == [1, 2]
    none = filter_mentions(parsed, {"parse": []})
    assert (none.users, none.roles, none.everyone) == ([], [], False)
    some = filter_mentions(parsed, {"parse": ["roles"], "users": ["2"]})
    assert (some.users, some.roles, some.everyone) == ([2], [3], False)
    replied = filter_mentions(parsed, {"parse": [], "replied_user": True}, replied_user_id=9)
    assert replied.users == [9]
    with pytest.raises(DiscordAPIError) as caught:
        validate_allowed_mentions({"parse": ["users"], "users": ["1"]})
    assert caught.value.code == 50035


def test_snowflakes_increase_and_carry_their_time() -> None:
    generator = SnowflakeGenerator()
    ids = [generator.next() for _ in range(5000)]
    assert ids == sorted(set(ids))
    assert discord.utils.snowflake_time(ids[0]) == snowflake_time(ids[0])
    assert abs((discord.utils.utcnow() - snowflake_time(ids[-1])).total_seconds()) < 5
