"""What the cyclic garbage collector walks: not the records of a conversation (each full
collection walked three objects per message, holding the event loop), not the start-up
objects once frozen; and whatever it must still find, it finds."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from memory import Conversation, Message, MessageType, ToolCall, models

needs_untrack = pytest.mark.skipif(
    models._gc_untrack is None, reason="untracking needs CPython's C API"
)


class Probe:
    """Something weakly referenceable to put inside a record."""

    me: Probe | None = None


def walked(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def no_collections() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@needs_untrack
def test_a_message_and_its_meta_are_not_walked() -> None:
    message = Message(
        message_type=MessageType.CHAT,
        message_content="hi",
        requester="33",
        message_id="44",
        meta={"author_name": "Ana", "nested": {"a": [1]}},
    )
    for obj in (message, message.__dict__, message.meta, message.meta.model_extra):
        assert not gc.is_tracked(obj)
    assert not walked(message)
    # What a record holds that could change stays visible to the collector.
    assert gc.is_tracked(message.meta.model_extra["nested"])  # type: ignore[index]


@needs_untrack
def test_tool_calls_are_not_walked_but_their_parameters_are() -> None:
    message = Message(
        message_type=MessageType.TOOL_CALL,
        tools=[ToolCall(id="c1", name="search", params={"q": ["x"]})],
    )
    call = message.tools[0]  # type: ignore[index]
    for obj in (message, message.meta, message.meta.__dict__, call, call.__dict__):
        assert not gc.is_tracked(obj)
    assert gc.is_tracked(message.tools) and gc.is_tracked(call.params)


@needs_untrack
def test_loaded_and_edited_messages_are_not_walked() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    conversation = Conversation(thread_id="1", channel_id="2", guild_id="3", requester="4")
    conversation.add_message(
        Message(message_type=MessageType.CHAT, message_content="a", message_id="9", requester="4")
    )
    loaded = Conversation.from_json(conversation.to_json())
    assert loaded.to_json() == conversation.to_json()
    assert not gc.is_tracked(loaded.history[0])
    assert loaded.edit_message("9", "b", at)
    assert not gc.is_tracked(loaded.history[0]) and not walked(loaded.history[0])


@needs_untrack
def test_a_dropped_message_is_freed_at_once(no_collections: None) -> None:
    probe = Probe()
    gone = weakref.ref(probe)
    message = Message(message_type=MessageType.CHAT, meta={"probe": probe})
    del probe
    assert gone() is not None
    del message  # reference counting alone: no collection runs
    assert gone() is None


def test_a_cycle_inside_a_record_is_still_collected() -> None:
    probe = Probe()
    probe.me = probe
    gone = weakref.ref(probe)
    message = Message(
        message_type=MessageType.TOOL_CALL,
        tools=[ToolCall(id="c1", name="run", params={"probe": probe})],
    )
    del probe
    gc.collect()
    assert gone() is not None  # the message still holds it
    del message
    gc.collect()
    assert gone() is None


CHILD = textwrap.dedent(
    """
    import gc
    import weakref

    from memory.manager import freeze_start_up_objects


    class Node:
        pass


    def cycle() -> weakref.ref:
        node = Node()
        node.self = node
        return weakref.ref(node)


    kept = Node()
    garbage = cycle()  # unreachable already: the freeze must collect it, not keep it
    assert garbage() is not None

    frozen = freeze_start_up_objects()
    assert frozen > 1000, frozen
    assert garbage() is None, "garbage present at the freeze was frozen"
    assert gc.get_freeze_count() == frozen
    assert all(o is not kept for o in gc.get_objects()), "a start-up object is still walked"

    later = cycle()  # made after the freeze: collected as usual
    gc.collect()
    assert later() is None

    assert freeze_start_up_objects() == 0  # once per process
    assert gc.get_freeze_count() == frozen
    print("ok")
    """
)


def test_start_up_objects_are_frozen_once_and_later_garbage_is_collected() -> None:
    # In a child process: a freeze lasts as long as the process, and the test run's own
    # objects must stay collectable.
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
