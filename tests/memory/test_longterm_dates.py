"""The extractive distiller dates what was said relative to its day."""

from __future__ import annotations

from datetime import UTC, datetime

from memory.longterm import extractive_memory
from memory.recall.temporal import TIME_MARK
from tests.memory.recall_helpers import conversation


def test_a_fact_said_relative_to_its_day_says_which_day() -> None:
    monday = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    conv = conversation(
        "301",
        "I went to a support group yesterday and the support group was powerful.",
        "The support group meets every week, support group friends are great.",
        created_at=monday,
    )
    facts = [f.text for f in extractive_memory(conv).facts]
    assert (
        "I went to a support group yesterday and the support group was powerful. "
        "(Sunday 7 May 2023)" in facts
    )
    assert not any(TIME_MARK in f for f in facts)
    # A sentence with no relative date is kept as said.
    assert "The support group meets every week, support group friends are great." in facts


def test_the_summary_of_a_memory_says_which_day_too() -> None:
    monday = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    conv = conversation(
        "302",
        "I went to a support group yesterday and the support group was powerful.",
        "The support group meets every week, support group friends are great.",
        created_at=monday,
    )
    summary = extractive_memory(conv).summary.splitlines()
    assert any(
        line.endswith(
            "I went to a support group yesterday and the support group was powerful. "
            "(Sunday 7 May 2023)"
        )
        for line in summary
    ), summary
    assert TIME_MARK not in "".join(summary)
