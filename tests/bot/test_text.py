"""Splitting long answers for Discord, and thread names."""

from __future__ import annotations

import random

import pytest

from bot.discord.text import MESSAGE_LIMIT, split_message, thread_name


def fences_balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.split("\n") if line.lstrip().startswith("```")) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("hello") == ["hello"]


def test_splits_on_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Paragraph {n}. " + "word " * 150 for n in range(8)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split_message(text)
    assert len(chunks) > 1
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert all(c.startswith("Paragraph") for c in chunks)  # every cut fell between paragraphs
    assert " ".join(" ".join(chunks).split()) == " ".join(text.split())


def test_a_code_block_cut_in_two_is_closed_and_reopened() -> None:
    code = "\n".join(f"print({n})  # line {n}" for n in range(200))
    text = f"Here you go:\n\n```python\n{code}\n```\n\nDone."
    chunks = split_message(text)
    assert len(chunks) >= 2
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    assert chunks[0].endswith("\n```")
    assert chunks[1].startswith("```python\n")
    body = "".join(c.replace("```python\n", "").replace("\n```", "\n") for c in chunks)
    for n in (0, 100, 199):
        assert f"print({n})  # line {n}" in body


def test_a_3500_character_answer_becomes_two_messages() -> None:
    text = ("All work and no play makes Echo a dull bot. " * 80)[:3500]
    chunks = split_message(text)
    assert len(chunks) == 2
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)


def test_a_word_longer_than_a_message_is_hard_cut() -> None:
    chunks = split_message("x" * 4500)
    assert [len(c) for c in chunks] == [1996, 1996, 508]


def test_an_unclosed_fence_from_the_model_is_closed() -> None:
    assert split_message("```js\nlet a = 1") == ["```js\nlet a = 1\n```"]


@pytest.mark.parametrize("seed", range(30))
def test_random_markdown_always_fits_and_balances(seed: int) -> None:
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(5, 40)):
        kind = rng.random()
        if kind < 0.3:
            parts.append(
                "```"
                + rng.choice(["", "py", "json"])
                + "\n"
                + "x = 1\n" * rng.randint(1, 120)
                + "```"
            )
        else:
            parts.append(
                " ".join(
                    rng.choice(["alpha", "beta", "gamma", "delta."])
                    for _ in range(rng.randint(1, 400))
                )
            )
    text = "\n\n".join(parts)
    chunks = split_message(text)
    assert all(0 < len(c) <= MESSAGE_LIMIT for c in chunks)
    assert all(fences_balanced(c) for c in chunks)


def test_thread_names() -> None:
    assert (
        thread_name("<@123> what's the weather in **Paris**?", "x")
        == "what's the weather in Paris?"
    )
    long = "<@1> " + "tell me everything about the history of the roman empire please " * 3
    name = thread_name(long, "x")
    assert len(name) <= 61 and name.endswith("…") and name.startswith("tell me everything")
    assert thread_name("<@123>", "Chat with Alice") == "Chat with Alice"
    assert thread_name("<:wave:12345> hi", "x") == "wave hi"
