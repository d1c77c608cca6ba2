"""Extractive summaries: true sentences, who said them, never the model's thinking."""

from __future__ import annotations

from memory import Message, MessageType
from memory.longterm.summarizer import extractive_summary, telling_sentences, words


def chat(text: str, requester: str | None = "1") -> Message:
    return Message(message_type=MessageType.CHAT, message_content=text, requester=requester)


def test_picks_the_sentences_about_the_main_topic_in_order() -> None:
    messages = [
        chat("Hi there!"),
        chat("The release of version two is planned for Friday.", "2"),
        chat("Nice weather today."),
        chat("Marie writes the release notes for version two before Friday."),
        Message(message_type=MessageType.THINKING, message_content="secret release plan friday"),
        chat("Release notes need the version two changelog.", None),
    ]
    summary = extractive_summary(messages, {"1": "Alice", "2": "Bob"}, max_chars=200)
    lines = summary.splitlines()
    assert lines[0].startswith("Bob: The release of version two")
    assert any(line.startswith("Alice: Marie writes the release notes") for line in lines)
    assert "weather" not in summary and "secret" not in summary and "Hi there" not in summary
    assert len(summary) <= 200


def test_a_sentence_that_repeats_what_is_kept_gives_way_to_one_that_adds() -> None:
    messages = [
        chat("I moved the launch party to the Lisbon office."),
        chat("Lisbon office launch party, great!", "2"),
        chat("I booked a vegan caterer for the launch party."),
    ]
    summary = extractive_summary(messages, {"1": "Alice", "2": "Bob"}, max_chars=110)
    # Bob's line scores above the caterer's alone (its words recur), and would fit beside
    # Alice's first; but it says nothing that one did not.
    assert summary.splitlines() == [
        "Alice: I moved the launch party to the Lisbon office.",
        "Alice: I booked a vegan caterer for the launch party.",
    ]


def test_a_memory_summary_prefers_what_names_something() -> None:
    """With room for one of them, a memory's summary (``specific_weight``) keeps the sentence
    that names a place over a longer one of common words; /summarize's does not."""
    messages = [
        chat("I love painting and I paint big landscapes when painting outdoors."),
        chat("I painted the Golden Gate Bridge in San Francisco."),
    ]
    names = {"1": "Alice"}
    kept = telling_sentences(messages, names, max_chars=80, specific_weight=2.0)
    assert [t.sentence for t in kept] == ["I painted the Golden Gate Bridge in San Francisco."]
    plain = telling_sentences(messages, names, max_chars=80)
    assert [t.sentence for t in plain] == [
        "I love painting and I paint big landscapes when painting outdoors."
    ]


def test_nothing_to_summarise_is_empty() -> None:
    assert extractive_summary([]) == ""
    assert extractive_summary([Message(message_type="thinking", message_content="x")]) == ""


def test_unknown_names_fall_back_to_the_recorded_name_or_id() -> None:
    named = Message(
        message_type="chat",
        message_content="Deploy tonight.",
        requester="7",
        meta={"author_name": "Zoe"},
    )
    assert extractive_summary([named]) == "Zoe: Deploy tonight."
    assert extractive_summary([chat("Deploy tonight.", "8")]) == "8: Deploy tonight."


def test_words_drop_stopwords_and_fold_apostrophes() -> None:
    assert words("The bot's answer isn't here") == ["bots", "answer"]


def test_what_a_person_tells_of_themselves_can_be_preferred() -> None:
    messages = [
        chat("Surfing in Portugal, surfing waves in Portugal: surfing Portugal rocks!", "2"),
        chat("I started surfing in Portugal five years ago."),
    ]
    names = {"1": "Alice", "2": "Bob"}
    plain = telling_sentences(messages, names, max_chars=80)
    told = telling_sentences(messages, names, max_chars=80, first_person_weight=10)
    assert [t.speaker for t in plain] == ["Bob"]  # more of the recurring words
    assert [t.sentence for t in told] == ["I started surfing in Portugal five years ago."]
    assert told[0].message is messages[1]
