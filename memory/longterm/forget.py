"""Forgetting a person in one guild: everywhere Echo keeps what they said or what is about them.

- Conversations they started are deleted (file, journal, memory record).
- In other conversations their messages go, with Echo's records answering them.
- Memory facts about them, or made from their messages, go; the memory of every conversation
  they were in is deleted, to be made again from what is left.
- Afterwards every active conversation is saved, so no journal segment keeps their words.

Nothing outside the guild is touched. Files an operator set aside (``*.corrupt``,
``journal/orphaned-*``) are left for the operator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from memory.recording.manager import InMemoryConversationManager
from memory.records.models import validate_snowflake

log = logging.getLogger(__name__)

__all__ = ["ForgetReport", "forget_person"]


@dataclass
class ForgetReport:
    conversations_deleted: list[str] = field(default_factory=list)
    conversations_changed: list[str] = field(default_factory=list)
    messages_removed: int = 0
    memories_removed: int = 0
    facts_removed: int = 0

    def line(self) -> str:
        return (
            f"{len(self.conversations_deleted)} conversation(s) deleted, "
            f"{self.messages_removed} message(s) removed from {len(self.conversations_changed)} "
            f"other conversation(s), {self.memories_removed} memory record(s) and "
            f"{self.facts_removed} fact(s) removed"
        )


async def forget_person(
    manager: InMemoryConversationManager, guild_id: str, user_id: str
) -> ForgetReport:
    guild_id = validate_snowflake(guild_id, "guild_id")
    user_id = validate_snowflake(user_id, "user_id")
    store = manager.store
    report = ForgetReport()
    involved = {
        i.thread_id
        for i in await store.conversation_infos(guild_id)
        if i.requester == user_id or user_id in i.participants
    }
    involved |= {
        c.thread_id
        for c in manager.get_all_conversations()
        if c.guild_id == guild_id and (c.requester == user_id or user_id in c.participants)
    }
    their_messages: set[str] = set()
    for thread_id in sorted(involved):
        conversation = await manager.get_or_resume(thread_id)
        if conversation is None or conversation.guild_id != guild_id:
            continue
        their_messages |= {
            m.message_id for m in conversation.history if m.requester == user_id and m.message_id
        }
        if conversation.requester == user_id:
            await manager.delete_conversation(thread_id)
            report.conversations_deleted.append(thread_id)
        else:
            before = len(conversation.history)
            await manager.forget_person(thread_id, user_id)
            report.messages_removed += before - len(conversation.history)
            report.conversations_changed.append(thread_id)
        if await store.delete_memory(guild_id, thread_id):
            report.memories_removed += 1

    # Facts about them in conversations they were not part of (someone spoke of them).
    for memory in await store.list_memories(guild_id):
        facts = [
            f
            for f in memory.memory_data.facts
            if f.about != user_id and not their_messages.intersection(f.source_message_ids)
        ]
        if len(facts) != len(memory.memory_data.facts):
            report.facts_removed += len(memory.memory_data.facts) - len(facts)
            data = memory.memory_data.model_copy(update={"facts": facts})
            await store.save_memory(memory.model_copy(update={"memory_data": data}))

    # Saving checkpoints every conversation, which lets the journal drop its old segments.
    await manager.save_all_conversations()
    log.info("forgot user %s in guild %s: %s", user_id, guild_id, report.line())
    return report
