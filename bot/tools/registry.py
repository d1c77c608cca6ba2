"""Functions the model may call, described to it by schemas derived from their signatures.

Writing a tool is writing a typed, documented Python function: the JSON schema the model
sees comes from the signature (pydantic), so it cannot drift from what the function
accepts. Every failure (unknown tool, bad arguments, a tool that raises or hangs) becomes
an error *result* the model reads and can correct, never an exception in the agent.

A tool sees only a ``ToolContext``: the conversation it is answering, nothing of any other
thread or guild.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import logging
import re
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar, overload

import pydantic
from pydantic import BaseModel, ConfigDict

from memory.records.models import Conversation, utcnow

log = logging.getLogger(__name__)

__all__ = [
    "MAX_RESULT_CHARS",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
]

MAX_RESULT_CHARS = 4000
TOOL_TIMEOUT = 30.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ToolContext:
    """What a tool may see: this conversation only (never another guild's data)."""

    conversation: Conversation
    now: Callable[[], datetime] = utcnow
    # Searches this conversation's guild only: (query, limit) -> hits. None when unavailable.
    recall: Callable[[str, int], Awaitable[list[Any]]] | None = None


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model as the ``tool`` message."""

    content: str
    is_error: bool = False


class ToolError(Exception):
    """Raise from a tool to send the model this message as an error, without a traceback.

    For expected failures the model can fix (a bad time zone name), as opposed to bugs.
    """


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    func: Callable[..., Any]
    arguments: type[BaseModel]
    context_param: str | None

    @functools.cached_property
    def _schema(self) -> dict[str, Any]:
        # Built once: pydantic's JSON schema generation is slow, and it was paid on every
        # model request, on the loop, before the request left.
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": _clean_schema(self.arguments.model_json_schema()),
            },
        }

    def schema(self) -> dict[str, Any]:
        """The request's entry for this tool; a copy, so a caller may change it freely."""
        return copy.deepcopy(self._schema)


class ToolRegistry:
    """The tools one agent offers, by name."""

    def __init__(
        self, *, max_result_chars: int = MAX_RESULT_CHARS, timeout: float = TOOL_TIMEOUT
    ) -> None:
        self._tools: dict[str, _Tool] = {}
        self.max_result_chars = max_result_chars
        self.timeout = timeout

    @overload
    def tool(self, func: F, *, name: str | None = None) -> F: ...
    @overload
    def tool(self, func: None = None, *, name: str | None = None) -> Callable[[F], F]: ...

    def tool(self, func: F | None = None, *, name: str | None = None) -> F | Callable[[F], F]:
        """Register ``func`` (async or sync); usable as ``@tool`` or ``@tool(name=...)``.

        Raises ``TypeError`` at registration for what the model could not be told about:
        a missing docstring or type hint, ``*args``/``**kwargs``.
        """

        def register(f: F) -> F:
            entry = _build_tool(f, name or f.__name__)
            if entry.name in self._tools:
                raise ValueError(f"a tool named {entry.name!r} is already registered")
            self._tools[entry.name] = entry
            return f

        return register(func) if func is not None else register

    def schemas(self) -> list[dict[str, Any]]:
        """The ``tools`` list of a Chat Completions request."""
        return [t.schema() for t in self._tools.values()]

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    async def call(self, name: str, arguments: str, context: ToolContext) -> ToolResult:
        """Run one call the model made; every failure is an error result, never raised."""
        tool = self._tools.get(name)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return ToolResult(f"unknown tool {name!r}; available: {available}", is_error=True)
        parsed = _parse_arguments(tool, arguments)
        if isinstance(parsed, ToolResult):
            return parsed
        if tool.context_param is not None:
            parsed[tool.context_param] = context
        # Bounds async tools only: a sync tool blocks the loop and must be quick by design.
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                result = tool.func(**parsed)
                if inspect.isawaitable(result):
                    result = await result
                outcome = _as_result(result)
        except ToolError as exc:
            return self._cap(ToolResult(str(exc) or f"tool {name!r} failed", is_error=True))
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                log.warning("tool %r timed out after %gs", name, self.timeout)
                return ToolResult(f"tool {name!r} timed out after {self.timeout:g}s", is_error=True)
            log.warning("tool %r failed", name, exc_info=True)
            return self._cap(
                ToolResult(f"tool {name!r} failed: {type(exc).__name__}: {exc}", is_error=True)
            )
        return self._cap(outcome)

    def _cap(self, result: ToolResult) -> ToolResult:
        """Keep one tool from flooding the model's context window."""
        content, cap = result.content, self.max_result_chars
        if len(content) <= cap:
            return result
        note = f"\n[truncated: showing {cap} of {len(content)} characters]"
        return ToolResult(content[:cap] + note, is_error=result.is_error)


# --- building a tool from a function ---------------------------------------------------------


def _build_tool(func: Callable[..., Any], name: str) -> _Tool:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(
            f"tool name {name!r}: use 1-64 letters, digits, '_' or '-' (OpenAI's rule)"
        )
    description = _description(func)
    if not description:
        raise TypeError(f"tool {name!r} needs a docstring: it is all the model knows of it")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except NameError as exc:
        raise TypeError(f"tool {name!r}: cannot resolve a type hint: {exc}") from exc
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"tool {name!r}: *args/**kwargs cannot be described to the model")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool {name!r}: positional-only {param.name!r} (calls pass keywords)")
        if param.name not in hints:
            raise TypeError(f"tool {name!r}: parameter {param.name!r} needs a type hint")
        hint = hints[param.name]
        if _strip_annotated(hint) is ToolContext:
            context_param = param.name
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hint, default)
    model = pydantic.create_model(
        f"{name}_arguments",
        __config__=ConfigDict(extra="forbid", protected_namespaces=()),
        **fields,
    )
    return _Tool(name, description, func, model, context_param)


def _strip_annotated(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def _description(func: Callable[..., Any]) -> str:
    """The docstring's first paragraph, on one line."""
    doc = inspect.getdoc(func) or ""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split())


def _clean_schema(node: Any) -> Any:
    """Drop pydantic's generated ``title``s: tokens that tell the model nothing.

    Only schema keywords are dropped, never a property that happens to be named "title".
    """
    if isinstance(node, list):
        return [_clean_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {k: _clean_schema(v) for k, v in value.items()}
        elif key in ("default", "enum", "const", "examples"):
            out[key] = value
        else:
            out[key] = _clean_schema(value)
    return out


# --- calling ---------------------------------------------------------------------------------


def _parse_arguments(tool: _Tool, arguments: str) -> dict[str, Any] | ToolResult:
    """Validated keyword arguments, or an error result saying what to send instead."""
    text = (arguments or "").strip()
    try:
        # Models often send "" for a tool without parameters.
        raw = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        return ToolResult(
            f"arguments for tool {tool.name!r} are not valid JSON ({exc.msg} at position "
            f"{exc.pos}); send one JSON object, e.g. {_example(tool)}",
            is_error=True,
        )
    if not isinstance(raw, dict):
        return ToolResult(
            f"arguments for tool {tool.name!r} must be a JSON object, not a JSON "
            f"{_json_type(raw)}; e.g. {_example(tool)}",
            is_error=True,
        )
    try:
        validated = tool.arguments.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        return ToolResult(f"invalid arguments for tool {tool.name!r}: {problems}", is_error=True)
    # Attributes, not model_dump(): a nested model argument stays a model.
    return {field: getattr(validated, field) for field in type(validated).model_fields}


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "extra_forbidden":
        return f"{where}: unexpected argument"
    return f"{where}: {error['msg'][:1].lower()}{error['msg'][1:]}"


def _example(tool: _Tool) -> str:
    required = [n for n, f in tool.arguments.model_fields.items() if f.is_required()]
    return json.dumps({n: "..." for n in required})


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _as_result(result: Any) -> ToolResult:
    if isinstance(result, ToolResult):
        return result
    if isinstance(result, str):
        return ToolResult(result)
    if isinstance(result, BaseModel):
        return ToolResult(result.model_dump_json())
    return ToolResult(json.dumps(result, ensure_ascii=False, default=str))
