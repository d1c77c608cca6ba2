"""Fixtures for the memory tests: a store factory parametrized over every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from memory import ConversationStore, JsonFileStore

StoreFactory = Callable[[], ConversationStore]


@pytest.fixture(params=["json", "redis"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one backing location, so a test can close one and open the next."""
    if request.param == "json":
        return lambda: JsonFileStore(tmp_path / "data")
    if request.param == "redis":
        from memory import RedisStore

        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        return lambda: RedisStore(url, prefix=prefix, spool_dir=tmp_path / "spool")
    raise AssertionError(f"unknown store backend {request.param}")
