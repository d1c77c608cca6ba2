"""What test users do in the emulated world: post (in channels, threads and DMs), edit and
delete messages, start and archive threads.

A mixin of ``DiscordEmulator`` (``server.py``): each action goes through the same operations
of ``world.core.DiscordWorld`` the bot's requests go through, so the bot sees the gateway
events Discord would send.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.discord_emulator.state import Channel, UploadedFile

__all__ = ["ActingAsUsers", "FileSpec"]

FileSpec = tuple[str, bytes] | UploadedFile


class ActingAsUsers:
    """Test users post, edit, delete and start threads, as people on Discord do."""

    # -- acting as users ------------------------------------------------------

    async def post_message(
        self,
        channel_id: int,
        author_id: int,
        content: str = "",
        *,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user posts in a channel, thread or DM; mentions are filled in as Discord does."""
        channel = self.store.channel(channel_id)
        if channel.is_dm:
            if int(author_id) not in channel.recipient_ids:
                raise LookupError(f"user {author_id} is not the recipient of DM {channel.id}")
        else:
            self.store.member(channel.guild_id, author_id)
        files = [
            f if isinstance(f, UploadedFile) else UploadedFile(f"files[{i}]", f[0], "", f[1])
            for i, f in enumerate(attachments)
        ]
        body: dict[str, Any] = {"content": content}
        if embeds:
            body["embeds"] = embeds
        if reply_to is not None:
            body["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
        message = await self.create_message(channel_id, author_id, body, files)
        return self.message_payload(message)

    async def post_dm(
        self,
        author_id: int,
        content: str = "",
        *,
        attachments: Iterable[FileSpec] = (),
        embeds: list[dict[str, Any]] | None = None,
        reply_to: int | None = None,
    ) -> dict[str, Any]:
        """A user sends the bot a direct message (in ``dm_channel(author_id)``, made if needed).

        The bot gets MESSAGE_CREATE without ``guild_id`` or ``member``, only with the
        ``dm_messages`` intent, and with its content even without ``message_content``.
        """
        channel = self.dm_channel(author_id)
        return await self.post_message(
            channel.id,
            author_id,
            content,
            attachments=attachments,
            embeds=embeds,
            reply_to=reply_to,
        )

    async def edit_message(self, channel_id: int, message_id: int, content: str) -> dict[str, Any]:
        """The author edits a message (MESSAGE_UPDATE)."""
        message = self.store.message(channel_id, message_id)
        await self.edit_message_body(message, {"content": content}, [])
        return self.message_payload(message)

    async def delete_message(self, channel_id: int, message_id: int) -> None:
        """Someone deletes a message (MESSAGE_DELETE)."""
        await self.remove_message(self.store.message(channel_id, message_id))

    async def bulk_delete_messages(self, channel_id: int, message_ids: Iterable[int]) -> None:
        """A moderator deletes several messages at once (MESSAGE_DELETE_BULK)."""
        messages = [self.store.message(channel_id, int(i)) for i in message_ids]
        await self.remove_messages(channel_id, messages)

    async def create_thread(
        self,
        channel_id: int,
        name: str,
        *,
        owner_id: int,
        message_id: int | None = None,
        private: bool = False,
    ) -> Channel:
        """A user starts a thread (THREAD_CREATE), from a message or not."""
        body: dict[str, Any] = {"name": name, "type": 12 if private else 11}
        return await self.start_thread(channel_id, owner_id, body, message_id=message_id)

    async def archive_thread(self, thread_id: int, *, archived: bool = True) -> Channel:
        return await self.modify_channel(thread_id, {"archived": archived})
