"""The messages the model reads, built from a conversation: pure functions, no I/O, no state.

The system prompt (with the recalled notes and the rolling summary) comes first, then the
newest history that fits the token budget; a tool call travels with its results, and what
did not fit is returned so it can be folded into the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.discord.attachments import attachment_notes
from memory import Conversation, Message, MessageType

__all__ = [
    "ANSWER_RESERVE",
    "SUMMARY_LIMIT",
    "ContextWindow",
    "Turn",
    "build_context",
    "estimate_tokens",
    "recorded_params",
    "speaker",
    "summary_chars",
    "tail",
]

# The share of the context budget kept free for the model's answer.
ANSWER_RESERVE = 0.25
# The rolling summary's share of the history budget at most (its newest part is kept), so
# that however long a conversation grows, the recent messages still fit beside it.
SUMMARY_SHARE = 0.3
SUMMARY_LIMIT = 3000


def estimate_tokens(text: str) -> int:
    """About four characters a token, as OpenAI's guidance says for English; no tokenizer."""
    return len(text) // 4 + 4


@dataclass
class ContextWindow:
    """The messages sent to the model, and the history that did not fit (oldest first)."""

    messages: list[dict[str, Any]]
    dropped: list[Message]
    tokens: int


@dataclass(frozen=True, slots=True)
class Turn:
    """One reply in the making.

    ``cutoff`` is the history length when it started: people's messages from then on wait
    for the next reply. ``reply_to`` is the Discord id of the newest message it answers;
    every entry the reply records carries it (``meta.reply_to``), so a later context can put
    the reply right after what it answered even when people kept writing meanwhile.
    """

    cutoff: int
    reply_to: str | None


@dataclass
class _Unit:
    """History entries that must travel together (a tool call and its results)."""

    start: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0


def summary_chars(max_context_tokens: int) -> int:
    """How much of the rolling summary goes into the context (and is kept, offline)."""
    tokens = max_context_tokens * (1 - ANSWER_RESERVE) * SUMMARY_SHARE
    return min(SUMMARY_LIMIT, max(400, int(tokens) * 4))


def build_context(
    system_prompt: str,
    conversation: Conversation,
    names: Mapping[str, str],
    *,
    notes: str | None,
    max_context_tokens: int,
    turn: Turn | None = None,
) -> ContextWindow:
    """System prompt + summary + the newest history that fits the token budget."""
    system = system_prompt
    if notes:
        system += (
            "\n\nMemories of earlier conversations in this server (use them when they are "
            "relevant, and say that you remember):\n" + notes
        )
    summary = tail(conversation.summary, summary_chars(max_context_tokens))
    if summary:
        system += "\n\nSummary of the earlier part of this conversation:\n" + summary
    budget = int(max_context_tokens * (1 - ANSWER_RESERVE)) - estimate_tokens(system)
    ordered = _ordered(conversation.history, turn)
    units = _units(ordered, names)
    # The message being answered and all after it (this reply's tool rounds) always go,
    # shortened if need be: a long tool result must not push the question out.
    start = _last_user_unit(units)
    chosen = units[start:]
    _fit(chosen, budget)
    used = sum(unit.tokens for unit in chosen)
    for unit in reversed(units[:start]):
        if used + unit.tokens > budget:
            break
        chosen.insert(0, unit)
        used += unit.tokens
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for unit in chosen:
        messages.extend(unit.messages)
    first = chosen[0].start if chosen else len(ordered)
    return ContextWindow(messages, ordered[:first], used + estimate_tokens(system))


def speaker(message: Message, names: Mapping[str, str]) -> str:
    requester = message.requester or ""
    return names.get(requester) or message.author_name or f"user {requester}"


def tail(text: str, limit: int) -> str:
    """The end of ``text`` in at most ``limit`` characters: a summary's newest part."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def recorded_params(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as recorded (``ToolCall.params``); the inverse of what the
    context sends back for it."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    # A malformed call is recorded as the model sent it, so it can be replayed faithfully.
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def _arguments(params: Mapping[str, Any]) -> str:
    if set(params) == {"_raw_arguments"}:
        return str(params["_raw_arguments"])
    return json.dumps(params, ensure_ascii=False)


def _ordered(history: Sequence[Message], turn: Turn | None) -> list[Message]:
    """The history as the model should read it.

    Each reply of Echo's goes right after the message it answered (its ``reply_to``), even
    if people wrote more while it was being written; during a reply, people's messages newer
    than its start are left for the next reply.
    """
    human_ids = {m.message_id for m in history if m.requester is not None and m.message_id}
    replies: dict[str, list[Message]] = {}
    placed: list[Message] = []
    for index, message in enumerate(history):
        if message.requester is None:
            target = message.reply_to
            if target in human_ids:
                replies.setdefault(target, []).append(message)  # type: ignore[arg-type]
                continue
        elif turn is not None and index >= turn.cutoff:
            continue
        placed.append(message)
    ordered: list[Message] = []
    for message in placed:
        ordered.append(message)
        if message.requester is not None and message.message_id in replies:
            ordered.extend(replies.pop(message.message_id))  # type: ignore[arg-type]
    for rest in replies.values():  # answers to messages left out above
        ordered.extend(rest)
    return ordered


def _units(history: Sequence[Message], names: Mapping[str, str]) -> list[_Unit]:
    """History as model messages, grouped so a tool call never loses its results."""
    units: list[_Unit] = []
    open_call: _Unit | None = None
    pending_ids: set[str] = set()
    for index, message in enumerate(history):
        kind = message.message_type
        if kind is MessageType.THINKING:
            continue  # kept on disk, never sent back
        if kind is MessageType.TOOL_CALL_RESPONSE:
            if open_call is not None and message.tool_call_id in pending_ids:
                entry = {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": message.message_content,
                }
                open_call.messages.append(entry)
                open_call.tokens += estimate_tokens(message.message_content)
                pending_ids.discard(message.tool_call_id)
                if not pending_ids:
                    units.append(open_call)
                    open_call = None
            continue  # a result whose call is not in the history is dropped
        # Any other entry closes an incomplete tool call (a crash mid-tool): drop it, as
        # the API rejects a call without its results.
        open_call, pending_ids = None, set()
        if kind is MessageType.TOOL_CALL:
            calls = message.tools or []
            if not calls:
                continue
            open_call = _Unit(index)
            open_call.messages.append(
                {
                    "role": "assistant",
                    "content": message.message_content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": _arguments(c.params)},
                        }
                        for c in calls
                    ],
                }
            )
            open_call.tokens = estimate_tokens(json.dumps(open_call.messages[0]))
            pending_ids = {c.id for c in calls}
            continue
        if message.requester is None:
            entry = {"role": "assistant", "content": message.message_content}
        else:
            who = speaker(message, names)
            text = f"[{who}] {message.message_content}"
            attachments = (message.other_meta or {}).get("attachments")
            if isinstance(attachments, list) and attachments:
                text += "\n" + attachment_notes(attachments)
            entry = {"role": "user", "content": text}
        units.append(_Unit(index, [entry], estimate_tokens(entry["content"])))
    return units


def _last_user_unit(units: Sequence[_Unit]) -> int:
    """Where the newest person's message is (the last unit if there is none)."""
    for index in range(len(units) - 1, -1, -1):
        if units[index].messages[0]["role"] == "user":
            return index
    return max(len(units) - 1, 0)


def _unit_tokens(unit: _Unit) -> int:
    return sum(
        estimate_tokens(json.dumps(m) if m.get("tool_calls") else m.get("content") or "")
        for m in unit.messages
    )


def _fit(units: Sequence[_Unit], budget: int) -> None:
    """Shorten the longest texts until ``units`` fit ``budget`` (none below 64 tokens).

    A tool result keeps its beginning (results come best first); anything else keeps its
    end, which is where a long message usually asks its question.
    """
    floor = 64 * 4
    while (total := sum(unit.tokens for unit in units)) > budget:
        candidates = [
            (len(entry["content"]), index, entry, unit)
            for unit in units
            for index, entry in enumerate(unit.messages)
            if isinstance(entry.get("content"), str) and len(entry["content"]) > floor + 1
        ]
        if not candidates:
            return
        size, _, entry, unit = max(candidates, key=lambda c: c[0])
        keep = max(floor, size - (total - budget) * 4 - 1)
        content = entry["content"]
        entry["content"] = (
            content[:keep] + "…" if entry["role"] == "tool" else "…" + content[-keep:]
        )
        unit.tokens = _unit_tokens(unit)
