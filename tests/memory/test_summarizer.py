"""Extractive summaries: true sentences, who said them, never the model's thinking."""

from __future__ import annotations

from memory import Message, MessageType
from memory.longterm.summarizer import extractive_summary, words


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
    summary = extractive_summary(messages, {"1": "Alice", "2": "Bob"}, max_chars=160)
    lines = summary.splitlines()
    assert lines[0].startswith("Bob: The release of version two")
    assert any(line.startswith("Alice: Marie writes the release notes") for line in lines)
    assert "weather" not in summary and "secret" not in summary
    assert len(summary) <= 160


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
