"""Models: the JSON of DESIGN.md, id validation, and the conversation's own mutations."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from memory import Conversation, Message, MessageMeta, MessageType, ToolCall

T0 = datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=UTC)


def make_conversation(**overrides: object) -> Conversation:
    fields: dict[str, object] = {
        "thread_id": "11",
        "channel_id": "44",
        "guild_id": "22",
        "guild_name": "G",
        "requester": "33",
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Conversation(**fields)


def test_message_json_matches_design() -> None:
    message = Message(
        message_type=MessageType.CHAT,
        message_content="Hello, Echo!",
        requester="123456789012345678",
        message_id=987654321098765432,
        created_at=T0,
    )
    assert json.loads(message.to_json()) == {
        "created_at": "2026-11-20T10:00:00.123456+00:00",
        "message_type": "chat",
        "message_content": "Hello, Echo!",
        "meta": {"requester": "123456789012345678", "message_id": "987654321098765432"},
    }


def test_tool_messages_keep_their_meta() -> None:
    call = Message(
        message_type="tool_call",
        tools=[{"id": "call_1", "name": "search", "params": {"q": "x"}}],
        created_at=T0,
    )
    answer = Message(
        message_type="tool_call_response",
        message_content="42",
        tool_call_id="call_1",
        name="search",
        created_at=T0,
    )
    assert json.loads(call.to_json())["meta"] == {
        "tools": [{"id": "call_1", "name": "search", "params": {"q": "x"}}]
    }
    assert json.loads(answer.to_json())["meta"] == {"tool_call_id": "call_1", "name": "search"}
    assert call.tools is not None and call.tools[0].name == "search"
    assert answer.tool_call_id == "call_1"
    assert call.requester is None


def test_default_created_at_is_now_in_utc() -> None:
    before = datetime.now(UTC)
    message = Message(message_type="thinking", message_content="hmm")
    assert before <= message.created_at <= datetime.now(UTC)
    assert message.to_json().startswith('{"created_at":"') and "+00:00" in message.to_json()


def test_times_are_normalised_to_utc_with_offset() -> None:
    paris = datetime(2026, 11, 20, 11, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    message = Message(message_type="chat", created_at=paris)
    assert json.loads(message.to_json())["created_at"] == "2026-11-20T11:00:00+00:00"


def test_conversation_round_trips_exactly() -> None:
    conversation = make_conversation(summary="so far")
    conversation.add_message(Message(message_type="chat", message_content="hi", requester="33"))
    conversation.add_message(Message(message_type="thinking", message_content='ü 🙂 "q"'))
    text = conversation.to_json()
    again = Conversation.from_json(text)
    assert again == conversation
    assert again.to_json() == text
    data = json.loads(text)
    assert list(data) == [
        "thread_id",
        "channel_id",
        "created_at",
        "updated_at",
        "summary",
        "guild_id",
        "guild_name",
        "requester",
        "participants",
        "history",
    ]
    assert data["participants"] == ["33"]


def test_unknown_keys_of_a_newer_file_survive() -> None:
    data = json.loads(make_conversation().to_json())
    data["shard"] = 3
    data["history"] = [
        {"created_at": T0.isoformat(), "message_type": "chat", "meta": {"future": [1, 2]}}
    ]
    again = Conversation.from_json(json.dumps(data))
    out = json.loads(again.to_json())
    assert out["shard"] == 3
    assert out["history"][0]["meta"] == {"future": [1, 2]}


def test_filename_follows_the_pattern_in_utc() -> None:
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    conversation = make_conversation(created_at=late)
    assert conversation.filename == "2026-11-20_conversation-with-33-in-22_11.json"


@pytest.mark.parametrize("bad", ["../x", "12a", "", "1/2", " 1", "1 ", "١٢", "1" * 21, "-1", True])
@pytest.mark.parametrize("field", ["thread_id", "channel_id", "guild_id", "requester"])
def test_bad_ids_are_rejected_naming_the_field(field: str, bad: object) -> None:
    with pytest.raises(ValueError, match=field):
        make_conversation(**{field: bad})


@pytest.mark.parametrize("bad", ["../x", "12a", "1/2"])
def test_bad_message_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="message_id"):
        Message(message_type="chat", message_id=bad)
    with pytest.raises(ValueError, match="requester"):
        Message(message_type="chat", requester=bad)


def test_int_ids_from_discord_py_are_accepted() -> None:
    conversation = make_conversation(thread_id=11, guild_id=22)
    assert conversation.thread_id == "11" and conversation.guild_id == "22"


def test_unknown_message_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="message_type"):
        Message(message_type="shout")


def test_add_message_appends_bumps_and_tracks_participants() -> None:
    conversation = make_conversation()
    later = T0 + timedelta(minutes=5)
    assert conversation.add_message(
        Message(message_type="chat", message_content="a", requester="77", created_at=later)
    )
    assert conversation.updated_at == later
    assert conversation.participants == ["33", "77"]
    earlier = Message(message_type="chat", message_content="b", created_at=T0 - timedelta(days=1))
    conversation.add_message(earlier)
    assert conversation.updated_at == later  # never moves backwards
    assert [m.message_content for m in conversation.history] == ["a", "b"]


def test_a_message_keeps_its_meta_as_fields_and_writes_it_nested() -> None:
    # A conversation holds every message in memory: a message is one slotted object, its
    # meta's keys its own fields, and meta is nested again only when it is written.
    made = Message(message_type="chat", message_content="a")
    assert json.loads(made.to_json())["meta"] == {}
    assert not hasattr(made, "__dict__")
    given = Message(
        message_type="chat",
        requester="7",
        meta={"message_id": "8", "author_name": "Ann", "future_key": [1, 2]},
    )
    assert (given.requester, given.message_id, given.author_name) == ("7", "8", "Ann")
    assert given.other_meta == {"author_name": "Ann", "future_key": [1, 2]}
    line = given.to_json()
    assert list(json.loads(line)) == ["created_at", "message_type", "message_content", "meta"]
    assert json.loads(line)["meta"] == {
        "requester": "7",
        "message_id": "8",
        "author_name": "Ann",
        "future_key": [1, 2],
    }
    assert Message.from_json(line) == given and Message.from_json(line).to_json() == line
    assert Message.from_dict(given.to_dict()) == given
    assert given.with_meta(requester=None, author_name="Bo").meta == {
        "message_id": "8",
        "author_name": "Bo",
        "future_key": [1, 2],
    }
    call = Message(
        message_type="tool_call",
        meta=MessageMeta(tools=[ToolCall(id="c1", name="current_time")], cut="length"),
    )
    assert call.tools == [ToolCall(id="c1", name="current_time")] and call.other_meta == {
        "cut": "length"
    }
    assert Message.from_json(call.to_json()) == call
    changed = dataclasses.replace(given, message_content="b")
    assert changed.other_meta == given.other_meta and changed.message_content == "b"
    # The BaseModel methods of the earlier Message still mean what they meant.
    assert Message.model_validate(given.model_dump()) == given
    assert Message.model_validate_json(given.model_dump_json(exclude_none=True)) == given
    assert given.model_copy(update={"requester": "9"}).meta["requester"] == "9"
    with pytest.raises(ValidationError):
        given.model_copy(update={"requester": "not a snowflake"})
    with pytest.raises(ValidationError):
        Message.from_dict({"message_type": "chat", "meta": "not an object"})


def test_a_bumped_updated_at_is_written_back() -> None:
    conversation = make_conversation()
    later = T0 + timedelta(minutes=5)
    conversation.add_message(Message(message_type="chat", created_at=later))
    assert "updated_at" in conversation.model_fields_set
    assert Conversation.from_json(conversation.to_json()).updated_at == later


def test_the_message_id_index_is_derived_never_stored() -> None:
    conversation = make_conversation(message_ids=["999"])  # given: ignored
    conversation.add_message(Message(message_type="chat", message_id="5"))
    assert conversation.message_ids == {"5"}
    written = json.loads(conversation.to_json())
    assert "message_ids" not in written and "message_ids" not in conversation.header()
    assert Conversation.from_json(conversation.to_json()).message_ids == {"5"}
    assert "message_ids" not in repr(conversation)
    with pytest.raises(TypeError, match="summary"):
        conversation.set_summary(None, T0)  # type: ignore[arg-type]


def test_add_message_ignores_a_recorded_discord_id() -> None:
    conversation = make_conversation()
    first = Message(message_type="chat", message_content="a", message_id="5")
    assert conversation.add_message(first)
    assert not conversation.add_message(
        Message(message_type="chat", message_content="b", message_id="5")
    )
    assert [m.message_content for m in conversation.history] == ["a"]
    # Echo's own segments have no Discord id and are never deduplicated.
    assert conversation.add_message(Message(message_type="thinking", message_content="x"))
    assert conversation.add_message(Message(message_type="thinking", message_content="x"))
    assert len(conversation.history) == 3


def test_dedupe_survives_a_round_trip() -> None:
    conversation = make_conversation()
    conversation.add_message(Message(message_type="chat", message_id="5"))
    again = Conversation.from_json(conversation.to_json())
    assert not again.add_message(Message(message_type="chat", message_id="5"))


def test_edit_delete_summary_end() -> None:
    conversation = make_conversation()
    conversation.add_message(Message(message_type="chat", message_content="old", message_id="5"))
    edited_at = T0 + timedelta(hours=1)
    assert conversation.edit_message("5", "new", edited_at)
    assert conversation.history[0].message_content == "new"
    assert conversation.history[0].other_meta == {"edited_at": edited_at.isoformat()}
    assert not conversation.edit_message("6", "x", edited_at)
    assert conversation.delete_message("5", edited_at)
    assert conversation.history == []
    assert not conversation.delete_message("5", edited_at)
    assert conversation.add_message(
        Message(message_type="chat", message_id="5")
    )  # id is free again
    conversation.set_summary("s", edited_at)
    assert conversation.summary == "s"
    assert "ended_at" not in json.loads(conversation.to_json())
    conversation.end(edited_at)
    assert json.loads(conversation.to_json())["ended_at"] == edited_at.isoformat()
    assert Conversation.from_json(conversation.to_json()).ended
    reopened_at = conversation.updated_at + timedelta(minutes=1)
    conversation.reopen(reopened_at)
    assert not conversation.ended and "ended_at" not in json.loads(conversation.to_json())
    assert conversation.updated_at == reopened_at


def test_messages_are_frozen() -> None:
    message = Message(message_type="chat", message_content="a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.message_content = "b"  # type: ignore[misc]
