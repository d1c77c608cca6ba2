"""What the reply agent keeps per thread lives as long as the conversation in memory, and a
forget in the guild reaches threads already running (issue 14, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.discord_emulator import DiscordEmulator
from tests.fake_llm.server.core import FakeLLM

from .echo_harness import Echo, running_echo
from .test_echo_memory import confirm_id

SECRET = "anaphylaxis"  # only in what Echo learned about alice
HERS = "zebrafish"  # only in alice's own words, and the summary made of them


def request_text(request: object) -> str:
    return json.dumps(request.messages)  # type: ignore[attr-defined]


async def test_a_forget_reaches_a_running_thread_of_the_guild(
    discord_emulator: DiscordEmulator, fake_llm: FakeLLM, tmp_path: Path
) -> None:
    emu = discord_emulator
    settings = {"ECHO_IDLE_SECONDS": "60", "ECHO_MEMORY_INACTIVITY_SECONDS": "0"}
    async with running_echo(emu, tmp_path, llm=fake_llm, **settings) as echo:
        guild = echo.world.guild.id
        alice = echo.world.user.id
        bob = emu.create_user("bob")
        emu.add_member(guild, bob.id)
        # alice's own conversation, saved and out of memory, distilled into a memory.
        fake_llm.queue_text("Noted.")
        hers = await echo.mention("My kumquat allergy is serious, I carry an epipen.")
        await echo.answer_in(hers.id)
        assert await echo.bot.manager.remove_conversation(str(hers.id))
        fake_llm.queue_text(
            json.dumps(
                {
                    "summary": f"Alice explained her kumquat allergy and {SECRET} risk.",
                    "topics": ["allergy"],
                    "facts": [{"text": f"Alice risks {SECRET} from kumquats", "about": str(alice)}],
                }
            )
        )
        assert (await echo.bot.memories.generate(str(guild))).generated == 1

        # bob's thread recalls it (the notes go into its system prompt), and alice joins in.
        fake_llm.queue_text("A picnic, lovely.")
        await emu.post_message(
            echo.world.channel.id, bob.id, echo.ping("Planning a picnic with kumquat tarts.")
        )
        bobs = await emu.wait_for_thread(echo.world.channel.id, predicate=lambda t: t.id != hers.id)
        await echo.answer_in(bobs.id)
        assert SECRET in fake_llm.chat_requests[-1].messages[0]["content"]
        fake_llm.queue_text("Great, cake it is.")
        await echo.say(bobs.id, f"I will bring a {HERS} cake.", author_id=alice)
        await echo.answer_in(bobs.id, lambda m: m["content"] == "Great, cake it is.")
        fake_llm.queue_text(f"Bob plans a picnic; Alice brings a {HERS} cake.")
        summarize = await emu.invoke_command(guild, bobs.id, bob.id, "summarize")
        await summarize.followup(0)
        assert HERS in echo.bot.manager.get_conversation(str(bobs.id)).summary  # type: ignore[union-attr]

        handle = await emu.invoke_command(guild, echo.world.channel.id, alice, "memory forget")
        warning = await handle.original()
        click = await emu.click(int(warning["id"]), confirm_id(warning), alice)
        await click.original(predicate=lambda m: m["content"].startswith("Done"))
        assert echo.conversation(bobs.id) is not None  # still running

        before = len(fake_llm.chat_requests)
        fake_llm.queue_text("Lemon bars travel well.")
        await echo.say(bobs.id, "What else should I bake?", author_id=bob.id)
        await echo.answer_in(bobs.id, lambda m: m["content"] == "Lemon bars travel well.")
        later = fake_llm.chat_requests[before:]
    assert later
    for request in later:
        text = request_text(request)
        assert SECRET not in text
        assert HERS not in text
        assert "epipen" not in text


async def test_agent_state_goes_with_the_conversation(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, ECHO_IDLE_SECONDS="2") as echo:
        states = echo.bot.agent.states
        threads: list[int] = []
        for n in range(3):
            thread = await new_thread(echo, f"Question number {n}.", threads)
            await echo.answer_in(thread)
        held = {str(t) for t in threads if echo.conversation(t) is not None}
        assert held and all(t in states for t in held)
        await emu.wait_for(
            lambda: all(echo.conversation(t) is None for t in threads) or None,
            timeout=10,
            what="idle eviction",
        )
        # The state goes with the eviction's "idle" event, told right after the save's.
        await emu.wait_for(lambda: len(states) == 0 or None, timeout=5, what="state dropped")


async def test_ending_a_conversation_drops_its_agent_state(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    async with running_echo(emu, tmp_path, ECHO_IDLE_SECONDS="60") as echo:
        states = echo.bot.agent.states
        thread = await new_thread(echo, "One thing.", [])
        await echo.answer_in(thread)
        assert str(thread) in states
        end = await emu.invoke_command(echo.world.guild.id, thread, echo.world.user.id, "end")
        await end.response()
        assert echo.conversation(thread) is not None
        assert str(thread) not in states


async def new_thread(echo: Echo, text: str, seen: list[int]) -> int:
    await echo.say(echo.world.channel.id, echo.ping(text))
    thread = await echo.emu.wait_for_thread(
        echo.world.channel.id, predicate=lambda t: t.id not in seen
    )
    seen.append(thread.id)
    return int(thread.id)
