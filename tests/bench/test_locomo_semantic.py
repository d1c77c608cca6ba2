"""The semantic re-ranker's grid in ``bench.locomo``: every (candidates, weight) it scores must
be what ``SemanticReranker.search`` returns with those settings, or the held-out figures choose
among orders the re-ranker never gives.

Needs numpy (the fake encoder's vectors); CI installs only ``.[dev,redis]`` and skips it there.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.locomo_echo import Question
from bench.locomo_semantic import GRID, LIMIT, candidates
from memory.recall import RecallIndex
from memory.recall.semantic import RerankSettings, SemanticReranker
from tests.memory.recall_helpers import conversation, ids
from tests.memory.test_recall_semantic import FakeEncoder, needs_numpy

WORDS = ("dog", "puppy", "pet", "insurance", "prices", "park", "walk", "food", "vet", "toy")
QUESTIONS = ("pet dog park", "puppy insurance prices", "dog walk vet", "toy food park puppy")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RecallIndex]:
    # More conversations than the largest candidate count, each saying a few of the words in
    # its own mix: recall's order of its best 20 then differs from the first 20 of its best 50.
    rng = random.Random(3)
    with RecallIndex(tmp_path / "recall") as opened:
        for n in range(60):
            said = [
                " ".join(rng.choices(WORDS, k=rng.randint(1, 4))) + " and then some talk"
                for _ in range(rng.randint(3, 12))
            ]
            opened.upsert_conversation(conversation(str(100 + n), *said))
        yield opened


@needs_numpy
def test_every_setting_of_the_grid_scores_what_the_reranker_returns(index: RecallIndex) -> None:
    qs = [Question("1", text, frozenset(), 1) for text in QUESTIONS]
    found, _ = candidates(index, SemanticReranker(index, FakeEncoder()), qs)
    for q, c in zip(qs, found, strict=True):
        for n, weight in GRID:
            reranker = SemanticReranker(index, FakeEncoder(), RerankSettings(n, weight))
            assert c.ranked(n, weight)[:LIMIT] == ids(reranker.search("1", q.text, LIMIT))
            assert c.ranked(n, weight) == ids(reranker.search("1", q.text, n))
        # Weight 0, one candidate: the plain search, as the bench's "default" column scores it.
        assert c.ranked(1, 0.0) == ids(index.search("1", q.text, LIMIT))
