"""The streaming ``<think>`` parser: tags split at any character must never leak or vanish."""

from __future__ import annotations

import random
import re

import pytest

from bot.llm import ContentDelta, ContentRetracted, ReasoningDelta, ThinkParser, split_think
from bot.llm.think import ThinkPiece

SAMPLE = "Sure! <think>User wants X; answer briefly.</think>Here is X.<think>more</think> Bye"
SAMPLE_REASONING = "User wants X; answer briefly.more"
SAMPLE_CONTENT = "Sure! Here is X. Bye"


def run(
    chunks: list[str], *, opens_inside: bool = False, cut: bool = False
) -> tuple[str, str, list[ThinkPiece]]:
    """What a consumer ends with: a retraction takes back the content given so far."""
    parser = ThinkParser(opens_inside=opens_inside)
    pieces = [p for chunk in chunks for p in parser.feed(chunk)] + parser.finish(cut=cut)
    reasoning: list[str] = []
    content: list[str] = []
    for piece in pieces:
        if isinstance(piece, ContentRetracted):
            assert "".join(content) == piece.text, "a retraction names what was shown"
            content.clear()
        elif isinstance(piece, ReasoningDelta):
            reasoning.append(piece.text)
        else:
            content.append(piece.text)
    return "".join(reasoning), "".join(content), pieces


def reference(text: str) -> tuple[str, str]:
    """An independent whole-string split: tokens of a regex, toggling on the expected tag;
    a ``</think>`` before any tag makes everything before it reasoning."""
    reasoning, content, thinking, seen = [], [], False, False
    for token in re.split(r"(<think>|</think>)", text):
        if token == "</think>" and not seen:
            reasoning += content
            content = []
            seen = True
        elif token == ("</think>" if thinking else "<think>"):
            thinking = not thinking
            seen = True
        else:
            (reasoning if thinking else content).append(token)
    return "".join(reasoning), "".join(content)


def test_sample_whole() -> None:
    reasoning, content, pieces = run([SAMPLE])
    assert (reasoning, content) == (SAMPLE_REASONING, SAMPLE_CONTENT)
    assert all(p.text for p in pieces)


def test_every_single_split_position() -> None:
    for at in range(len(SAMPLE) + 1):
        reasoning, content, pieces = run([SAMPLE[:at], SAMPLE[at:]])
        assert (reasoning, content) == (SAMPLE_REASONING, SAMPLE_CONTENT), at
        assert all(p.text for p in pieces), at


def test_every_pair_of_split_positions() -> None:
    for i in range(len(SAMPLE) + 1):
        for j in range(i, len(SAMPLE) + 1):
            reasoning, content, _ = run([SAMPLE[:i], SAMPLE[i:j], SAMPLE[j:]])
            assert (reasoning, content) == (SAMPLE_REASONING, SAMPLE_CONTENT), (i, j)


def test_one_character_at_a_time() -> None:
    reasoning, content, _ = run(list(SAMPLE))
    assert (reasoning, content) == (SAMPLE_REASONING, SAMPLE_CONTENT)


def test_random_texts_and_splits_match_the_reference() -> None:
    rng = random.Random(20261120)
    atoms = ["<think>", "</think>", "<", "</", "<th", "think", ">", "a", "b ", "<thin", "k>", "/"]
    for case in range(400):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 14)))
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 5))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        reasoning, content, pieces = run(chunks)
        assert (reasoning, content) == reference(text), (case, text, chunks)
        assert all(p.text for p in pieces), (case, text, chunks)


def test_plain_text_is_not_held_back() -> None:
    """The answer streams at once: only a possible tag start waits for the next chunk."""
    parser = ThinkParser()
    assert parser.feed("Hello wor") == [ContentDelta("Hello wor")]
    assert parser.feed("ld <th") == [ContentDelta("ld ")]
    assert parser.feed("ere") == [ContentDelta("<there")]
    assert parser.finish() == []


def test_reasoning_streams_inside_a_block() -> None:
    parser = ThinkParser()
    assert parser.feed("<think>step one") == [ReasoningDelta("step one")]
    assert parser.thinking
    assert parser.feed(", two</th") == [ReasoningDelta(", two")]
    assert parser.feed("ink>Answer") == [ContentDelta("Answer")]
    assert not parser.thinking
    assert parser.saw_tags


def test_unclosed_think_at_the_end_is_reasoning() -> None:
    reasoning, content, _ = run(["<think>I ran out of tok", "ens</thi"])
    assert reasoning == "I ran out of tokens</thi"
    assert content == ""


def test_dangling_tag_start_at_the_end_is_content() -> None:
    assert run(["2 <", "thi"])[:2] == ("", "2 <thi")


@pytest.mark.parametrize(
    "text",
    [
        "a <thinker> b",
        "<Think>x</Think>",
        "</think> stray close",
        "<<think>>",
        "a</think>b</think>",
    ],
)
def test_only_exact_tags_count(text: str) -> None:
    assert run([text])[:2] == reference(text)


def test_split_think() -> None:
    assert split_think('<think>plan</think>{"a": 1}') == ("plan", '{"a": 1}')
    assert split_think("no tags") == ("", "no tags")


# --- a think block opened by the prompt template -------------------------------------------

TEMPLATE_OPENED = "The user greets me; greet back.</think>Hello! <think>x</think>How can I help?"


def test_orphan_close_takes_back_what_was_shown_as_the_answer() -> None:
    """DeepSeek-V3.1 / Qwen3 on llama.cpp: `<think>` was in the prompt. The text streams at
    once (no holding back an ordinary answer), and the orphan tag turns it into reasoning."""
    parser = ThinkParser()
    assert parser.feed("The user greets me;") == [ContentDelta("The user greets me;")]
    assert parser.feed(" greet back.</thi") == [ContentDelta(" greet back.")]
    assert parser.feed("nk>Hello!") == [
        ContentRetracted("The user greets me; greet back."),
        ReasoningDelta("The user greets me; greet back."),
        ContentDelta("Hello!"),
    ]
    assert parser.saw_orphan_close


def test_orphan_close_at_every_split_position() -> None:
    expected = ("The user greets me; greet back.x", "Hello! How can I help?")
    for at in range(len(TEMPLATE_OPENED) + 1):
        assert run([TEMPLATE_OPENED[:at], TEMPLATE_OPENED[at:]])[:2] == expected, at
        assert run([TEMPLATE_OPENED[:at], TEMPLATE_OPENED[at:]], opens_inside=True)[:2] == (
            expected
        ), at
    assert run(list(TEMPLATE_OPENED))[:2] == expected


def test_opening_inside_holds_reasoning_back_until_it_closes() -> None:
    parser = ThinkParser(opens_inside=True)
    assert parser.feed("Plan: greet") == []
    assert parser.feed(".</think>Hi") == [ReasoningDelta("Plan: greet."), ContentDelta("Hi")]


def test_opening_inside_but_never_closed_is_the_answer_unless_cut() -> None:
    assert run(["Just an ", "answer."], opens_inside=True)[:2] == ("", "Just an answer.")
    assert run(["Still thinking wh"], opens_inside=True, cut=True)[:2] == (
        "Still thinking wh",
        "",
    )


def test_opening_inside_with_the_model_writing_its_own_open_tag() -> None:
    """DeepSeek-R1 on Together writes `<think>` itself: one block, not a stray tag."""
    assert run(["<think>\nplan", "</think>answer"], opens_inside=True)[:2] == ("\nplan", "answer")


def test_split_think_orphan_close() -> None:
    assert split_think("reasoning here</think>\n\nThe answer.") == (
        "reasoning here",
        "\n\nThe answer.",
    )
    assert split_think("plain", opens_inside=True) == ("", "plain")


def test_where_the_chunks_are_cut_never_matters() -> None:
    """The scan starts where a tag could end in the new chunk, and plain chunks skip it: any
    cutting of the same text, in either mode, ends with what the whole text gives at once."""
    rng = random.Random(20261205)
    atoms = ["<think>", "</think>", "<", "</", "<th", "</thi", "think", ">", "a", " ", "\n", "<<"]
    for case in range(600):
        text = "".join(rng.choice(atoms) for _ in range(rng.randint(0, 16)))
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(1, 8))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        for opens_inside in (False, True):
            for cut in (False, True):
                whole = run([text], opens_inside=opens_inside, cut=cut)
                pieces = run(chunks, opens_inside=opens_inside, cut=cut)
                assert pieces[:2] == whole[:2], (case, text, chunks, opens_inside, cut)
                assert all(p.text for p in pieces[2]), (case, text, chunks)


def test_a_long_held_back_block_streams_out_whole_when_it_closes() -> None:
    parser = ThinkParser(opens_inside=True)
    words = [f"step {k}, " for k in range(2000)]
    assert all(parser.feed(word) == [] for word in words)
    assert parser.feed("done</thi") == []
    assert parser.feed("nk>The answer.") == [
        ReasoningDelta("".join(words) + "done"),
        ContentDelta("The answer."),
    ]
