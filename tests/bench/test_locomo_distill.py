"""``bench.locomo_distill.topics``: a record's topics scored against LoCoMo's session summary."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import locomo_distill
from memory.records.memories import MemoryData, MemoryRecord
from memory.records.models import Conversation

WHEN = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def _item(thread_id: str, topics: list[str]) -> tuple[Conversation, MemoryRecord]:
    conversation = Conversation(
        thread_id=thread_id, channel_id="9", guild_id="1000", requester="1", created_at=WHEN
    )
    memory = MemoryRecord(
        thread_id=thread_id,
        guild_id="1000",
        requester="1",
        source_updated_at=WHEN,
        memory_data=MemoryData(summary="", topics=topics),
    )
    return conversation, memory


def test_topics_are_scored_by_the_words_of_the_session_summary_names_left_out() -> None:
    records = [
        {
            "conversation": {"speaker_a": "Ann", "speaker_b": "Bo"},
            "session_summary": {
                "session_1_summary": "Ann told Bo about the puppies she adopted and her pottery.",
                "session_2_summary": "Bo went hiking.",
            },
        }
    ]
    items = [
        # "ann" is in every summary of hers, so it counts for no topic; "great" is in none.
        _item("1000001", ["puppies", "pottery", "ann", "great"]),
        _item("1000002", ["hikes", "bo"]),  # "hikes" is "hiking", folded
        _item("1000003", ["anything"]),  # no summary for session 3: not scored
    ]
    scored = locomo_distill.topics(records, items)
    assert scored == {"records": 2, "topics_per_record": 3.0, "in_session_summary": 0.5}
