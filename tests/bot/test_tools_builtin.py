"""The tools Echo ships (``default_tools``): ``current_time`` in a zone, and
``search_conversation`` over the thread's history; their schemas as the model sees them."""

from __future__ import annotations

import json
from typing import Any

from bot.tools import ToolResult, default_tools
from memory.records.models import MessageType

from .test_tools import OTHER, REQUESTER, context, parameters, said

# --- current_time ----------------------------------------------------------------------------


async def test_current_time_utc() -> None:
    result = await default_tools().call("current_time", "{}", context())

    assert result == ToolResult("2026-11-20T10:00:00+00:00 (Friday, UTC)")


async def test_current_time_paris() -> None:
    tools = default_tools()

    result = await tools.call("current_time", '{"timezone": "Europe/Paris"}', context())
    lowercase = await tools.call("current_time", '{"timezone": "europe/paris"}', context())

    assert result == ToolResult("2026-11-20T11:00:00+01:00 (Friday, Europe/Paris)")
    assert lowercase == result


async def test_current_time_bad_zone() -> None:
    result = await default_tools().call("current_time", '{"timezone": "Mars/Olympus"}', context())

    assert result.is_error
    assert "'Mars/Olympus'" in result.content
    assert "Europe/Paris" in result.content


def test_default_tools_schemas() -> None:
    tools = default_tools()

    assert tools.names() == ["current_time", "search_conversation", "recall_memory"]
    assert parameters(tools, "search_conversation")["required"] == ["query"]
    assert parameters(tools, "recall_memory")["required"] == ["query"]
    assert "context" not in parameters(tools, "recall_memory")["properties"]
    assert "required" not in parameters(tools, "current_time")


# --- search_conversation ---------------------------------------------------------------------


def search_args(query: str, limit: int | None = None) -> str:
    args: dict[str, Any] = {"query": query}
    if limit is not None:
        args["limit"] = limit
    return json.dumps(args)


def result_lines(result: ToolResult) -> list[str]:
    return [line for line in result.content.splitlines() if line.startswith("- [")]


async def test_search_ranks_the_best_match_first() -> None:
    ctx = context(
        said("Tomatoes love sun; water the garden tomatoes daily", by=None, minutes=0),
        said("I planted tomatoes in the garden", minutes=1),
        said("The garden needs water", by=OTHER, minutes=2),
        said("Unrelated: my cat is asleep", minutes=4),
        said("what did we say about the garden tomatoes?", minutes=5),
    )

    result = await default_tools().call("search_conversation", search_args("garden tomatoes"), ctx)

    lines = result_lines(result)
    assert not result.is_error
    assert len(lines) == 3
    assert "Echo: Tomatoes love sun" in lines[0]  # both words, most occurrences (though older)
    assert f"{REQUESTER}: I planted tomatoes" in lines[1]  # both words
    assert f"{OTHER}: The garden needs water" in lines[2]  # one word
    assert "cat" not in result.content
    assert "what did we say" not in result.content  # the question being answered
    assert "2026-11-20T09:01:00+00:00" in lines[1]


async def test_search_skips_thinking_and_includes_tool_results() -> None:
    ctx = context(
        said("zebra zebra zebra", by=None, message_type=MessageType.THINKING),
        said("zebra facts: stripes", by=None, message_type=MessageType.TOOL_CALL_RESPONSE),
        said("any zebra?", by=OTHER),
        said("ok", minutes=2),
    )

    result = await default_tools().call("search_conversation", search_args("zebra"), ctx)

    lines = result_lines(result)
    assert len(lines) == 2
    assert f"{OTHER}: any zebra?" in lines[0]  # equal scores: the more recent first
    assert "Echo: zebra facts: stripes" in lines[1]
    assert "zebra zebra zebra" not in result.content


async def test_search_respects_and_clamps_limit() -> None:
    ctx = context(*(said(f"note {i} about apples", minutes=i) for i in range(30)), said("ok"))
    tools = default_tools()

    two = await tools.call("search_conversation", search_args("apples", 2), ctx)
    zero = await tools.call("search_conversation", search_args("apples", 0), ctx)
    many = await tools.call("search_conversation", search_args("apples", 500), ctx)
    default = await tools.call("search_conversation", search_args("apples"), ctx)

    assert len(result_lines(two)) == 2
    assert "note 29 about apples" in result_lines(two)[0]  # ties: most recent first
    assert len(result_lines(zero)) == 1
    assert len(result_lines(many)) == 20
    assert len(result_lines(default)) == 5
    assert two.content.startswith("2 of 30 matching messages")


async def test_search_ignores_stopwords_and_trims_long_messages() -> None:
    ctx = context(
        said("the of and to in is it that"),
        said("budget " + "very long text " * 100, by=OTHER),
        said("ok"),
    )
    tools = default_tools()

    stop = await tools.call("search_conversation", search_args("is it the budget"), ctx)
    nothing = await tools.call("search_conversation", search_args("volcano"), ctx)

    [line] = result_lines(stop)
    assert "budget very long text" in line
    assert len(line.split(": ", 1)[1]) <= 300
    assert nothing == ToolResult("no messages match 'volcano'")


async def test_search_prefers_more_distinct_query_words_over_repeats() -> None:
    ctx = context(
        said("budget meeting on Monday", minutes=0),
        said("budget budget budget budget!", by=OTHER, minutes=1),
        said("ok", minutes=2),
    )

    result = await default_tools().call("search_conversation", search_args("budget meeting"), ctx)

    lines = result_lines(result)
    assert "budget meeting on Monday" in lines[0]
    assert "budget budget" in lines[1]
