"""The reply agent: builds the model's context from a conversation, runs the tool loop,
and records every segment (thinking, tool calls, tool results, the answer) as it goes.

It knows nothing of Discord: it yields events that a presenter (the conversation cog)
turns into streamed messages, and it reads and writes only through the memory manager.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.agent.bounds import STOP_NOTES, CutReason, ReplyClock, ReplyCut, Stopped, bounded
from bot.agent.state import ThreadStates
from bot.discord.attachments import attachment_notes
from bot.llm import (
    ChatProvider,
    ContentDelta,
    ContentRetracted,
    Finish,
    LLMError,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.tools.registry import ToolContext, ToolRegistry
from memory import Conversation, InMemoryConversationManager, Message, MessageType, StoreError
from memory.longterm.summarizer import extractive_summary
from memory.recall.service import RecallService

log = logging.getLogger(__name__)

__all__ = [
    "Agent",
    "AgentEvent",
    "ContextWindow",
    "Failure",
    "Final",
    "RoundStart",
    "TextDelta",
    "TextRetracted",
    "ThinkingDelta",
    "ToolUse",
    "estimate_tokens",
]

FALLBACK_FAILURE = "Sorry, something went wrong on my side. Please try again."
RECORD_FAILURE = "Sorry, I couldn't save this conversation just now, so I'm not answering yet."
EMPTY_ANSWER = "The model came back with an empty answer. Please try rephrasing."
TOOLS_FAILURE = "I couldn't finish looking things up for this one. Please try rephrasing it."
# finish_reason "length": the server stopped the answer at its token limit.
CUT_NOTE = "*(The answer was cut off here: the model reached its length limit.)*"
CUT_WHILE_THINKING = (
    "The model ran out of room while still thinking. Please try again, or ask for less at once."
)
# The share of the context budget kept free for the model's answer.
ANSWER_RESERVE = 0.25
# At most this many folds per reply: each may take a model call.
FOLD_PASSES = 3
# The rolling summary's share of the history budget at most (its newest part is kept), so
# that however long a conversation grows, the recent messages still fit beside it.
SUMMARY_SHARE = 0.3
SUMMARY_LIMIT = 3000
ECHO_NAME = "Echo"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True, slots=True)
class TextRetracted:
    """The text shown so far this round was the model's reasoning (it follows as
    ``ThinkingDelta``): stop showing it as the answer."""


@dataclass(frozen=True, slots=True)
class RoundStart:
    """A new model round begins (after tool calls): text shown so far was commentary."""

    number: int


@dataclass(frozen=True, slots=True)
class ToolUse:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Final:
    text: str
    thinking: str


@dataclass(frozen=True, slots=True)
class Failure:
    """One short, friendly line for the people in the thread; the cause went to the log."""

    user_message: str


AgentEvent = TextDelta | TextRetracted | ThinkingDelta | RoundStart | ToolUse | Final | Failure


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


class Agent:
    """Answers in one conversation at a time; the caller serialises replies per thread."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        provider: ChatProvider,
        tools: ToolRegistry,
        *,
        system_prompt: str,
        max_context_tokens: int = 8000,
        max_tool_rounds: int = 4,
        recall: RecallService | None = None,
        max_reply_seconds: float = 180.0,
        max_reply_chars: int = 12000,
    ) -> None:
        self.manager = manager
        self.provider = provider
        self.tools = tools
        self.system_prompt = system_prompt
        self.max_context_tokens = max_context_tokens
        self.max_tool_rounds = max_tool_rounds
        self.recall = recall
        self.max_reply_seconds = max_reply_seconds
        self.max_reply_chars = max_reply_chars
        # What the agent keeps per thread (recalled notes, what was folded into the summary),
        # dropped with the conversation and after a forget in its guild.
        self.states = ThreadStates(manager)

    # --- answering ----------------------------------------------------------------------------

    async def respond(
        self, thread_id: str, names: Mapping[str, str] | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Answer the conversation's latest messages, recording every segment."""
        names = names or {}
        conversation = await self.manager.get_or_resume(thread_id)
        if conversation is None:
            log.error("asked to answer thread %s, which has no conversation", thread_id)
            yield Failure(FALLBACK_FAILURE)
            return
        clock = ReplyClock(self.max_reply_seconds, self.max_reply_chars)
        try:
            await clock.within(self._remember(conversation))
            await self._fold_old_messages(conversation, names, clock)
            async for event in self._rounds(conversation, names, clock):
                yield event
        except ReplyCut as cut:
            # Past a bound outside a model's answer (recalling, folding, a tool): nothing new
            # was shown, so there is nothing to record; the thread is told in one line.
            log.warning(
                "thread %s: reply stopped before an answer (%s bound)", thread_id, cut.reason
            )
            yield Failure(STOP_NOTES[cut.reason])
        except LLMError as exc:
            log.warning("model call failed in thread %s (%s): %s", thread_id, exc.kind, exc)
            yield Failure(exc.user_message)
        except OSError as exc:  # JournalError / disk trouble while recording
            log.error("could not record in thread %s: %s", thread_id, exc)
            yield Failure(RECORD_FAILURE)
        except Exception:
            log.exception("the reply in thread %s failed", thread_id)
            yield Failure(FALLBACK_FAILURE)

    async def _rounds(
        self, conversation: Conversation, names: Mapping[str, str], clock: ReplyClock
    ) -> AsyncIterator[AgentEvent]:
        thread_id = conversation.thread_id
        turn = Turn(len(conversation.history), _newest_human_id(conversation.history))
        tool_errors: list[str] = []
        for number in range(self.max_tool_rounds + 1):
            if number:
                yield RoundStart(number)
            may_use_tools = number < self.max_tool_rounds and bool(self.tools.names())
            window = self.context(conversation, names, turn)
            content: list[str] = []
            reasoning: list[str] = []
            calls: list[ToolCallRequest] = []
            cut = False
            stopped: CutReason | None = None
            stream = bounded(
                self.provider.stream_chat(
                    window.messages, tools=self.tools.schemas() if may_use_tools else None
                ),
                clock,
            )
            # aclosing: a reply cancelled mid-stream (shutdown) closes the HTTP stream now.
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if isinstance(event, ContentDelta):
                        content.append(event.text)
                        yield TextDelta(event.text)
                    elif isinstance(event, ReasoningDelta):
                        reasoning.append(event.text)
                        yield ThinkingDelta(event.text)
                    elif isinstance(event, ToolCallRequest):
                        calls.append(event)
                    elif isinstance(event, ContentRetracted):
                        content.clear()
                        yield TextRetracted()
                    elif isinstance(event, Finish):
                        cut = event.cut
                    elif isinstance(event, Stopped):
                        stopped = event.reason
            text = "".join(content).strip()
            thinking = "".join(reasoning).strip()
            if thinking:
                await self._record(thread_id, MessageType.THINKING, thinking, turn)
            if stopped is not None:
                yield await self._stop(thread_id, text, thinking, turn, stopped)
                return
            if calls and may_use_tools:
                yield ToolUse(tuple(c.name for c in calls))
                tool_errors = await self._run_tools(conversation, calls, text, turn, clock)
                continue
            if calls and not text:
                # Told the tools were done (none offered), the model still only calls them:
                # say why in one line, with what its last tool calls got wrong, if anything.
                log.warning(
                    "thread %s: no answer after %d tool round(s): the model still asked for %s%s",
                    thread_id,
                    self.max_tool_rounds,
                    ", ".join(dict.fromkeys(c.name for c in calls)),
                    f"; last tool errors: {'; '.join(tool_errors)}" if tool_errors else "",
                )
                yield Failure(TOOLS_FAILURE)
                return
            if calls:
                log.warning(
                    "thread %s: the model asked for tools after the last tool round; ignored",
                    thread_id,
                )
            if not text:
                log.warning("thread %s: the model gave an empty answer (cut=%s)", thread_id, cut)
                yield Failure(CUT_WHILE_THINKING if cut else EMPTY_ANSWER)
                return
            if cut:
                # The record keeps the model's words and says they were cut; the people
                # in the thread are told with one line under the answer.
                log.warning("thread %s: the answer was cut at the model's length limit", thread_id)
                await self.manager.add_message_to_conversation(
                    thread_id,
                    Message(
                        message_type=MessageType.CHAT,
                        message_content=text,
                        meta={**_turn_meta(turn), "cut": "length"},
                    ),
                )
                yield Final(f"{text}\n\n{CUT_NOTE}", thinking)
                return
            await self._record(thread_id, MessageType.CHAT, text, turn)
            yield Final(text, thinking)
            return

    async def _run_tools(
        self,
        conversation: Conversation,
        calls: Sequence[ToolCallRequest],
        commentary: str,
        turn: Turn,
        clock: ReplyClock,
    ) -> list[str]:
        """Run and record the calls; returns the errors they gave (``"tool: error"``)."""
        thread_id = conversation.thread_id
        errors: list[str] = []
        await self.manager.add_message_to_conversation(
            thread_id,
            Message(
                message_type=MessageType.TOOL_CALL,
                message_content=commentary,
                tools=[{"id": c.id, "name": c.name, "params": _params(c.arguments)} for c in calls],
                meta=_turn_meta(turn),
            ),
        )
        context = ToolContext(conversation=conversation, recall=self._searcher(conversation))
        for call in calls:
            result = await clock.within(self.tools.call(call.name, call.arguments, context))
            if result.is_error:
                log.info(
                    "thread %s: tool %s gave an error: %s", thread_id, call.name, result.content
                )
                errors.append(f"{call.name}: {result.content}")
            await self.manager.add_message_to_conversation(
                thread_id,
                Message(
                    message_type=MessageType.TOOL_CALL_RESPONSE,
                    message_content=result.content,
                    tool_call_id=call.id,
                    name=call.name,
                    meta=_turn_meta(turn),
                ),
            )
        return errors

    async def _stop(
        self, thread_id: str, text: str, thinking: str, turn: Turn, reason: CutReason
    ) -> Final | Failure:
        """Past the reply's time or length bound: what was shown is the answer, recorded as
        cut, with one line under it saying Echo stopped."""
        log.warning(
            "thread %s: reply stopped at its %s bound (ECHO_MAX_REPLY_%s), %d characters shown",
            thread_id,
            reason,
            "SECONDS" if reason == "time" else "CHARS",
            len(text),
        )
        if not text:
            return Failure(STOP_NOTES[reason])
        await self.manager.add_message_to_conversation(
            thread_id,
            Message(
                message_type=MessageType.CHAT,
                message_content=text,
                meta={**_turn_meta(turn), "cut": reason},
            ),
        )
        return Final(f"{text}\n\n{STOP_NOTES[reason]}", thinking)

    async def _record(self, thread_id: str, kind: MessageType, text: str, turn: Turn) -> None:
        await self.manager.add_message_to_conversation(
            thread_id, Message(message_type=kind, message_content=text, meta=_turn_meta(turn))
        )

    # --- long-term memory ---------------------------------------------------------------------

    def _searcher(self, conversation: Conversation) -> Any:
        """A search bound to this conversation's guild: a tool can never reach another."""
        recall = self.recall
        if recall is None:
            return None
        guild_id = conversation.guild_id

        async def search(query: str, limit: int) -> list[Any]:
            return await recall.search(guild_id, query, limit)

        return search

    async def _remember(self, conversation: Conversation) -> None:
        """When a conversation starts, find the guild's memories worth having in context."""
        thread_id = conversation.thread_id
        state = self.states.of(conversation)
        if self.recall is None or state.notes is not None:
            return
        state.notes = ""
        question = next(
            (m.message_content for m in reversed(conversation.history) if m.requester), ""
        )
        try:
            hits = await self.recall.search(conversation.guild_id, question, 4) if question else []
            records = await self.manager.store.list_memories(conversation.guild_id)
        except StoreError as exc:  # the store is away: answer without memories, one line
            log.warning("thread %s: answering without memories: %s", thread_id, exc)
            return
        except Exception:
            log.exception("recalling memories for thread %s failed", thread_id)
            return
        by_thread = {r.thread_id: r for r in records}
        chosen = [h.thread_id for h in hits if h.thread_id != thread_id][:3]
        theirs = sorted(
            (
                r
                for r in records
                if conversation.requester in r.participants and r.thread_id != thread_id
            ),
            key=lambda r: r.conversation_created_at or r.created_at,
            reverse=True,
        )
        chosen += [r.thread_id for r in theirs[:2] if r.thread_id not in chosen]
        budget = self.max_context_tokens * 4 // 8  # an eighth of the window, in characters
        lines: list[str] = []
        for other in chosen:
            record = by_thread.get(other)
            hit = next((h for h in hits if h.thread_id == other), None)
            line = _memory_line(record, hit)
            if line and sum(len(x) for x in lines) + len(line) <= budget:
                lines.append(line)
        state.notes = "\n".join(lines)
        if lines:
            log.info("thread %s: %d memories of this server put in context", thread_id, len(lines))

    # --- the context --------------------------------------------------------------------------

    def context(
        self, conversation: Conversation, names: Mapping[str, str], turn: Turn | None = None
    ) -> ContextWindow:
        """System prompt + summary + the newest history that fits the token budget."""
        system = self.system_prompt
        state = self.states.get(conversation.thread_id)
        notes = state.notes if state is not None else None
        if notes:
            system += (
                "\n\nMemories of earlier conversations in this server (use them when they are "
                "relevant, and say that you remember):\n" + notes
            )
        summary = _tail(conversation.summary, self._summary_chars())
        if summary:
            system += "\n\nSummary of the earlier part of this conversation:\n" + summary
        budget = int(self.max_context_tokens * (1 - ANSWER_RESERVE)) - estimate_tokens(system)
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

    # --- summaries ----------------------------------------------------------------------------

    async def summarize(self, conversation: Conversation, names: Mapping[str, str]) -> str:
        """A summary of the whole conversation: the model's, or an extractive one offline."""
        history = conversation.history
        if self.provider.offline:
            return extractive_summary(history, names, echo_name=ECHO_NAME)
        transcript = _transcript(history, names, limit=self.max_context_tokens * 3)
        prompt = [
            {
                "role": "system",
                "content": "You summarise Discord conversations. Write a concise summary "
                "(at most 8 sentences) of what was discussed, decided and left open. Name "
                "people as they appear in the transcript. Answer with the summary only.",
            },
            {
                "role": "user",
                "content": (
                    f"Earlier summary:\n{conversation.summary}\n\n" if conversation.summary else ""
                )
                + f"Transcript:\n{transcript}",
            },
        ]
        try:
            text = (await self.provider.complete(prompt)).strip()
        except LLMError as exc:
            log.warning("summary by the model failed (%s); using an extractive one", exc)
            text = ""
        return text or extractive_summary(history, names, echo_name=ECHO_NAME)

    async def _fold_old_messages(
        self, conversation: Conversation, names: Mapping[str, str], clock: ReplyClock | None = None
    ) -> None:
        """Fold what fell out of the context window into the rolling summary.

        A longer summary leaves less room for history in the window, which can push more
        messages out: folding repeats (a few passes at most) until none is left out unfolded.
        """
        thread_id = conversation.thread_id
        state = self.states.of(conversation)
        for _ in range(FOLD_PASSES):
            dropped = self.context(conversation, names).dropped
            if not dropped:
                return
            if state.folded is None and conversation.summary:
                state.folded = {_fold_key(m) for m in dropped}
                return
            folded = state.folded if state.folded is not None else set()
            fresh = [m for m in dropped if _fold_key(m) not in folded]
            if not any(m.message_type is MessageType.CHAT for m in fresh):
                return
            if self.provider.offline:
                # The telling sentences of everything outside the window, picked afresh each
                # time: appending and cutting would forget the oldest first, however telling.
                summary = extractive_summary(
                    dropped, names, max_chars=self._summary_chars(), echo_name=ECHO_NAME
                )
            else:
                # Only the model's part is bounded: a summary being recorded is never cut.
                fold = self._model_fold(conversation.summary, fresh, names)
                summary = await (fold if clock is None else clock.within(fold))
            if not self.states.is_current(thread_id, state):
                # A forget (or an eviction) came while the model was folding: what it wrote
                # may quote what was forgotten, and the next reply folds afresh anyway.
                log.info("thread %s: state dropped during a fold; fold discarded", thread_id)
                return
            folded.update(_fold_key(m) for m in fresh)
            state.folded = folded
            if not summary or summary == conversation.summary:
                return
            await self.manager.set_summary(thread_id, summary)
            log.info("thread %s: folded %d older messages into the summary", thread_id, len(fresh))

    async def _model_fold(
        self, summary: str, fresh: Sequence[Message], names: Mapping[str, str]
    ) -> str:
        transcript = _transcript(fresh, names, limit=self.max_context_tokens * 2)
        prompt = [
            {
                "role": "system",
                "content": "You maintain the running summary of a long Discord conversation. "
                "Merge the new messages into the summary: keep every fact, decision, name and "
                "open question; drop small talk. At most 12 sentences and "
                f"{self._summary_chars()} characters. Answer with the summary only.",
            },
            {
                "role": "user",
                "content": f"Summary so far:\n{summary or '(none)'}\n\nNew messages:\n{transcript}",
            },
        ]
        try:
            return (await self.provider.complete(prompt)).strip() or summary
        except LLMError as exc:
            log.warning("rolling summary by the model failed (%s); folding extractively", exc)
            limit = self._summary_chars()
            addition = extractive_summary(
                fresh, names, max_chars=min(600, limit), echo_name=ECHO_NAME
            )
            return _join_summary(summary, addition, limit)

    def _summary_chars(self) -> int:
        """How much of the rolling summary goes into the context (and is kept, offline)."""
        tokens = self.max_context_tokens * (1 - ANSWER_RESERVE) * SUMMARY_SHARE
        return min(SUMMARY_LIMIT, max(400, int(tokens) * 4))


def _fold_key(message: Message) -> tuple[Any, ...]:
    """What identifies a recorded message for folding (an edited one counts as new).

    The content by its hash: the state lives in this process only, and should hold no text.
    """
    return (
        message.message_type,
        message.message_id,
        message.created_at,
        hash(message.message_content),
    )


def _memory_line(record: Any, hit: Any) -> str:
    """One memory as the model reads it: when, what, and the facts that matter."""
    if record is not None:
        when = (record.conversation_created_at or record.created_at).strftime("%Y-%m-%d")
        data = record.memory_data
        text = " ".join(data.summary.split())[:500]
        facts = "; ".join(f.text for f in data.facts[:4])
        return f"- conversation of {when}: {text}" + (f" Facts: {facts[:400]}" if facts else "")
    if hit is not None:
        text = " ".join((hit.summary or hit.snippet or "").split())[:400]
        return f"- conversation of {(hit.created_at or '')[:10]}: {text}" if text else ""
    return ""


def _newest_human_id(history: Sequence[Message]) -> str | None:
    for message in reversed(history):
        if message.requester is not None:
            return message.message_id
    return None


def _turn_meta(turn: Turn) -> dict[str, Any]:
    return {"reply_to": turn.reply_to} if turn.reply_to else {}


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
            speaker = _speaker(message, names)
            text = f"[{speaker}] {message.message_content}"
            attachments = (message.meta.model_extra or {}).get("attachments")
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


def _speaker(message: Message, names: Mapping[str, str]) -> str:
    requester = message.requester or ""
    return names.get(requester) or message.author_name or f"user {requester}"


def _transcript(history: Sequence[Message], names: Mapping[str, str], *, limit: int) -> str:
    lines: list[str] = []
    for message in history:
        if message.message_type is MessageType.CHAT:
            who = ECHO_NAME if message.requester is None else _speaker(message, names)
            lines.append(f"{who}: {message.message_content}")
        elif message.message_type is MessageType.TOOL_CALL_RESPONSE:
            lines.append(
                f"(tool {message.meta.name or ''} returned: {message.message_content[:500]})"
            )
    text = "\n".join(lines)
    # Keep the end: the newest part matters most and a prompt must stay within the window.
    return text if len(text) <= limit else "…" + text[-limit:]


def _join_summary(summary: str, addition: str, limit: int = SUMMARY_LIMIT) -> str:
    text = f"{summary}\n{addition}".strip() if summary else addition
    return _tail(text, limit)


def _tail(text: str, limit: int) -> str:
    """The end of ``text`` in at most ``limit`` characters: a summary's newest part."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _params(arguments: str) -> dict[str, Any]:
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
