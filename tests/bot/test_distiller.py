"""The model distiller against the fake LLM, through the real openai SDK."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.llm import LLMError, OpenAIProvider
from bot.llm.distiller import MemoryGenerationError, ModelDistiller
from memory import InMemoryConversationManager, JsonFileStore, Message
from memory.longterm import MemoryService
from memory.records.models import Conversation
from tests.fake_llm.captures import Capture, CapturesMissing, captures
from tests.fake_llm.server.core import FakeLLM

T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
GOOD = {
    "summary": "Alice and Bob planned a trip to Porto in May.",
    "topics": ["porto", "trip"],
    "facts": [
        {"text": "Alice is afraid of flying.", "about": "33", "source_message_ids": ["501"]},
        {"text": "Invented person.", "about": "999", "source_message_ids": ["777", "502"]},
    ],
    "decisions": ["They will take the train."],
    "action_items": [],
    "open_questions": ["Which hotel?"],
}


def conversation() -> Conversation:
    conv = Conversation(
        thread_id="11", channel_id="44", guild_id="22", requester="33", created_at=T0
    )
    for message_id, who, name, text in [
        ("501", "33", "Alice", "I'm afraid of flying, let's take the train to Porto."),
        ("502", "34", "Bob", "Fine by me, May works."),
    ]:
        conv.add_message(
            Message(
                message_type="chat",
                message_content=text,
                requester=who,
                message_id=message_id,
                created_at=T0,
                meta={"author_name": name},
            )
        )
    conv.add_message(
        Message(message_type="thinking", message_content="private musing", created_at=T0)
    )
    conv.add_message(
        Message(message_type="chat", message_content="Echo guesses wildly", created_at=T0)
    )
    return conv


def provider(fake_llm: FakeLLM) -> OpenAIProvider:
    return OpenAIProvider(
        fake_llm.base_url, fake_llm.api_key, "fake-model", timeout=5, max_retries=0
    )


async def test_a_valid_memory_is_parsed_and_invented_ids_dropped(fake_llm: FakeLLM) -> None:
    fake_llm.queue_text(json.dumps(GOOD))
    model = provider(fake_llm)
    try:
        data = await ModelDistiller(model).distil(conversation())
    finally:
        await model.aclose()
    assert data.summary == GOOD["summary"]
    assert data.facts[0].about == "33" and data.facts[0].source_message_ids == ["501"]
    assert data.facts[1].about is None and data.facts[1].source_message_ids == ["502"]
    [request] = fake_llm.chat_requests
    assert request.body["response_format"] == {"type": "json_object"}
    transcript = request.messages[-1]["content"]
    assert "[message 501] Alice (user 33), 2026-03-01: I'm afraid of flying" in transcript
    assert "private musing" not in transcript and "guesses wildly" not in transcript


async def test_one_retry_quotes_the_validation_error(fake_llm: FakeLLM) -> None:
    fake_llm.queue_text('{"summary": "x", "facts": "not a list"}')
    fake_llm.queue_text("```json\n" + json.dumps(GOOD) + "\n```")
    model = provider(fake_llm)
    try:
        data = await ModelDistiller(model).distil(conversation())
    finally:
        await model.aclose()
    assert data.topics == ["porto", "trip"]
    retry = fake_llm.chat_requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": '{"summary": "x", "facts": "not a list"}'}
    assert "facts" in retry[-1]["content"] and "valid list" in retry[-1]["content"]


async def test_invalid_twice_is_an_error(fake_llm: FakeLLM) -> None:
    fake_llm.queue_text("I think the conversation was about trains.")
    fake_llm.queue_text('{"topics": 5}')
    model = provider(fake_llm)
    try:
        with pytest.raises(MemoryGenerationError, match="invalid twice"):
            await ModelDistiller(model).distil(conversation())
    finally:
        await model.aclose()


async def test_a_broken_reply_fails_one_conversation_not_the_batch(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    model = provider(fake_llm)
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        for thread in ("11", "12", "13"):
            await manager.create_conversation(
                thread_id=thread, guild_id="22", requester="33", channel_id="44", created_at=T0
            )
            await manager.add_message_to_conversation(
                thread,
                Message(
                    message_type="chat",
                    message_content=f"talk {thread}",
                    requester="33",
                    created_at=T0,
                ),
            )
            await manager.remove_conversation(thread)
        fake_llm.queue_text(json.dumps(GOOD))
        fake_llm.queue_text("not json")
        fake_llm.queue_text("still not json")
        fake_llm.queue_text(json.dumps(GOOD))
        report = await MemoryService(manager, ModelDistiller(model), inactivity=0).generate()
        memories = await manager.store.list_memories("22")
    await model.aclose()
    assert (report.eligible, report.generated, report.failed) == (3, 2, 1)
    assert [m.thread_id for m in memories] == ["11", "13"]
    assert all(m.generator == "fake-model" for m in memories)


def lmstudio_refusal() -> Capture:
    """LM Studio's own answer to `response_format: json_object`, as recorded."""
    try:
        return captures()["33_lmstudio_400_json_object"]
    except CapturesMissing as exc:
        pytest.fail(str(exc))


async def test_a_server_refusing_json_mode_is_asked_again_without_it_and_remembered(
    fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    refusal = lmstudio_refusal()
    fake_llm.queue_raw(refusal.body, status=refusal.status, content_type=refusal.content_type)
    fake_llm.queue_text(json.dumps(GOOD))
    fake_llm.queue_text(json.dumps(GOOD))
    model = provider(fake_llm)
    try:
        first = await ModelDistiller(model).distil(conversation())
        # Another distiller on the same provider (the next batch) does not ask again.
        second = await ModelDistiller(model).distil(conversation())
    finally:
        await model.aclose()
    assert first.summary == second.summary == GOOD["summary"]
    formats = [r.body.get("response_format") for r in fake_llm.chat_requests]
    assert formats == [{"type": "json_object"}, None, None]
    [warning] = [r for r in caplog.records if "refused JSON mode" in r.getMessage()]
    assert "'response_format.type' must be 'json_schema' or 'text'" in warning.getMessage()


async def test_a_bad_request_without_json_mode_too_is_not_blamed_on_it(
    fake_llm: FakeLLM,
) -> None:
    fake_llm.queue_error(400, "This model's maximum context length is 8192 tokens.", times=2)
    fake_llm.queue_text(json.dumps(GOOD))
    model = provider(fake_llm)
    try:
        with pytest.raises(LLMError, match="maximum context length"):
            await ModelDistiller(model).distil(conversation())
        await ModelDistiller(model).distil(conversation())
    finally:
        await model.aclose()
    formats = [r.body.get("response_format") for r in fake_llm.chat_requests]
    assert formats == [{"type": "json_object"}, None, {"type": "json_object"}]
