"""``EchoBot``: the discord.py client, with its resources passed in by the entry point.

Extensions are loaded in ``setup_hook`` from one tuple, slash commands are synced there
(never in ``on_ready``, which fires again on every reconnect), and ``close`` lets replies in
flight finish before the connection goes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.agent import Agent
from bot.config import Settings
from bot.discord.endpoints import recommended_shard_count
from bot.discord.pacing import WriteBudget
from bot.discord.waits import Waits
from memory import InMemoryConversationManager
from memory.longterm import MemoryService

log = logging.getLogger(__name__)

__all__ = ["EXTENSIONS", "INVITE_PERMISSIONS", "EchoBot", "invite_url"]

EXTENSIONS: tuple[str, ...] = ("cogs.conversation", "cogs.commands", "cogs.memory")

INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    create_public_threads=True,
    send_messages_in_threads=True,
    read_message_history=True,
    attach_files=True,
    embed_links=True,
)

# How long close() waits for replies in flight before cancelling them.
REPLY_GRACE_SECONDS = 5.0


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(
        application_id,
        permissions=INVITE_PERMISSIONS,
        scopes=("bot", "applications.commands"),
    )


def intents() -> discord.Intents:
    value = discord.Intents.default()
    value.message_content = True  # privileged: must be switched on in the developer portal
    return value


class EchoBot(commands.AutoShardedBot):
    """The Echo client. Construct with the resources built by the entry point.

    Always the sharded client, on Discord's own sharding: with ECHO_SHARD_COUNT and
    ECHO_SHARD_IDS unset it runs every shard of the count Discord recommends (one for a small
    bot), so a bot that outgrows one shard needs no other code, only settings.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        manager: InMemoryConversationManager,
        agent: Agent,
        memories: MemoryService,
        sync_on_start: bool = True,
        **options: Any,
    ) -> None:
        options.setdefault("intents", intents())
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        options.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids is not None:
            options.setdefault("shard_ids", list(settings.shard_ids))
        # No prefix commands (see on_message): Echo is driven by mentions and slash commands.
        super().__init__(command_prefix=commands.when_mentioned, help_command=None, **options)
        self.settings = settings
        self.manager = manager
        self.agent = agent
        self.memories = memories
        # False for an explicit `python -m bot sync`, which must not also do the automatic one.
        self.sync_on_start = sync_on_start
        self.closing = False
        # People's display names as last seen in their messages (user id to name), so the
        # model knows who said what: recorded by the conversation cog, read by the replies and
        # /summarize, dropped by /memory forget.
        self.names: dict[str, str] = {}
        self.reply_tasks: set[asyncio.Task[None]] = set()
        # Set once Discord has answered the login (setup_hook runs after that): start-up's
        # deadline for an unresponsive API ends there (bot.discord.start).
        self.logged_in = asyncio.Event()
        # What replies wait on besides their own work, for whoever measures it.
        self.waits = Waits()
        # Every streamed reply counts its writes here, to stay inside Discord's limits.
        self.write_budget = WriteBudget(waits=self.waits)

    def forget_names(self, user_id: str) -> None:
        """Drop a person's display name (after /memory forget)."""
        self.names.pop(user_id, None)

    async def on_message(self, message: discord.Message, /) -> None:
        """Echo has no prefix commands: mentions are conversation, handled by the cog."""

    async def on_ready(self) -> None:
        # Fires once every shard of this process is ready, and again after a reconnect that
        # is not a resume; the line says so.
        assert self.user is not None
        log.info(
            "ready: logged in as %s (id %s) in %d server(s) on %d shard(s)",
            self.user,
            self.user.id,
            len(self.guilds),
            len(self.shards),
        )

    async def setup_hook(self) -> None:
        self.logged_in.set()
        if self.shard_count is None:
            self.shard_count = await self._recommended_shards()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.application_id is not None:
            log.info("invite Echo with: %s", invite_url(self.application_id))
        if self.settings.shard_ids is not None:
            log.info(
                "running shard(s) %s of %d",
                ",".join(map(str, self.settings.shard_ids)),
                self.settings.shard_count,
            )
        # Once per bot, not once per process: the process of shard 0 syncs.
        if self.sync_on_start and self.settings.runs_shard_zero:
            await self._sync_commands()

    async def _recommended_shards(self) -> int:
        try:
            count = await recommended_shard_count(
                self.settings.discord_api_base, self.settings.discord_token.strip()
            )
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("could not ask Discord how many shards to run (%s); running one", exc)
            return 1
        if count > 1:
            log.info("Discord recommends %d shards: running them all in this process", count)
        return count

    async def _sync_commands(self) -> None:
        guild_id = self.settings.dev_guild_id
        try:
            if guild_id is not None:
                guild = discord.Object(id=int(guild_id))
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d slash commands to guild %s", len(synced), guild_id)
                return
            if await self._global_commands_changed():
                synced = await self.tree.sync()
                log.info("synced %d global slash commands", len(synced))
        except discord.HTTPException as exc:
            log.error("could not sync slash commands (%s); they may be out of date", exc)

    async def _global_commands_changed(self) -> bool:
        """Compare with what Discord has, so a restart does not resync for nothing."""
        remote = await self.tree.fetch_commands()
        local = self.tree.get_commands()
        return _shape(local) != {c.name: _remote_shape(c) for c in remote}

    async def close(self) -> None:
        """Stop taking messages, let replies in flight finish (briefly), then disconnect."""
        if not self.closing:
            self.closing = True
            pending = [t for t in self.reply_tasks if not t.done()]
            if pending:
                log.info("waiting for %d reply(ies) in flight", len(pending))
                _, still = await asyncio.wait(pending, timeout=REPLY_GRACE_SECONDS)
                for task in still:
                    task.cancel()
                if still:
                    await asyncio.wait(still, timeout=1.0)
        await super().close()


def _shape(
    commands_: list[
        app_commands.Command[Any, ..., Any] | app_commands.Group | app_commands.ContextMenu
    ],
) -> dict[str, tuple[str, tuple[tuple[str, str, bool], ...]]]:
    shapes: dict[str, tuple[str, tuple[tuple[str, str, bool], ...]]] = {}
    for command in commands_:
        if isinstance(command, app_commands.Command):
            options = tuple((p.name, p.description, p.required) for p in command.parameters)
            shapes[command.name] = (command.description, options)
        else:
            shapes[command.name] = ("", ())
    return shapes


def _remote_shape(
    command: app_commands.AppCommand,
) -> tuple[str, tuple[tuple[str, str, bool], ...]]:
    options = tuple(
        (o.name, o.description, bool(getattr(o, "required", False))) for o in command.options
    )
    return (command.description, options)
