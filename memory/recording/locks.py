"""Per-key locks: one ``asyncio.Lock`` per conversation, kept only while in use.

The manager serialises every change to one conversation (a message, a save, an eviction)
through the lock of its thread id; a table of locks for every thread ever seen would only
grow, so an entry lives while someone holds or waits for it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["Hold", "LockTable"]


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Hold:
    """``async with table.hold(key)``: a plain class, not an async generator, because it is
    entered once per recorded message, where an ``asynccontextmanager``'s overhead shows."""

    __slots__ = ("_entry", "_key", "_locks")

    def __init__(self, locks: dict[str, _KeyLock], key: str) -> None:
        self._locks = locks
        self._key = key
        self._entry: _KeyLock | None = None

    async def __aenter__(self) -> None:
        entry = self._locks.get(self._key)
        if entry is None:
            entry = self._locks[self._key] = _KeyLock()
        entry.users += 1
        self._entry = entry
        try:
            await entry.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entry.lock.release()  # type: ignore[union-attr]
        self._leave()

    def _leave(self) -> None:
        entry = self._entry
        assert entry is not None
        entry.users -= 1
        if entry.users == 0:
            del self._locks[self._key]


class LockTable:
    """One asyncio.Lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, _KeyLock] = {}

    def hold(self, key: str) -> Hold:
        return Hold(self._locks, key)
