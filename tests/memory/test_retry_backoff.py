"""When a failed idle save is tried again: soon, then less and less often, never past the cap."""

from __future__ import annotations

from memory.recording.idle import RetryBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_a_success_starts_over() -> None:
    clock = Clock()
    retries = RetryBackoff(5.0, 300.0, clock)
    assert [retries.failed("11") for _ in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    retries.forget("11")
    assert retries.failed("11") == 5
    assert retries.failed("11") == 10


def test_due_keys_come_out_soonest_first_and_only_once() -> None:
    clock = Clock()
    retries = RetryBackoff(1.0, 60.0, clock)
    retries.failed("11")
    retries.failed("11")  # second failure: due in 2 s
    retries.failed("22")  # due in 1 s
    assert retries.next_deadline() == 101.0
    assert retries.pop_due() == []
    clock.now = 102.0
    assert retries.pop_due() == ["22", "11"]
    assert retries.pop_due() == [] and retries.next_deadline() is None
    assert retries.failed("11") == 4.0  # the count survives until a save succeeds
