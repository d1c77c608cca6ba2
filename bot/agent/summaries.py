"""Rolling summaries: what falls out of the context window is folded into the conversation's
summary, so a long conversation keeps its earlier part in a few sentences beside the recent
messages; and the summary of a whole conversation, on request.

The model writes them; offline, or when it fails, an extractive summary stands in. Which
messages were already folded is per-thread state, kept in the thread's ``ThreadState``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.agent.bounds import ReplyClock
from bot.agent.context import SUMMARY_LIMIT, ContextWindow, speaker, summary_chars, tail
from bot.agent.state import ThreadStates
from bot.llm import ChatProvider, LLMError
from memory import Conversation, InMemoryConversationManager, Message, MessageType
from memory.longterm.summarizer import extractive_summary

log = logging.getLogger(__name__)

__all__ = ["ECHO_NAME", "RollingSummaries", "WindowOf"]

# At most this many folds per reply: each may take a model call.
FOLD_PASSES = 3
ECHO_NAME = "Echo"

WindowOf = Callable[[Conversation, Mapping[str, str]], ContextWindow]
"""The context a conversation would be given now (what did not fit is what gets folded)."""


class RollingSummaries:
    """Writes the summaries of one agent's conversations, through its manager and model."""

    def __init__(
        self,
        manager: InMemoryConversationManager,
        provider: ChatProvider,
        states: ThreadStates,
        *,
        max_context_tokens: int,
    ) -> None:
        self.manager = manager
        self.provider = provider
        self.states = states
        self.max_context_tokens = max_context_tokens

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

    async def fold(
        self,
        conversation: Conversation,
        names: Mapping[str, str],
        window: WindowOf,
        clock: ReplyClock | None = None,
    ) -> None:
        """Fold what fell out of the context window into the rolling summary.

        A longer summary leaves less room for history in the window, which can push more
        messages out: folding repeats (a few passes at most) until none is left out unfolded.
        """
        thread_id = conversation.thread_id
        state = self.states.of(conversation)
        for _ in range(FOLD_PASSES):
            dropped = window(conversation, names).dropped
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
        return summary_chars(self.max_context_tokens)


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


def _transcript(history: Sequence[Message], names: Mapping[str, str], *, limit: int) -> str:
    lines: list[str] = []
    for message in history:
        if message.message_type is MessageType.CHAT:
            who = ECHO_NAME if message.requester is None else speaker(message, names)
            lines.append(f"{who}: {message.message_content}")
        elif message.message_type is MessageType.TOOL_CALL_RESPONSE:
            lines.append(f"(tool {message.name or ''} returned: {message.message_content[:500]})")
    text = "\n".join(lines)
    # Keep the end: the newest part matters most and a prompt must stay within the window.
    return text if len(text) <= limit else "…" + text[-limit:]


def _join_summary(summary: str, addition: str, limit: int = SUMMARY_LIMIT) -> str:
    text = f"{summary}\n{addition}".strip() if summary else addition
    return tail(text, limit)
