"""Keeping the record true to the thread: edits, deletes, attachments; and the reply limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo


def contents(echo: Echo, thread_id: int) -> list[str]:
    conversation = echo.conversation(thread_id)
    assert conversation is not None
    return [m.message_content for m in conversation.history]


async def settle(echo: Echo, thread_id: int, count: int) -> None:
    await echo.emu.wait_for(
        lambda: len(echo.conversation(thread_id).history) == count or None,  # type: ignore[union-attr]
        timeout=5,
        what=f"{count} recorded messages",
    )


async def test_an_edit_updates_the_record_and_keeps_when(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("hello")
        await echo.answer_in(thread.id)
        posted = await echo.say(thread.id, "the meeting is on Tuesday")
        await settle(echo, thread.id, 4)
        await emu.edit_message(thread.id, int(posted["id"]), "the meeting is on Wednesday")
        await emu.wait_for(
            lambda: "the meeting is on Wednesday" in contents(echo, thread.id) or None,
            timeout=5,
            what="the edit",
        )
        # The starter message lives in #general; editing it edits the record too.
        await emu.edit_message(echo.world.channel.id, thread.id, f"<@{emu.bot_user.id}> hi!")
        await emu.wait_for(
            lambda: "@Echo hi!" in contents(echo, thread.id) or None, timeout=5, what="edit 2"
        )
    [path] = echo.files()
    history = json.loads(path.read_text())["history"]
    edited = next(m for m in history if m["message_content"] == "the meeting is on Wednesday")
    assert edited["meta"]["edited_at"].endswith("+00:00")
    assert "the meeting is on Tuesday" not in path.read_text()
    # An edit of an answered message is not answered again.
    assert len(fake_llm.chat_requests) == 2


async def test_an_unanswered_last_message_is_answered_when_edited_to_mention_echo(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_THREAD_REPLIES="mention") as echo:
        thread = await echo.mention("hello")
        await echo.answer_in(thread.id)
        posted = await echo.say(thread.id, "what time is it?")
        await settle(echo, thread.id, 3)
        assert len(fake_llm.chat_requests) == 1  # no mention: recorded, not answered
        fake_llm.queue_text("Answered after the edit.")
        await emu.edit_message(
            thread.id, int(posted["id"]), f"<@{emu.bot_user.id}> what time is it?"
        )
        await echo.answer_in(thread.id, lambda m: m["content"] == "Answered after the edit.")
    assert fake_llm.chat_requests[1].messages[-1]["content"] == "[Alice] @Echo what time is it?"


async def test_deletes_single_bulk_and_starter_leave_the_record(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_THREAD_REPLIES="mention") as echo:
        thread = await echo.mention("hello")
        await echo.answer_in(thread.id)
        posted = [await echo.say(thread.id, f"note {n}") for n in range(4)]
        await settle(echo, thread.id, 6)
        await emu.delete_message(thread.id, int(posted[0]["id"]))
        await emu.bulk_delete_messages(thread.id, [int(posted[1]["id"]), int(posted[2]["id"])])
        await emu.delete_message(echo.world.channel.id, thread.id)  # the starter message
        await settle(echo, thread.id, 2)
        remaining = contents(echo, thread.id)
        # Saved files forget them too, and so does the journal at once.
        await echo.bot.manager.save_conversation(str(thread.id))
    assert remaining == [fake_llm.default_reply, "note 3"]
    [path] = echo.files()
    text = path.read_text()
    assert "note 0" not in text and "note 1" not in text and "@Echo hello" not in text


async def test_text_attachments_reach_the_model_and_images_are_named(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_MAX_ATTACHMENT_BYTES="64") as echo:
        thread = await echo.mention("hi")
        await echo.answer_in(thread.id)
        await emu.post_message(
            thread.id,
            echo.world.user.id,
            "please look at these",
            attachments=[
                ("notes.txt", b"line one\nline two"),
                ("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100),
                ("big.log", b"x" * 500),
            ],
        )
        await fake_llm.wait_for_requests(2)
        conversation = echo.conversation(thread.id)
    assert conversation is not None
    meta = conversation.history[-2].meta  # the answer is last
    by_name = {a["filename"]: a for a in meta["attachments"]}
    assert by_name["notes.txt"]["text"] == "line one\nline two"
    assert by_name["notes.txt"]["size"] == 17 and by_name["notes.txt"]["url"].startswith("http")
    assert (
        "text" not in by_name["photo.png"] and by_name["photo.png"]["content_type"] == "image/png"
    )
    assert (
        "text" not in by_name["big.log"]
        and "ECHO_MAX_ATTACHMENT_BYTES" in by_name["big.log"]["note"]
    )
    sent = fake_llm.chat_requests[1].messages[-1]["content"]
    assert sent.startswith("[Alice] please look at these\n")
    assert "[attached file notes.txt (text/plain, 17 bytes)]\n```\nline one\nline two\n```" in sent
    assert "[attached image photo.png (image/png" in sent
    assert "big.log" in sent and "x" * 100 not in sent


@pytest.mark.parametrize("length_header", [False, True], ids=["chunked", "content-length"])
async def test_an_attachment_serving_more_than_it_claims_is_read_only_to_the_limit(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path, length_header: bool
) -> None:
    emu = discord_emulator
    served = b"y" * (50 * 1024 * 1024)
    emu.serve_attachment_as("liar.txt", served, length_header=length_header)
    async with running_echo(emu, tmp_path, llm=fake_llm) as echo:  # default limit: 100 KB
        thread = await echo.mention("hi")
        await echo.answer_in(thread.id)
        await emu.post_message(
            thread.id,
            echo.world.user.id,
            "a small file",
            attachments=[("liar.txt", b"z" * 100), ("honest.txt", b"fine")],
        )
        await fake_llm.wait_for_requests(2)
        conversation = echo.conversation(thread.id)
    assert conversation is not None
    meta = conversation.history[-2].meta
    by_name = {a["filename"]: a for a in meta["attachments"]}
    liar = by_name["liar.txt"]
    assert liar["size"] == 100  # what Discord announced
    assert "text" not in liar and "ECHO_MAX_ATTACHMENT_BYTES (100000)" in liar["note"]
    assert by_name["honest.txt"]["text"] == "fine"
    # The download stopped past the limit: most of the 50 MB never left the server (what did
    # is at most the limit plus what the loopback socket buffers held).
    [sent] = emu.attachment_bytes_sent.values()
    assert sent < len(served) // 4, sent
    request = fake_llm.chat_requests[1].messages[-1]["content"]
    assert "liar.txt" in request and "y" * 1000 not in request


async def test_a_quick_second_message_gets_a_cooldown_line_then_an_answer(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_USER_COOLDOWN_SECONDS="1") as echo:
        fake_llm.queue_text("first answer")
        thread = await echo.mention("one")
        await echo.answer_in(thread.id, lambda m: m["content"] == "first answer")
        fake_llm.queue_text("second answer")
        await echo.say(thread.id, "two, right away")
        note = await echo.answer_in(thread.id, lambda m: "quickly" in m["content"])
        assert len(fake_llm.chat_requests) == 1  # not yet
        await echo.answer_in(thread.id, lambda m: m["content"] == "second answer", timeout=5)
    assert "few seconds" in note["content"]
    assert len(fake_llm.chat_requests) == 2


async def test_the_concurrency_cap_queues_and_says_so(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, llm=fake_llm, ECHO_MAX_CONCURRENT_REPLIES="1") as echo:
        fake_llm.queue_text("slow answer", delay=0.8)
        first = await echo.mention("first")
        await fake_llm.wait_for_requests(1)
        fake_llm.queue_text("second answer")
        await emu.post_message(echo.world.channel.id, echo.world.user.id, echo.ping("second"))
        second = await emu.wait_for_thread(
            echo.world.channel.id, predicate=lambda t: t.id != first.id
        )
        busy = await echo.answer_in(second.id, lambda m: "next in line" in m["content"])
        assert len(fake_llm.chat_requests) == 1  # waiting for the only slot
        await echo.answer_in(first.id, lambda m: m["content"] == "slow answer")
        await echo.answer_in(second.id, lambda m: m["content"] == "second answer")
    assert busy["channel_id"] == str(second.id)
    assert len(fake_llm.chat_requests) == 2


async def test_echos_own_edits_are_not_recorded_as_edits(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.queue_text("streamed " * 40, chunk_size=5, chunk_delay=0.01)
    async with running_echo(discord_emulator, tmp_path, llm=fake_llm) as echo:
        thread = await echo.mention("stream please")
        await echo.answer_in(thread.id)
        history = echo.conversation(thread.id).history  # type: ignore[union-attr]
    assert all("edited_at" not in m.meta for m in history)
    assert len(history) == 2
