"""The extractive distiller dates what was said relative to its day."""

from __future__ import annotations

from datetime import UTC, datetime

from memory.longterm import extractive_memory
from memory.recall.temporal import TIME_MARK
from tests.memory.recall_helpers import conversation

WENT = "I went to a support group yesterday and the support group was powerful."
# Said on Monday 8 May 2023.
SAID = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
MEETS = "The support group meets every week, support group friends are great."


def test_a_fact_said_relative_to_its_day_says_which_day() -> None:
    memory = extractive_memory(conversation("301", WENT, MEETS, created_at=SAID))
    facts = [f.text for f in memory.facts]
    assert (
        "I went to a support group yesterday and the support group was powerful. "
        "(Sunday 7 May 2023)" in facts
    )
    assert not any(TIME_MARK in f for f in facts)
    # A sentence with no relative date is kept as said.
    assert "The support group meets every week, support group friends are great." in facts


def test_the_summary_of_a_memory_says_which_day_too() -> None:
    memory = extractive_memory(conversation("302", WENT, MEETS, created_at=SAID))
    summary = memory.summary.splitlines()
    assert any(
        line.endswith(
            "I went to a support group yesterday and the support group was powerful. "
            "(Sunday 7 May 2023)"
        )
        for line in summary
    ), summary
    assert TIME_MARK not in "".join(summary)
