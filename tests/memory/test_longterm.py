"""Long-term memory: eligibility, extractive distillation, the batch job and its resilience."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory import InMemoryConversationManager, JsonFileStore, Message, MessageType
from memory.longterm import (
    ExtractiveDistiller,
    MemoryService,
    eligible,
    extractive_memory,
)
from memory.longterm.summarizer import specifics
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.models import Conversation
from memory.stores.base import ConversationInfo

LONG_AGO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def said(text: str, who: str = "33", message_id: str | None = None, name: str = "Alice") -> Message:
    return Message(
        message_type=MessageType.CHAT,
        message_content=text,
        requester=who,
        message_id=message_id,
        created_at=LONG_AGO,
        meta={"author_name": name},
    )


def _conversation_of(*messages: Message) -> Conversation:
    conversation = Conversation(
        thread_id="11", channel_id="44", guild_id="22", requester="33", created_at=LONG_AGO
    )
    for message in messages:
        conversation.add_message(message)
    return conversation


async def old_conversation(
    manager: InMemoryConversationManager, thread_id: str, lines: list[Message], guild_id: str = "22"
) -> None:
    await manager.create_conversation(
        thread_id=thread_id, guild_id=guild_id, requester="33", channel_id="44", created_at=LONG_AGO
    )
    for line in lines:
        await manager.add_message_to_conversation(thread_id, line)
    await manager.remove_conversation(thread_id)  # saved and no longer active


def info(thread_id: str, updated: datetime) -> ConversationInfo:
    return ConversationInfo(thread_id, "22", "G", "33", ("33",), updated, updated, "", False)


def record(thread_id: str, source: datetime) -> MemoryRecord:
    return MemoryRecord(
        thread_id=thread_id, guild_id="22", requester="33", source_updated_at=source
    )


def test_eligibility_rules() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    infos = [
        info("1", now - timedelta(hours=3)),  # idle, no memory: eligible
        info("2", now - timedelta(minutes=30)),  # not idle long enough
        info("3", now - timedelta(hours=3)),  # memory up to date
        info("4", now - timedelta(hours=3)),  # memory older than the conversation
        info("5", now - timedelta(hours=3)),  # active in memory
    ]
    memories = {
        "3": record("3", now - timedelta(hours=3)),
        "4": record("4", now - timedelta(hours=4)),
    }
    found = eligible(infos, memories, now=now, inactivity=7200, active={"5"})
    assert [i.thread_id for i in found] == ["1", "4"]


def test_offline_topics_are_what_was_talked_about_not_reactions_or_the_people() -> None:
    conversation = _conversation_of(
        said("Hey Bob, great news: I started pottery classes, wow!", "33", name="Alice"),
        said("Wow Alice, that's great! What happened? Pottery sounds awesome.", "34", name="Bob"),
        said("Great teacher too. We glazed bowls in the kiln, awesome.", "33", name="Alice"),
        said("Awesome, great! What happened to the bowls in the kiln, Ali?", "34", name="Bob"),
        said("Wow, yes, great: the bowls came out glossy.", "33", name="Alice"),
    )
    topics = extractive_memory(conversation).topics
    # Said in more messages than any of the things talked about, and about nothing.
    assert not {"great", "awesome", "wow", "alice", "bob", "ali"} & set(topics), topics
    assert {"pottery", "bowls", "kiln"} <= set(topics), topics
    # A noun before a word said as often that is no noun.
    assert topics.index("kiln") < topics.index("happened"), topics


def test_a_noun_that_begins_a_name_is_still_a_topic() -> None:
    conversation = _conversation_of(
        said("Art class today: we drew the harbour.", "33", name="Arthur"),
        said("The harbour at dawn is the best art, Art.", "34", name="Beatrice"),
        said("Bea, harbour art sells well at the market.", "33", name="Arthur"),
    )
    topics = extractive_memory(conversation).topics
    assert "art" in topics and "harbour" in topics, topics
    assert not {"arthur", "bea", "beatrice"} & set(topics), topics


def test_extractive_memory_uses_people_and_tools_never_thinking() -> None:
    conversation = _conversation_of(
        said("We decided to move the launch party to the Lisbon office.", "33", "101"),
        said("Lisbon office has room for the launch party guests.", "34", "102", name="Bob"),
        Message(message_type="thinking", message_content="secret plan about the launch party"),
        said("Who books the catering for the launch party?", "34", "103", name="Bob"),
        Message(message_type="chat", message_content="Echo thinks the launch party is great."),
        Message(
            message_type="tool_call_response",
            message_content="Lisbon weather in June: sunny, 25 degrees.",
            tool_call_id="c1",
            name="weather",
        ),
    )
    data = extractive_memory(conversation)
    everything = data.model_dump_json()
    assert "secret" not in everything and "Echo thinks" not in everything
    assert "launch" in data.topics and "lisbon" in data.topics
    by_text = {f.text: f for f in data.facts}
    decided = by_text["We decided to move the launch party to the Lisbon office."]
    assert decided.about == "33" and decided.source_message_ids == ["101"]
    assert by_text["Lisbon weather in June: sunny, 25 degrees."].about is None
    assert data.decisions == ["We decided to move the launch party to the Lisbon office."]
    assert data.open_questions == []  # Echo answered it
    assert "Alice: We decided" in data.summary or "Bob:" in data.summary


def test_what_people_tell_of_themselves_comes_before_their_reactions() -> None:
    """With room for few facts, the facts kept are the ones a person told of their own life,
    not the replies that repeat the conversation's frequent words back."""
    conversation = _conversation_of(
        said("I started surfing in Portugal five years ago.", "33", "201"),
        said("Wow, surfing in Portugal sounds amazing, surfing is great fun!", "34", "202", "Bob"),
        said("Surfing Portugal waves, what a great surfing spot!", "34", "203", "Bob"),
        said("My brother taught me on an old board.", "33", "204"),
        said("Great surfing, great Portugal, great waves!", "34", "205", "Bob"),
    )
    facts = [f.text for f in extractive_memory(conversation, max_facts=2).facts]
    # "five years ago" is dated as every relative time is: "(2021)".
    assert facts == [
        "I started surfing in Portugal five years ago. (2021)",
        "My brother taught me on an old board.",
    ]


def test_facts_tell_different_things_rather_than_one_thing_again() -> None:
    """A sentence that repeats what a fact already kept says gives way to one that tells
    something else, though it scores higher alone."""
    conversation = _conversation_of(
        said("I love my pottery class; pottery keeps me calm.", "33", "201"),
        said("My pottery class made a pottery bowl for pottery day.", "33", "202"),
        said("I adopted a dog named Max.", "33", "203"),
    )
    facts = {f.text for f in extractive_memory(conversation, max_facts=2).facts}
    assert facts == {
        "I love my pottery class; pottery keeps me calm.",
        "I adopted a dog named Max.",
    }


def test_the_most_telling_fact_comes_first_wherever_it_was_said() -> None:
    """The model is shown a memory's first facts: they are its most telling, not its
    earliest."""
    conversation = _conversation_of(
        said("My pottery class made a small bowl.", "33", "201"),
        said("Sounds lovely, pottery is calming.", "34", "202", "Bob"),
        said("I painted the Golden Gate Bridge in San Francisco.", "33", "203"),
    )
    facts = [f.text for f in extractive_memory(conversation).facts]
    assert facts[0] == "I painted the Golden Gate Bridge in San Francisco."
    assert "My pottery class made a small bowl." in facts[1:]


def test_a_fact_that_names_something_comes_before_one_of_common_words() -> None:
    """A sentence naming a place, a title or a number, said once, is kept before a longer one
    of the conversation's common words; the people's own names are no such thing."""
    conversation = _conversation_of(
        said(
            "Thanks Bob, I love painting and I paint big landscapes when painting outdoors.", "33"
        ),
        said("I painted the Golden Gate Bridge in San Francisco.", "33"),
        said(
            "Alice, painting outdoors sounds lovely, painting is my favourite too!",
            "34",
            name="Bob",
        ),
    )
    facts = [f.text for f in extractive_memory(conversation, max_facts=1).facts]
    assert facts == ["I painted the Golden Gate Bridge in San Francisco."]


def test_a_tools_numbers_do_not_crowd_out_what_people_said() -> None:
    """Only people's sentences gain for naming something: a tool's output names and counts
    everything, and would otherwise take a person's place."""
    conversation = _conversation_of(
        said("The garden party menu needs careful planning before the guests arrive.", "33"),
        Message(
            message_type="tool_call_response",
            message_content="Rain 21 degrees 40 percent.",
            tool_call_id="c1",
            name="weather",
        ),
    )
    memory = extractive_memory(conversation, max_facts=1)
    assert [f.text for f in memory.facts] == [
        "The garden party menu needs careful planning before the guests arrive."
    ]


def test_what_names_something_is_a_number_or_a_capitalised_word_not_first() -> None:
    assert specifics("We saw Wicked in London with Bob, I'm told 3 times.", {"bob"}) == 3
    assert specifics("I loved Bob's book", {"bob"}) == 0  # a person's own name, possessive
    assert specifics("Paris was lovely, I think.") == 0  # first in the sentence: any word is
    assert specifics("i went to paris") == 0  # written in lower case, nothing tells a name


def test_a_greeting_or_a_reaction_is_no_fact() -> None:
    conversation = _conversation_of(
        said("Good to see you!", "33", "201"),
        said("Anything new?", "34", "202", "Bob"),
        said("I adopted a dog named Max.", "33", "203"),
    )
    assert [f.text for f in extractive_memory(conversation).facts] == ["I adopted a dog named Max."]


def test_an_open_question_is_one_no_one_answered() -> None:
    conversation = _conversation_of(
        said("Who books the catering for the launch party?", "33", "401"),
        said("I will, I know a good place near the office.", "34", "402", "Bob"),
        said("Great. And who brings the projector for the talks?", "33", "403"),
        said("Also, is the venue free on Friday?", "33", "404"),
    )
    assert extractive_memory(conversation).open_questions == [
        "And who brings the projector for the talks?",
        "Also, is the venue free on Friday?",
    ]


def test_a_decision_or_an_action_item_is_something_someone_chose_or_means_to_do() -> None:
    conversation = _conversation_of(
        said("I couldn't agree more, the blue logo looks better!", "33", "300"),
        said("We agreed on the blue logo for the shop.", "34", "299", "Bob"),
        said("Painting lets us get our feelings out.", "33", "298"),
        said("I'll send you the venue's address soon.", "33", "301"),
        said("That must have been a great trip to Porto!", "34", "302", "Bob"),
        said("It will be fun, the weather will be nice.", "33", "303"),
        said("Remind me to book the train tickets.", "34", "304", "Bob"),
        said("This photo reminds me of home.", "33", "305"),
        said("You should try the ramen place by the station.", "34", "306", "Bob"),
    )
    memory = extractive_memory(conversation)
    assert memory.decisions == ["We agreed on the blue logo for the shop."]
    assert memory.action_items == [
        "I'll send you the venue's address soon.",
        "Remind me to book the train tickets.",
        "You should try the ramen place by the station.",
    ]


async def test_generate_upserts_memories_and_skips_fresh_ones(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await old_conversation(manager, "11", [said("The build server moved to Frankfurt.")])
        await old_conversation(manager, "12", [said("Budget approved for new laptops.")], "23")
        await manager.create_conversation(
            thread_id="13", guild_id="22", requester="33", channel_id="44"
        )  # active: never eligible
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=3600)
        seen: list[tuple[int, int]] = []
        report = await service.generate(progress=lambda done, total: seen.append((done, total)))
        assert (report.eligible, report.generated, report.failed) == (2, 2, 0)
        assert seen == [(1, 2), (2, 2)]
        memory = await manager.store.load_memory("22", "11")
        assert memory is not None and memory.generator == "extractive"
        assert "Frankfurt" in memory.memory_data.summary
        assert memory.conversation_created_at == LONG_AGO
        assert (tmp_path / "guilds" / "22" / "memories" / "11.json").is_file()
        # Nothing changed: nothing to do.
        assert (await service.generate()).eligible == 0
        # Per guild only.
        await manager.add_message_to_conversation("12", said("Laptops arrive Monday."))
        await manager.remove_conversation("12")
        assert (await service.generate("22")).eligible == 0


async def test_new_messages_make_the_memory_stale_and_it_is_upserted(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await old_conversation(manager, "11", [said("First topic: the garden fence.")])
        service = MemoryService(manager, ExtractiveDistiller(), inactivity=0)
        await service.generate()
        first = await manager.store.load_memory("22", "11")
        later = Message(
            message_type="chat",
            message_content="Second topic: the garden pond needs cleaning.",
            requester="34",
            created_at=LONG_AGO + timedelta(days=1),
        )
        await manager.add_message_to_conversation("11", later)
        await manager.remove_conversation("11")
        report = await service.generate()
        second = await manager.store.load_memory("22", "11")
    assert report.generated == 1
    assert first is not None and second is not None
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert second.source_updated_at == LONG_AGO + timedelta(days=1)
    assert "pond" in second.memory_data.model_dump_json()
    assert second.participants == ["33", "34"]


class BrokenFor:
    """A distiller that fails for one conversation, as a model with a broken reply would."""

    name = "flaky"

    def __init__(self, bad_thread: str) -> None:
        self.bad_thread = bad_thread

    async def distil(self, conversation: Conversation) -> MemoryData:
        if conversation.thread_id == self.bad_thread:
            raise ValueError("the model's JSON did not validate twice")
        return extractive_memory(conversation)


async def test_one_failure_never_stops_the_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        for thread in ("11", "12", "13"):
            await old_conversation(manager, thread, [said(f"Conversation {thread} about trains.")])
        service = MemoryService(manager, BrokenFor("12"), inactivity=0)
        report = await service.generate()
        assert (report.eligible, report.generated, report.failed) == (3, 2, 1)
        assert report.failures == [("12", "the model's JSON did not validate twice")]
        assert await manager.store.load_memory("22", "13") is not None
        assert await manager.store.load_memory("22", "12") is None
        # The failed one is still eligible next time.
        assert [i.thread_id for i in await service.find_eligible()] == ["12"]
    assert "memory of conversation 12 failed" in caplog.text


async def test_headers_are_read_without_the_history(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await old_conversation(manager, "11", [said("x" * 50) for _ in range(3)])
    [path] = (tmp_path / "guilds" / "22").glob("*.json")
    text = path.read_text()
    # Break the history part only: a header reader that parsed the history would fail.
    path.write_text(text[: text.index('"history"')] + '"history": [ not json at all')
    async with JsonFileStore(tmp_path) as store:
        [header] = await store.conversation_infos("22")
    assert header.thread_id == "11" and header.updated_at == LONG_AGO
    assert header.participants == ("33",)


async def test_headers_of_files_written_in_another_key_order(tmp_path: Path) -> None:
    async with InMemoryConversationManager(store=JsonFileStore(tmp_path)) as manager:
        await old_conversation(manager, "11", [said("keys in any order")])
    [path] = (tmp_path / "guilds" / "22").glob("*.json")
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data, indent=2, sort_keys=True))  # history before updated_at
    async with JsonFileStore(tmp_path) as store:
        [header] = await store.conversation_infos("22")
    assert header.updated_at == LONG_AGO  # not a default of "now"
    assert list((tmp_path / "guilds" / "22").glob("*.corrupt")) == []
