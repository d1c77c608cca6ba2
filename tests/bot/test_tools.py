"""The tool registry (the built-in tools: ``test_tools_builtin.py``).

Schemas come from signatures and every failure becomes an error result, so these tests
look at exactly what the model would receive.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import pytest
from pydantic import Field

from bot.tools import ToolContext, ToolError, ToolRegistry, ToolResult, default_tools
from memory.records.models import Conversation, Message, MessageType

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
REQUESTER = "111111111111111111"
OTHER = "222222222222222222"


def conversation(*messages: Message) -> Conversation:
    conv = Conversation(
        thread_id="900000000000000001",
        channel_id="900000000000000002",
        guild_id="900000000000000003",
        requester=REQUESTER,
    )
    for message in messages:
        conv.add_message(message)
    return conv


def context(*messages: Message) -> ToolContext:
    return ToolContext(conversation(*messages), now=lambda: NOW)


def said(text: str, by: str | None = REQUESTER, minutes: int = 0, **kind: Any) -> Message:
    return Message(
        message_type=kind.get("message_type", MessageType.CHAT),
        message_content=text,
        requester=by,
        created_at=NOW - timedelta(hours=1) + timedelta(minutes=minutes),
    )


def parameters(registry: ToolRegistry, name: str) -> dict[str, Any]:
    [schema] = [s for s in registry.schemas() if s["function"]["name"] == name]
    return schema["function"]["parameters"]


@pytest.fixture
def registry() -> ToolRegistry:
    reg = ToolRegistry()

    @reg.tool
    async def forecast(
        ctx: ToolContext,
        city: Annotated[str, Field(description="City name, e.g. 'Paris'")],
        days: int = 3,
        metric: bool = True,
        tags: list[str] | None = None,
    ) -> str:
        """Weather forecast for a city.

        This second paragraph is for maintainers, not for the model.
        """
        units = "metric" if metric else "imperial"
        return f"{city} for {days} days ({units}) in {ctx.conversation.thread_id}"

    @reg.tool(name="add_numbers")
    def add(a: int, b: int) -> dict[str, int]:
        """Add two integers."""
        return {"sum": a + b}

    @reg.tool
    async def boom() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    return reg


# --- schemas ---------------------------------------------------------------------------------


def test_schema_is_derived_from_the_signature(registry: ToolRegistry) -> None:
    [schema] = [s for s in registry.schemas() if s["function"]["name"] == "forecast"]

    assert schema["type"] == "function"
    assert schema["function"]["description"] == "Weather forecast for a city."
    params = schema["function"]["parameters"]
    assert params["type"] == "object"
    assert list(params["properties"]) == ["city", "days", "metric", "tags"]  # ctx is injected
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {
        "type": "string",
        "description": "City name, e.g. 'Paris'",
    }
    assert params["properties"]["days"] == {"type": "integer", "default": 3}
    assert params["properties"]["metric"] == {"type": "boolean", "default": True}
    tags = params["properties"]["tags"]
    assert {"type": "array", "items": {"type": "string"}} in tags["anyOf"]
    assert params["additionalProperties"] is False
    assert "title" not in json.dumps(schema)


def test_a_parameter_named_title_survives_the_cleanup() -> None:
    reg = ToolRegistry()

    @reg.tool
    def rename(title: str) -> str:
        """Rename the thread."""
        return title

    assert parameters(reg, "rename") == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
        "required": ["title"],
        "additionalProperties": False,
    }


def test_names_and_decorator_forms(registry: ToolRegistry) -> None:
    assert registry.names() == ["forecast", "add_numbers", "boom"]
    assert "add_numbers" in registry
    assert "add" not in registry
    assert len(registry) == 3


def test_decorator_returns_the_function_unchanged() -> None:
    reg = ToolRegistry()

    @reg.tool
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    assert double(4) == 8


def test_registration_refuses_what_the_model_could_not_be_told() -> None:
    reg = ToolRegistry()

    def undocumented(x: int) -> int:
        return x

    def untyped(x) -> int:  # type: ignore[no-untyped-def]
        """Has no hint."""
        return x

    def variadic(*args: int) -> int:
        """Takes anything."""
        return 0

    for func in (undocumented, untyped, variadic):
        with pytest.raises(TypeError):
            reg.tool(func)
    assert reg.names() == []


def test_duplicate_names_are_refused(registry: ToolRegistry) -> None:
    def forecast(city: str) -> str:
        """Another forecast."""
        return city

    with pytest.raises(ValueError, match="forecast"):
        registry.tool(forecast)


# --- calls -----------------------------------------------------------------------------------


async def test_call_with_good_arguments_injects_the_context(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '{"city": "Paris", "days": 2}', context())

    assert result == ToolResult("Paris for 2 days (metric) in 900000000000000001")


async def test_sync_tool_and_non_string_result(registry: ToolRegistry) -> None:
    result = await registry.call("add_numbers", '{"a": 2, "b": 40}', context())

    assert not result.is_error
    assert json.loads(result.content) == {"sum": 42}


async def test_bad_json(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '{"city": "Par', context())

    assert result.is_error
    assert "not valid JSON" in result.content
    assert '{"city": "..."}' in result.content


async def test_arguments_must_be_an_object(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '["Paris"]', context())

    assert result.is_error
    assert "JSON object" in result.content
    assert "array" in result.content


async def test_missing_argument(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '{"days": 2}', context())

    assert result.is_error
    assert "city: field required" in result.content


async def test_wrong_type(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '{"city": "Paris", "days": "many"}', context())

    assert result.is_error
    assert "days" in result.content
    assert "integer" in result.content


async def test_unexpected_argument(registry: ToolRegistry) -> None:
    result = await registry.call("forecast", '{"city": "Paris", "hours": 5}', context())

    assert result.is_error
    assert "hours: unexpected argument" in result.content


async def test_empty_arguments_for_a_tool_without_parameters() -> None:
    reg = ToolRegistry()

    @reg.tool
    def ping() -> str:
        """Answers pong."""
        return "pong"

    assert await reg.call("ping", "", context()) == ToolResult("pong")


async def test_unknown_tool(registry: ToolRegistry) -> None:
    result = await registry.call("weather", "{}", context())

    assert result.is_error
    assert result.content == "unknown tool 'weather'; available: forecast, add_numbers, boom"


async def test_raising_tool_is_an_error_result_and_a_warning(
    registry: ToolRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.tools.registry"):
        result = await registry.call("boom", "{}", context())

    assert result == ToolResult("tool 'boom' failed: RuntimeError: kaboom", is_error=True)
    [record] = [r for r in caplog.records if r.name == "bot.tools.registry"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is not None


async def test_tool_error_message_goes_to_the_model_as_is() -> None:
    reg = ToolRegistry()

    @reg.tool
    def strict(x: int) -> str:
        """Refuses odd numbers."""
        raise ToolError(f"{x} is odd; send an even number")

    assert await reg.call("strict", '{"x": 3}', context()) == ToolResult(
        "3 is odd; send an even number", is_error=True
    )


async def test_hung_tool_times_out_but_its_own_timeout_error_is_a_failure() -> None:
    reg = ToolRegistry(timeout=0.05)

    @reg.tool
    async def hang() -> str:
        """Never answers."""
        await asyncio.sleep(30)
        return "late"

    @reg.tool
    async def upstream() -> str:
        """Its own call times out."""
        raise TimeoutError("upstream API")

    assert await reg.call("hang", "{}", context()) == ToolResult(
        "tool 'hang' timed out after 0.05s", is_error=True
    )
    result = await reg.call("upstream", "{}", context())
    assert result.content == "tool 'upstream' failed: TimeoutError: upstream API"


async def test_long_results_are_truncated_with_a_note() -> None:
    reg = ToolRegistry(max_result_chars=100)

    @reg.tool
    def dump() -> str:
        """A lot of text."""
        return "x" * 1000

    @reg.tool
    def short() -> str:
        """A little text."""
        return "y" * 100

    result = await reg.call("dump", "{}", context())
    assert result.content.startswith("x" * 100 + "\n")
    assert "truncated" in result.content
    assert "1000" in result.content
    assert len(result.content) < 200
    assert (await reg.call("short", "{}", context())).content == "y" * 100


def test_schemas_are_built_once_and_handed_out_as_copies() -> None:
    registry = default_tools()
    first = registry.schemas()
    first[0]["function"]["parameters"]["properties"].clear()  # a caller changing its copy
    again = registry.schemas()
    assert again != first and again[0]["function"]["parameters"]["properties"]
    assert again == default_tools().schemas()
