"""Proof: the emulator's traffic is held to Discord's OpenAPI spec, and a breach fails the test.

Every test that uses the emulator checks each request the bot sends against its
operation's request schema and each 2xx answer against the response schema
(``tests/discord_emulator/spec.py``); these tests show a bad body is caught and named.
They provoke bad traffic on purpose, so they live outside ``tests/e2e``, whose traffic
is all meant to be valid.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from tests.discord_emulator import DiscordEmulator, app_payloads
from tests.discord_emulator.fixtures import emulated_discord, make_bot, running_bot
from tests.discord_emulator.schema_speedups import inline_references, named_values_as_enums
from tests.discord_emulator.spec import (
    ALLOWLIST,
    SPEC_ENV,
    SpecMissingError,
    SpecStats,
    SpecViolationError,
    load_spec,
    read_spec,
    spec_path,
)

MESSAGES = "/channels/{channel_id}/messages"


def _auth(emu: DiscordEmulator) -> dict[str, str]:
    return {"Authorization": f"Bot {emu.token}"}


async def test_a_request_body_off_the_spec_fails_the_test_naming_operation_and_field() -> None:
    with pytest.raises(SpecViolationError) as caught:
        async with emulated_discord() as emu, aiohttp.ClientSession() as http:
            assert emu.world is not None
            url = f"{emu.api_base}/channels/{emu.world.channel.id}/messages"
            body = {"content": "hi", "tts": "yes"}  # tts is a boolean
            async with http.post(url, json=body, headers=_auth(emu)) as resp:
                assert resp.status == 200  # the emulator is lenient here; the spec is not

    text = str(caught.value)
    assert f"create_message (POST {MESSAGES}" in text
    assert "request body at $.tts: 'yes' is not of type 'boolean'" in text


async def test_a_multipart_request_is_checked_by_its_payload_json(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    url = f"{emu.api_base}/channels/{emu.world.channel.id}/messages"
    async with aiohttp.ClientSession() as http:
        for payload in ({"content": "ok"}, {"content": "bad", "tts": "no"}):
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(payload), content_type="application/json")
            form.add_field("files[0]", b"data", filename="a.txt", content_type="text/plain")
            async with http.post(url, data=form, headers=_auth(emu)) as resp:
                assert resp.status == 200

    assert [(v.operation_id, v.field) for v in emu.spec.take()] == [("create_message", "$.tts")]
    assert emu.spec.stats.requests == 2


async def test_an_answer_off_the_spec_fails_the_test_naming_operation_and_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Put back the emulator's old answer, which discord.py tolerated: no flags_new.
    right = app_payloads.application

    def without_flags_new(**kwargs: Any) -> dict[str, Any]:
        return {k: v for k, v in right(**kwargs).items() if k != "flags_new"}

    monkeypatch.setattr(app_payloads, "application", without_flags_new)
    with pytest.raises(SpecViolationError) as caught:
        async with emulated_discord() as emu, running_bot(make_bot(), emu) as bot:
            info = await bot.application_info()
            assert info.id == emu.application_id  # discord.py does not notice

    text = str(caught.value)
    assert "get_my_oauth2_application (GET /oauth2/applications/@me" in text
    assert "200 response body at $: 'flags_new' is a required property" in text


async def test_integer_snowflakes_in_requests_are_valid_as_discord_accepts_them(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    first = await emu.post_message(emu.world.channel.id, emu.world.user.id, "first")
    body = {
        "content": "a reply",
        "message_reference": {"message_id": int(first["id"]), "fail_if_not_exists": False},
        "allowed_mentions": {"parse": [], "users": [emu.world.user.id]},
    }
    async with aiohttp.ClientSession() as http:
        url = f"{emu.api_base}/channels/{emu.world.channel.id}/messages"
        async with http.post(url, json=body, headers=_auth(emu)) as resp:
            answer = await resp.json()
    assert resp.status == 200
    assert answer["message_reference"]["message_id"] == first["id"]  # answers carry strings
    assert emu.spec.violations == []
    assert (emu.spec.stats.requests, emu.spec.stats.responses) == (1, 1)


async def test_unknown_routes_still_answer_404_and_are_not_checked(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    async with aiohttp.ClientSession() as http:
        url = f"{emu.api_base}/guilds/1/emojis"  # Discord has it; the emulator does not
        async with http.get(url, headers=_auth(emu)) as resp:
            assert resp.status == 404
            assert await resp.json() == {"message": "404: Not Found", "code": 0}
    assert [r.path for r in emu.unknown_routes] == ["/guilds/1/emojis"]
    assert emu.spec.violations == []
    assert emu.spec.stats.requests == 0


def _sample_path(template: str) -> str:
    samples = {"emoji": "%F0%9F%91%8D", "token": "aW50ZXJhY3Rpb24"}
    return re.sub(r"\{([a-z_]+)\}", lambda m: samples.get(m.group(1), "1234567890"), template)


def test_every_emulator_route_is_a_discord_operation() -> None:
    spec = load_spec()
    emu = DiscordEmulator()
    missing = [
        f"{method} {template}"
        for method, template, *_ in emu.rest.routes
        if spec.operation(method, _sample_path(template)) is None
    ]
    assert missing == []
    # A literal segment wins over a parameter, as Discord routes them.
    join = spec.operation("PUT", "/channels/1/thread-members/@me")
    assert join is not None and join.operation_id == "join_thread"


def test_a_union_is_explained_down_to_the_alternative_meant() -> None:
    spec = load_spec()
    found = spec.check(
        "POST",
        "/interactions/1/aW50/callback",
        request_body={"type": 4, "data": {"content": "hi"}},
        has_files=False,
        status=200,
        response_body={"interaction": {"id": "1", "type": 2}, "resource": {"type": 4}},
        stats=SpecStats(),
    )
    assert [(v.operation_id, v.direction, v.field, v.message) for v in found] == [
        (
            "create_interaction_response",
            "response",
            "$.resource",
            "'message' is a required property",
        )
    ]
    # A resource for a type Discord describes none for matches no alternative at all.
    found = spec.check(
        "POST",
        "/interactions/1/aW50/callback",
        request_body={"type": 5},
        has_files=False,
        status=200,
        response_body={"interaction": {"id": "1", "type": 2}, "resource": {"type": 5}},
        stats=SpecStats(),
    )
    assert [(v.field, v.message.split(" is not valid")[0]) for v in found] == [
        ("$.resource", "{'type': 5}")
    ]


async def test_timestamps_and_urls_in_answers_are_checked(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    good = await emu.post_message(emu.world.channel.id, emu.world.user.id, "hi")
    bad = {**good, "timestamp": "2026-12-04 13:00", "author": {**good["author"]}}
    bad["attachments"] = [
        {"id": "1", "filename": "a.txt", "size": 1, "url": "a.txt", "proxy_url": "a.txt"}
    ]

    def check(body: dict[str, Any]) -> list[tuple[str, str]]:
        found = load_spec().check(
            "GET",
            f"/channels/{good['channel_id']}/messages/{good['id']}",
            request_body=None,
            has_files=False,
            status=200,
            response_body=body,
            stats=SpecStats(),
        )
        return [(v.field, v.message) for v in found]

    assert check(good) == []
    assert sorted(check(bad)) == [
        ("$.attachments[0].proxy_url", "'a.txt' is not a 'uri'"),
        ("$.attachments[0].url", "'a.txt' is not a 'uri'"),
        ("$.timestamp", "'2026-12-04 13:00' is not a 'date-time'"),
    ]


async def test_query_parameters_are_checked_as_discord_reads_them(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    url = f"{emu.api_base}/channels/{emu.world.channel.id}/messages"
    async with aiohttp.ClientSession() as http:
        for query in ("limit=50", "limit=500", "limit=5&sort=new"):
            async with http.get(f"{url}?{query}", headers=_auth(emu)) as resp:
                assert resp.status == 200

    assert [(v.operation_id, v.field, v.message) for v in emu.spec.take()] == [
        ("list_messages", "query.limit", "500 is greater than the maximum of 100"),
        ("list_messages", "query.sort", "Discord's spec has no query parameter 'sort' here"),
    ]


async def test_a_missing_spec_fails_the_emulator_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nowhere = tmp_path / "discord-openapi.json"
    monkeypatch.setenv(SPEC_ENV, str(nowhere))
    load_spec.cache_clear()
    try:
        with pytest.raises(SpecMissingError) as caught:
            async with emulated_discord():
                pass
    finally:
        load_spec.cache_clear()  # the next emulator reads the real spec again
    assert f"{nowhere} does not exist" in str(caught.value)
    assert SPEC_ENV in str(caught.value)


def test_a_missing_spec_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nowhere = tmp_path / "discord-openapi.json"
    monkeypatch.setenv(SPEC_ENV, str(nowhere))
    assert spec_path() == nowhere
    with pytest.raises(SpecMissingError, match=re.escape(f"{nowhere} does not exist")) as caught:
        read_spec(spec_path())
    assert SPEC_ENV in str(caught.value)


def test_the_allowlist_only_holds_reasoned_entries() -> None:
    for entry in ALLOWLIST:
        assert entry.direction in ("request", "response")
        assert len(entry.reason) > 20, entry


async def test_the_faster_schemas_judge_exactly_as_the_spec_does(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    assert emu.world is not None
    first = await emu.post_message(emu.world.channel.id, emu.world.user.id, "first")
    reply = await emu.post_message(
        emu.world.channel.id,
        emu.world.user.id,
        f"<@{emu.bot_user.id}> hi",
        reply_to=int(first["id"]),
    )
    raw = json.loads(spec_path().read_text(encoding="utf-8"))
    fast = inline_references(named_values_as_enums(copy.deepcopy(raw)))
    assert "oneOf" not in fast["components"]["schemas"]["MessageType"]
    assert (
        fast["paths"]["/users/@me"]["get"]["responses"]["200"]["content"]["application/json"][
            "schema"
        ]
        is fast["components"]["schemas"]["UserPIIResponse"]
    )

    def verdict(document: dict[str, Any], body: Any) -> list[str]:
        registry = Registry().with_resource("urn:t", DRAFT202012.create_resource(document))
        validator = Draft202012Validator(
            {"$ref": "urn:t#/components/schemas/MessageResponse"}, registry=registry
        )
        return sorted(e.json_path for e in validator.iter_errors(body))

    bodies: list[Any] = [
        reply,
        {**reply, "type": 999},
        {**reply, "author": {**reply["author"], "id": 5}},
        {**reply, "referenced_message": {**reply["referenced_message"], "flags": "x"}},
        {**reply, "mentions": [{"id": "1"}]},
        {k: v for k, v in reply.items() if k != "channel_id"},
        None,
    ]
    verdicts = [verdict(raw, body) for body in bodies]
    assert verdicts[0] == []
    assert all(verdicts[1:]), verdicts
    assert [verdict(fast, body) for body in bodies] == verdicts
