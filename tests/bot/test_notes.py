"""The line of a memory the model reads: its summary, then facts the summary does not say."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.agent.notes import memory_line
from memory.records.memories import Fact, MemoryData, MemoryRecord

WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def record(summary: str, *facts: str) -> MemoryRecord:
    return MemoryRecord(
        thread_id="11",
        guild_id="22",
        requester="33",
        memory_data=MemoryData(summary=summary, facts=[Fact(text=f, about="33") for f in facts]),
        source_updated_at=WHEN,
        conversation_created_at=WHEN,
    )


def test_a_fact_the_summary_says_gives_its_room_to_one_it_does_not() -> None:
    said = "I adopted a dog named Max."
    facts = [said, "I run on Sundays.", "My sister lives in Porto.", "I paint.", "I bake bread."]
    line = memory_line(record(f"Ann: {said}\nAnn: I moved to Lisbon.", *facts), None)
    assert line.startswith("- conversation of 2023-05-08: Ann: I adopted a dog named Max.")
    assert line.count("named Max") == 1
    assert line.endswith(
        "Facts: I run on Sundays.; My sister lives in Porto.; I paint.; I bake bread."
    )


def test_a_record_whose_summary_says_none_of_its_facts_shows_the_first_four() -> None:
    line = memory_line(
        record("A chat about bread.", "One.", "Two.", "Three.", "Four.", "Five."), None
    )
    assert line.endswith("Facts: One.; Two.; Three.; Four.")
