"""The write budget's windows, on a clock the test moves."""

from __future__ import annotations

from bot.discord.pacing import WriteBudget


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


async def test_a_write_that_waits_for_room_is_told_to_the_wait_log() -> None:
    # Real time here: the budget sleeps until the oldest write leaves its window.
    budget = WriteBudget(global_limit=2, global_per=0.05)  # 1 usable
    seen: list[tuple[str, int | None, float, float]] = []
    budget.waits.listen(lambda *wait: seen.append(wait))
    async with budget.write(7):
        pass
    assert seen == []  # room at once: no wait
    async with budget.write(8):
        pass
    assert len(seen) == 1
    what, channel, started, ended = seen[0]
    assert (what, channel) == ("discord", 8)
    assert 0.02 < ended - started < 1.0
    async with budget.write(9, wait=False):  # an optional write never waits
        pass
    assert len(seen) == 1
