"""Conversations in Discord: a mention opens a thread, every thread message is recorded and
handed to the reply scheduler, and edits and deletions keep the record true to the thread.

The cog translates Discord events into calls on the memory manager and the reply scheduler
(``cogs.replies``); it holds no storage logic of its own. The slash commands on a thread's
conversation are in ``cogs.commands``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.discord.attachments import is_text
from bot.discord.catch_up import CatchUp
from bot.discord.cooldown import Cooldown
from bot.discord.downloads import AttachmentTooLarge, AttachmentUnreadable, read_at_most
from bot.discord.streaming import Channel
from bot.discord.text import thread_name
from cogs.replies import ReplyScheduler, send_quietly
from memory import Conversation, Message, MessageType, StoreError

if TYPE_CHECKING:
    from bot.discord.client import EchoBot

log = logging.getLogger(__name__)

DM_NOTE = "I chat in servers: mention me in a channel there and I'll open a thread for us."
HUMAN_MESSAGE_TYPES = (discord.MessageType.default, discord.MessageType.reply)
STORE_FAILED_NOTE = (
    "I can't save messages just now, so I can't answer them; the operator can see why in my log."
)
# A full disk fails every message of a thread: say so once in a while, not under each one.
STORE_NOTICE_SECONDS = 300.0


class ConversationCog(commands.Cog, name="Conversation"):
    """Mentions, thread messages, their edits and deletions, and catching up after downtime."""

    def __init__(self, bot: EchoBot) -> None:
        self.bot = bot
        self.manager = bot.manager
        self.settings = bot.settings
        # Display names as last seen, so the model knows who said what (the bot's mapping).
        self.names = bot.names
        self.replies = ReplyScheduler(bot)
        self._store_notices = Cooldown(STORE_NOTICE_SECONDS)
        # What was said while Echo was away is read back after each fresh IDENTIFY.
        self.catch_up = CatchUp(
            bot,
            self.manager,
            record=self._record,
            should_answer=self._should_answer,
            schedule=self.replies.schedule,
            hours=self.settings.catch_up_hours,
        )

    async def cog_unload(self) -> None:
        self.replies.cancel()

    # --- messages -----------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if self.bot.closing or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in HUMAN_MESSAGE_TYPES:
            return  # joins, pins, thread-created notices...
        if message.guild is None:
            await self._send_quietly(message.channel, DM_NOTE)
            return
        me = self.bot.user
        mentioned = me is not None and me.id in message.raw_mentions
        thread_id = str(message.channel.id)
        await self.catch_up.gate(message.guild.shard_id, thread_id)
        try:
            conversation = await self.manager.get_or_resume(thread_id)
        except StoreError as exc:
            conversation = await self._unreadable(message, exc)
        if conversation is not None:
            await self._in_conversation(message, conversation, mentioned)
        elif mentioned:
            await self._start(message)

    async def _unreadable(self, message: discord.Message, exc: StoreError) -> Conversation | None:
        """The stored conversation of this channel cannot be read (its store is away): in a
        thread Echo opened, answer with what this process holds, recording as usual (a store
        that spools merges it all into the stored conversation once it is back)."""
        channel = message.channel
        me = self.bot.user
        if not (
            isinstance(channel, discord.Thread) and me is not None and channel.owner_id == me.id
        ):
            # Not a thread of Echo's: a mention starts a conversation; anything else is not ours.
            log.debug("cannot tell whether %s holds a conversation: %s", channel.id, exc)
            return None
        assert message.guild is not None
        try:
            conversation = await self.manager.create_conversation(
                thread_id=str(channel.id),
                guild_id=str(message.guild.id),
                guild_name=message.guild.name,
                requester=str(message.author.id),
                channel_id=str(channel.parent_id),
            )
        except (StoreError, OSError) as again:
            log.error("cannot read the conversation of thread %s: %s", channel.id, again)
            return None
        log.warning(
            "cannot read the conversation of thread %s (%s); answering with what this process "
            "holds (%d message(s)) until the store is back",
            channel.id,
            exc,
            len(conversation.history),
        )
        return conversation

    async def _in_conversation(
        self, message: discord.Message, conversation: Conversation, mentioned: bool
    ) -> None:
        if conversation.ended:
            if not mentioned:
                return
            await self.manager.reopen_conversation(conversation.thread_id)
            log.info("thread %s: reopened by a mention", conversation.thread_id)
        if not await self._record(message, conversation.thread_id):
            return  # already recorded (a replayed event): it was answered then
        if self._should_answer(message, conversation, mentioned):
            self.replies.schedule(message, int(conversation.thread_id), message.channel)

    async def _start(self, message: discord.Message) -> None:
        channel = message.channel
        author = message.author
        if isinstance(channel, discord.Thread):
            thread: Channel = channel
            parent_id = channel.parent_id
        elif isinstance(channel, discord.TextChannel):
            # A thread started from a message has the message's id: if that conversation
            # exists, this mention was handled already and is a gateway replay.
            try:
                handled = await self.manager.get_or_resume(str(message.id)) is not None
            except StoreError as exc:  # cannot tell: Discord refuses a second thread anyway
                log.debug("cannot tell whether mention %s was handled: %s", message.id, exc)
                handled = False
            if handled:
                log.debug("mention %s was handled already (replayed event)", message.id)
                return
            name = thread_name(message.content, f"Chat with {author.display_name}")
            try:
                thread = await message.create_thread(name=name, auto_archive_duration=1440)
            except discord.Forbidden:
                log.warning(
                    "cannot start a thread in #%s (guild %s): missing the Create Public Threads "
                    "permission",
                    channel.name,
                    channel.guild.id,
                )
                await self._reply_quietly(
                    message,
                    "I need the **Create Public Threads** permission in this channel to start a "
                    "conversation.",
                )
                return
            except discord.HTTPException as exc:
                log.error("could not start a thread in #%s: %s", channel.name, exc)
                await self._reply_quietly(message, "I couldn't open a thread here, sorry.")
                return
            parent_id = channel.id
        else:
            log.debug("mention in unsupported channel %s ignored", channel)
            return
        assert message.guild is not None
        try:
            await self.manager.create_conversation(
                thread_id=str(thread.id),
                guild_id=str(message.guild.id),
                guild_name=message.guild.name,
                requester=str(author.id),
                channel_id=str(parent_id),
            )
        except (StoreError, OSError) as exc:
            log.error("could not create the conversation of thread %s: %s", thread.id, exc)
            await self._send_quietly(thread, "I couldn't start recording this conversation, sorry.")
            return
        log.info(
            "conversation started in thread %s by %s in guild %s",
            thread.id,
            author.id,
            message.guild.id,
        )
        if await self._record(message, str(thread.id)):
            self.replies.schedule(message, thread.id, thread)

    async def _record(self, message: discord.Message, thread_id: str) -> bool:
        author = message.author
        self.names[str(author.id)] = author.display_name
        meta: dict[str, object] = {"author_name": author.display_name}
        if message.attachments:
            meta["attachments"] = [await self._attachment(a) for a in message.attachments]
        record = Message(
            message_type=MessageType.CHAT,
            # Mentions as @Name: readable in the files and to the model (ids stay in Discord).
            message_content=message.clean_content,
            requester=str(author.id),
            message_id=str(message.id),
            created_at=message.created_at,
            meta=meta,
        )
        try:
            return await self.manager.add_message_to_conversation(thread_id, record)
        except (StoreError, OSError) as exc:
            log.error("could not record message %s in thread %s: %s", message.id, thread_id, exc)
            if not self._store_notices.remaining(thread_id):
                self._store_notices.mark(thread_id)
                await self._send_quietly(message.channel, STORE_FAILED_NOTE)
            return False

    async def _attachment(self, attachment: discord.Attachment) -> dict[str, object]:
        """Name, size, type and link; the text itself for small text files (links expire)."""
        info: dict[str, object] = {
            "filename": attachment.filename,
            "size": attachment.size,
            "content_type": attachment.content_type,
            "url": attachment.url,
        }
        limit = self.settings.max_attachment_bytes
        if not is_text(attachment.filename, attachment.content_type):
            return info
        if attachment.size > limit:
            info["note"] = f"larger than ECHO_MAX_ATTACHMENT_BYTES ({limit}); not read"
            return info
        try:
            # Not attachment.read(): that reads whatever the URL serves, however large.
            data = await read_at_most(attachment.url, limit)
        except AttachmentTooLarge as exc:
            log.warning(
                "attachment %s announced %d bytes but %s; not read",
                attachment.filename,
                attachment.size,
                exc,
            )
            info["note"] = f"larger than ECHO_MAX_ATTACHMENT_BYTES ({limit}); not read"
            return info
        except AttachmentUnreadable as exc:
            log.warning("could not read attachment %s: %s", attachment.filename, exc)
            info["note"] = "could not be read"
            return info
        info["text"] = data[:limit].decode("utf-8", errors="replace")
        return info

    def _should_answer(
        self, message: discord.Message, conversation: Conversation, mentioned: bool
    ) -> bool:
        mode = self.settings.thread_replies
        if mode == "all" or mentioned:
            return True
        return mode == "requester" and str(message.author.id) == conversation.requester

    # --- the gateway session: catch up after a fresh IDENTIFY -------------------------------

    @commands.Cog.listener()
    async def on_shard_ready(self, shard_id: int) -> None:
        await self.catch_up.shard_ready(shard_id)

    @commands.Cog.listener()
    async def on_shard_resumed(self, shard_id: int) -> None:
        self.catch_up.resumed(shard_id)

    @commands.Cog.listener()
    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.catch_up.disconnected(shard_id)

    # --- edits and deletes: keep the record true to the thread -----------------------------

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        if message.author.bot or "content" not in payload.data:
            return  # Echo's own streaming edits, embeds resolving, pins...
        thread_id = await self._conversation_of(payload.channel_id, payload.message_id)
        if thread_id is None:
            return
        edited_at = message.edited_at or discord.utils.utcnow()
        try:
            changed = await self.manager.edit_message(
                thread_id, str(message.id), message.clean_content, edited_at=edited_at
            )
        except (StoreError, OSError, KeyError) as exc:
            log.error("could not record the edit of message %s: %s", message.id, exc)
            return
        if changed:
            log.debug("thread %s: message %s edited", thread_id, message.id)
            await self._answer_edit(message, thread_id)

    async def _answer_edit(self, message: discord.Message, thread_id: str) -> None:
        """Answer an edit only if it is the newest message and nothing has answered it yet.

        An edit of an answered message changes the record, not the conversation's course: a
        second answer to an old question would be confusing. The useful case is a message
        Echo left unanswered (say, without the mention ECHO_THREAD_REPLIES asked for) that
        its author edits to add one.
        """
        key = int(thread_id)
        if self.replies.busy(key):
            return  # it is about to be answered (with the edited text) or being answered
        conversation = self.manager.get_conversation(thread_id)
        if conversation is None or conversation.ended or not conversation.history:
            return
        if conversation.history[-1].message_id != str(message.id):
            return
        me = self.bot.user
        mentioned = me is not None and me.id in message.raw_mentions
        if self._should_answer(message, conversation, mentioned):
            self.replies.schedule(message, key, message.channel)

    @commands.Cog.listener()
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self._forget_messages(payload.channel_id, [payload.message_id])

    @commands.Cog.listener()
    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        await self._forget_messages(payload.channel_id, sorted(payload.message_ids))

    async def _forget_messages(self, channel_id: int, message_ids: list[int]) -> None:
        for message_id in message_ids:
            thread_id = await self._conversation_of(channel_id, message_id)
            if thread_id is None:
                continue
            try:
                if await self.manager.delete_message(thread_id, str(message_id)):
                    log.debug("thread %s: message %s deleted", thread_id, message_id)
            except (StoreError, OSError, KeyError) as exc:
                log.error("could not record the deletion of message %s: %s", message_id, exc)

    async def _conversation_of(self, channel_id: int, message_id: int) -> str | None:
        """The conversation a message belongs to: its thread's, or the one it started."""
        for candidate in (str(channel_id), str(message_id)):
            try:
                conversation = await self.manager.get_or_resume(candidate)
            except StoreError as exc:  # the store is away and this process does not hold it
                log.error("cannot record a change of message %s: %s", message_id, exc)
                return None
            if conversation is not None and conversation.has_message_id(str(message_id)):
                return candidate
        return None

    # --- helpers ------------------------------------------------------------------------------

    async def _send_quietly(self, channel: Channel, text: str) -> None:
        await send_quietly(self.bot.write_budget, channel, text)

    async def _reply_quietly(self, message: discord.Message, text: str) -> None:
        try:
            await message.reply(
                text, mention_author=False, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.Forbidden:
            log.warning(
                "cannot answer in #%s either: missing the Send Messages permission",
                getattr(message.channel, "name", message.channel.id),
            )
        except discord.HTTPException as exc:
            log.warning("could not reply to message %s: %s", message.id, exc)


async def setup(bot: EchoBot) -> None:
    await bot.add_cog(ConversationCog(bot))
