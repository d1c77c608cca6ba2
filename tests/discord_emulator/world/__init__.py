"""The emulated Discord's world: its state and what happens when the bot or a test acts.

``core.DiscordWorld`` holds the state, announces changes and emits gateway events in one
ordered queue; its operations come from one mixin per subject: ``guilds`` (users, guilds,
roles, members, DMs), ``channels`` (threads, channel edits), ``messages`` and
``attachments``. REST handlers (``rest/``) and the test-side API (``server.py``) both go
through them.
"""
