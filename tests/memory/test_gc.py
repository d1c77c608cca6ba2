"""What the cyclic garbage collector walks: not the start-up objects once frozen; and what it
must find among the records (a cycle a message holds), it finds, while a record with no cycle
is freed by reference counting alone."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator

import pytest

from memory import Message, MessageType, ToolCall


class Probe:
    """Something weakly referenceable to put inside a record."""

    me: Probe | None = None


@pytest.fixture
def no_collections() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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

    from bot.startup import freeze_start_up_objects


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
