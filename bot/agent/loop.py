"""The reply agent: runs the tool loop (model rounds, tool calls) over a conversation and
records every segment (thinking, tool calls, tool results, the answer) as it goes.

It knows nothing of Discord: it yields events that a presenter (the conversation cog)
turns into streamed messages, and it reads and writes only through the memory manager.
The context it sends is built by ``bot.agent.context``; the rolling summary and the recalled
notes are kept by ``bot.agent.summaries`` and ``bot.agent.notes``, in the per-thread state
of ``bot.agent.state``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from bot.agent.bounds import STOP_NOTES, CutReason, ReplyClock, ReplyCut, Stopped, bounded
from bot.agent.context import ContextWindow, Turn, build_context, recorded_params
from bot.agent.events import (
    AgentEvent,
    Failure,
    Final,
    RoundStart,
    TextDelta,
    TextRetracted,
    ThinkingDelta,
    ToolUse,
)
from bot.agent.notes import RecalledNotes
from bot.agent.state import ThreadStates
from bot.agent.summaries import RollingSummaries
from bot.llm import (
    ChatProvider,
    ContentDelta,
    ContentRetracted,
    Finish,
    LLMError,
    ReasoningDelta,
    ToolCallRequest,
)
from bot.tools import ToolContext, ToolRegistry
from memory import Conversation, InMemoryConversationManager, Message, MessageType
from memory.recall.service import RecallService

log = logging.getLogger(__name__)

__all__ = ["CUT_NOTE", "Agent"]

FALLBACK_FAILURE = "Sorry, something went wrong on my side. Please try again."
RECORD_FAILURE = "Sorry, I couldn't save this conversation just now, so I'm not answering yet."
EMPTY_ANSWER = "The model came back with an empty answer. Please try rephrasing."
TOOLS_FAILURE = "I couldn't finish looking things up for this one. Please try rephrasing it."
# finish_reason "length": the server stopped the answer at its token limit.
CUT_NOTE = "*(The answer was cut off here: the model reached its length limit.)*"
CUT_WHILE_THINKING = (
    "The model ran out of room while still thinking. Please try again, or ask for less at once."
)


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
        self.notes = RecalledNotes(
            manager, recall, self.states, max_context_tokens=max_context_tokens
        )
        self.summaries = RollingSummaries(
            manager, provider, self.states, max_context_tokens=max_context_tokens
        )

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
            await clock.within(self.notes.remember(conversation))
            await self.summaries.fold(conversation, names, self.context, clock)
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
                tools=[
                    {"id": c.id, "name": c.name, "params": recorded_params(c.arguments)}
                    for c in calls
                ],
                meta=_turn_meta(turn),
            ),
        )
        context = ToolContext(conversation=conversation, recall=self.notes.searcher(conversation))
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

    # --- the context and summaries ------------------------------------------------------------

    def context(
        self, conversation: Conversation, names: Mapping[str, str], turn: Turn | None = None
    ) -> ContextWindow:
        """System prompt + summary + the newest history that fits the token budget."""
        state = self.states.get(conversation.thread_id)
        return build_context(
            self.system_prompt,
            conversation,
            names,
            notes=state.notes if state is not None else None,
            max_context_tokens=self.max_context_tokens,
            turn=turn,
        )

    async def summarize(self, conversation: Conversation, names: Mapping[str, str]) -> str:
        """A summary of the whole conversation: the model's, or an extractive one offline."""
        return await self.summaries.summarize(conversation, names)


def _newest_human_id(history: Sequence[Message]) -> str | None:
    for message in reversed(history):
        if message.requester is not None:
            return message.message_id
    return None


def _turn_meta(turn: Turn) -> dict[str, Any]:
    return {"reply_to": turn.reply_to} if turn.reply_to else {}
