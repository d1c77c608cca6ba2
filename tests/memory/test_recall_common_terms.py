"""A query matching too many passages to score them all: the "common terms" ranking (the
rarest words choose the candidates, every word scores them) against the exact ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory.recall import RecallIndex, RecallSettings
from tests.memory.recall_helpers import conversation, ids


@pytest.fixture
def crowded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A guild where "apple" and "pear" are common words: small thresholds stand in for the
    thousands of passages of a large guild. Words only: with thresholds this small even the
    pair "apple pear" would count as common (in a large guild a pair of words is far rarer
    than either word; ``python -m bench --only recall`` measures that ranking with pairs)."""
    import memory.recall.ranking as recall

    monkeypatch.setattr(recall, "_EXACT_MATCHES", 8)
    monkeypatch.setattr(recall, "_RARE_MATCHES", 5)
    ranked: list[bool] = []  # per search: True if ranked by the rare words, False if exactly
    rank_common = RecallIndex._rank_common

    def spy(self, *args, **kwargs):
        rows = rank_common(self, *args, **kwargs)
        ranked.append(rows is not None)
        return rows

    monkeypatch.setattr(RecallIndex, "_rank_common", spy)
    with RecallIndex(tmp_path / "recall", settings=RecallSettings(phrase_pairs=False)) as index:
        index.ranked = ranked  # type: ignore[attr-defined]
        items = []
        for n in range(30):
            words = ["apple"] * (1 + n % 3) + ["pear"] * (n % 2) + [f"filler{n}"] * (n % 5)
            if n in (3, 17):
                words.append("quince")
            if n in (4, 11, 22):
                words.append("medlar")
            items.append((conversation(str(700 + n), " ".join(words)), None))
        index.upsert_many(items)
        yield index


def exact(index: RecallIndex, query: str, limit: int = 5):
    import memory.recall.ranking as recall

    saved = recall._EXACT_MATCHES
    recall._EXACT_MATCHES = 10**9
    try:
        return index.search("1", query, limit=limit)
    finally:
        recall._EXACT_MATCHES = saved


def test_rare_words_choose_the_candidates_and_every_word_scores_them(crowded: RecallIndex) -> None:
    query = "quince medlar apple pear"
    hits = crowded.search("1", query)
    assert crowded.ranked == [True]  # type: ignore[attr-defined]
    assert sorted(ids(hits)) == ["703", "704", "711", "717", "722"]
    # Scored as the exact ranking scores them, in the same order, with the same snippets.
    assert hits == exact(crowded, query)


def test_when_no_word_is_rare_the_candidates_hold_every_word(crowded: RecallIndex) -> None:
    hits = crowded.search("1", "apple pear", limit=3)
    assert crowded.ranked == [True]  # type: ignore[attr-defined]
    assert hits == exact(crowded, "apple pear", limit=3)
    assert all("apple" in h.snippet and "pear" in h.snippet for h in hits)


def test_too_few_candidates_fall_back_to_the_exact_ranking(crowded: RecallIndex) -> None:
    hits = crowded.search("1", "quince apple", limit=5)  # two conversations hold quince
    assert crowded.ranked == [False]  # type: ignore[attr-defined]
    assert hits == exact(crowded, "quince apple", limit=5)
    assert ids(hits)[:2] == ["703", "717"] or ids(hits)[:2] == ["717", "703"]
