"""A process that records messages as fast as it can, for the kill -9 tests.

Prints ``ack <thread> <content>`` after each ``add_message_to_conversation`` returns, so the
parent knows exactly which messages were acknowledged before it killed us. Contents are
unique across runs (the run number is part of them), so a duplicate is always visible.

Usage: python recorder.py DATA_DIR FSYNC RUN [SECONDS]
"""

from __future__ import annotations

import asyncio
import random
import sys

from memory import InMemoryConversationManager, JsonFileStore, Message, MessageType

THREADS = [str(1000 + n) for n in range(12)]


async def main(data_dir: str, fsync: str, run: int, seconds: float) -> None:
    rng = random.Random(run)
    out = sys.stdout
    store = JsonFileStore(data_dir, fsync=fsync, journal_segment_bytes=16 * 1024)
    # A short idle time makes saves, evictions and resumes race the kill as well.
    async with InMemoryConversationManager(
        store=store, idle_time=0.03, maintenance_interval=0.1
    ) as manager:
        for n, thread in enumerate(THREADS):
            await manager.create_conversation(
                thread_id=thread, guild_id=str(1 + n % 2), requester="33", channel_id="44"
            )
        print("ready", flush=True)

        async def talk(worker: int) -> None:
            for count in range(1_000_000):
                thread = rng.choice(THREADS)
                content = f"r{run}-w{worker}-{count}"
                kind = rng.choice(list(MessageType))
                message_id = f"{run}{worker}{count:07d}" if kind is MessageType.CHAT else None
                await manager.add_message_to_conversation(
                    thread,
                    Message(message_type=kind, message_content=content, message_id=message_id),
                )
                out.write(f"ack {thread} {content}\n")
                out.flush()
                if rng.random() < 0.05:
                    await asyncio.sleep(rng.choice((0.01, 0.03, 0.05)))

        await asyncio.wait_for(asyncio.gather(*(talk(w) for w in range(4))), seconds)


if __name__ == "__main__":
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), seconds))
