"""The write budget's windows, on a clock the test moves."""

from __future__ import annotations

import time

from bot.discord.pacing import WriteBudget
from bot.discord.waits import Wait, Waits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_global_window_fills_and_frees_as_writes_age() -> None:
    clock = Clock()
    budget = WriteBudget(global_limit=10, clock=clock)  # 9 usable: a margin for unpaced calls
    for i in range(9):
        clock.now += 0.01
        budget.note(i)
    assert budget.global_delay() > 0.9
    clock.now = 100.01 + 1.0  # the first write leaves the window
    assert budget.global_delay() == 0


def test_optional_writes_stop_before_the_budget_a_reply_needs_runs_out() -> None:
    clock = Clock()
    budget = WriteBudget(global_limit=50, clock=clock)
    budget.note(7)
    budget.note(7)
    assert budget.optional_delay(7) == 0  # 2 of 5 used: an edit may go
    budget.note(7)
    # 3 of 5 used: the last two are kept for the final edit and the next reply's first post
    assert budget.optional_delay(7) > 4.9
    assert budget.optional_delay(8) == 0  # another channel has its own bucket
    clock.now += 5.0
    assert budget.optional_delay(7) == 0


def test_typing_counts_globally_but_not_in_the_channel_bucket() -> None:
    clock = Clock()
    budget = WriteBudget(global_limit=50, clock=clock)
    for _ in range(4):
        budget.note(7, message_write=False)
    assert budget.optional_delay(7) == 0
    assert budget.global_delay() == 0


async def test_a_write_on_the_wire_counts_until_its_answer_and_a_window_after() -> None:
    clock = Clock()
    budget = WriteBudget(global_limit=2, clock=clock)  # 1 usable
    async with budget.write(7):
        assert budget.global_delay() > 0  # in flight: Discord may count it any moment
        clock.now += 3.0  # a slow answer
    assert budget.global_delay() > 0.9  # counted from the answer on
    clock.now += 1.0
    assert budget.global_delay() == 0


async def test_a_write_that_waited_for_room_is_reported_with_its_channel() -> None:
    waits = Waits()
    seen: list[Wait] = []
    stop = waits.subscribe(seen.append)
    budget = WriteBudget(global_limit=2, global_per=0.2, waits=waits)  # 1 usable per 0.2 s
    async with budget.write(7):
        pass
    assert seen == []  # there was room: no wait
    before = time.monotonic()
    async with budget.write(8):
        pass
    assert [(w.kind, w.channel_id) for w in seen] == [("write budget", 8)]
    assert before <= seen[0].started and 0.1 < seen[0].seconds < 2
    stop()
    async with budget.write(9):
        pass
    assert len(seen) == 1  # no longer observed


def test_a_failing_observer_does_not_stop_the_others() -> None:
    waits = Waits()
    seen: list[Wait] = []

    def broken(wait: Wait) -> None:
        raise RuntimeError("observer bug")

    waits.subscribe(broken)
    waits.subscribe(seen.append)
    waits.report("model slot", 5, 1.0, 3.5)
    assert seen == [Wait("model slot", 5, 1.0, 3.5)]
    assert seen[0].seconds == 2.5
