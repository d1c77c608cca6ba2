"""Distilling a conversation into a memory with the model: JSON, validated, one retry.

The transcript shows each message's Discord id and its author's id, so the model can say
whom a fact is about and which messages it came from; ids it invents are dropped, because
forgetting a person relies on them. The model sees what people said and what tools
returned: never Echo's thinking, nor Echo's own answers (a memory of what Echo said would be
the model's words remembered as facts).

JSON mode (``response_format: json_object``) is asked for, but not every server has it: LM
Studio answers 400 (``'response_format.type' must be 'json_schema' or 'text'``). A refused
JSON-mode request is asked again without it (the instructions already ask for JSON, and the
reply is validated all the same), and the refusal is remembered for the process.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from typing import Any

from pydantic import ValidationError

from bot.llm import ChatProvider, LLMError
from memory import Conversation, MessageType
from memory.errors import first_line
from memory.records.memories import Fact, MemoryData

log = logging.getLogger(__name__)

__all__ = ["MemoryGenerationError", "ModelDistiller"]

INSTRUCTIONS = """You distil a Discord conversation into a long-term memory.
Answer with one JSON object and nothing else, with exactly these keys:
{"summary": "3-6 sentences: what was discussed, decided and left open, with dates if said",
 "topics": ["short keyword", ...],
 "facts": [{"text": "one self-contained fact", "about": "<user id the fact is about, or null>",
            "source_message_ids": ["<message id>", ...]}, ...],
 "decisions": ["..."], "action_items": ["..."], "open_questions": ["..."]}
Use only what the transcript says. Ids are the digits shown in the transcript."""

_FENCED = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.S)
# Providers whose server refused JSON mode, for the rest of the process (one provider per
# configured model and endpoint).
_NO_JSON_MODE: weakref.WeakSet[ChatProvider] = weakref.WeakSet()


class MemoryGenerationError(Exception):
    """The model did not produce a valid memory, even after being told what was wrong."""


class ModelDistiller:
    """A distiller backed by a chat model (``bot.llm``)."""

    def __init__(self, provider: ChatProvider, *, max_transcript_chars: int = 24_000) -> None:
        self.provider = provider
        self.name = provider.model
        self.max_transcript_chars = max_transcript_chars

    async def distil(self, conversation: Conversation) -> MemoryData:
        messages = [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": self.transcript(conversation)},
        ]
        reply = await self._complete(messages)
        try:
            data = _parse(reply)
        except (ValidationError, ValueError) as first:
            problem = _problem(first)
            log.info(
                "memory of %s: invalid JSON from the model (%s); asking again",
                conversation.thread_id,
                problem,
            )
            messages += [
                {"role": "assistant", "content": reply},
                {
                    "role": "user",
                    "content": f"That is not valid: {problem}. Answer again with only the JSON "
                    "object, exactly as described.",
                },
            ]
            reply = await self._complete(messages)
            try:
                data = _parse(reply)
            except (ValidationError, ValueError) as second:
                raise MemoryGenerationError(
                    f"the model's memory JSON was invalid twice: {_problem(second)}"
                ) from None
        return _clean(data, conversation)

    async def _complete(self, messages: list[dict[str, Any]]) -> str:
        """The model's reply, in JSON mode unless the server is known to refuse it."""
        if self.provider in _NO_JSON_MODE:
            return await self.provider.complete(messages)
        try:
            return await self.provider.complete(messages, json_mode=True)
        except LLMError as exc:
            if exc.kind != "bad_request":
                raise
            refused = exc
        # If this fails too, the request itself was at fault, not JSON mode: its error
        # goes up and nothing is remembered.
        reply = await self.provider.complete(messages)
        _NO_JSON_MODE.add(self.provider)
        log.warning(
            "model %s refused JSON mode (%s); asking for JSON in the instructions only from now on",
            self.name,
            refused,
        )
        return reply

    def transcript(self, conversation: Conversation) -> str:
        lines = [f"Conversation started {conversation.created_at:%Y-%m-%d %H:%M} UTC."]
        for message in conversation.history:
            if message.message_type is MessageType.CHAT and message.requester is not None:
                name = message.author_name or "someone"
                lines.append(
                    f"[message {message.message_id or '-'}] {name} (user {message.requester}), "
                    f"{message.created_at:%Y-%m-%d}: {message.message_content}"
                )
            elif message.message_type is MessageType.TOOL_CALL_RESPONSE:
                lines.append(f"(tool {message.name or ''} returned: {message.message_content})")
        text = "\n".join(lines)
        if len(text) > self.max_transcript_chars:
            text = (
                text[: self.max_transcript_chars // 3]
                + "\n…\n"
                + text[-self.max_transcript_chars * 2 // 3 :]
            )
        return text


def _parse(reply: str) -> MemoryData:
    text = reply.strip()
    fenced = _FENCED.search(text)
    if fenced:
        text = fenced.group(1)
    return MemoryData.model_validate(json.loads(text))


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the object"
        return f"{where}: {first['msg']}"
    return first_line(exc)


def _clean(data: MemoryData, conversation: Conversation) -> MemoryData:
    """Keep only ids that exist in the conversation (people, and what they said)."""
    people = set(conversation.participants)
    said = {
        m.message_id: m.requester
        for m in conversation.history
        if m.message_id is not None and m.requester is not None
    }
    facts: list[Fact] = []
    for fact in data.facts:
        sources = [i for i in fact.source_message_ids if i in said]
        about = fact.about if fact.about in people else None
        facts.append(Fact(text=fact.text, about=about, source_message_ids=sources))
    return data.model_copy(update={"facts": facts})
