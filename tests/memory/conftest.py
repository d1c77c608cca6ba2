"""Fixtures for the memory tests: a store factory parametrized over every backend, and an
empty recall index."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memory import ConversationStore, JsonFileStore
from memory.recall import RecallIndex
from tests.redis_support import cluster_redis_url, delete_prefix, require_redis

StoreFactory = Callable[[], ConversationStore]


@pytest.fixture(params=["json", "redis", "redis-cluster"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one backing location, so a test can close one and open the next."""
    if request.param == "json":
        return lambda: JsonFileStore(tmp_path / "data")
    from memory import RedisStore

    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        return lambda: RedisStore(url, prefix=prefix, spool_dir=tmp_path / "spool")
    if request.param == "redis-cluster":
        node = cluster_redis_url()
        require_redis(node, cluster=True)
        tagged = f"echotest-{uuid.uuid4().hex[:12]}"
        request.addfinalizer(lambda: delete_prefix(node, tagged, cluster=True))
        return lambda: RedisStore(node, prefix=tagged, spool_dir=tmp_path / "spool", cluster=True)
    raise AssertionError(f"unknown store backend {request.param}")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[RecallIndex]:
    """An empty recall index under ``tmp_path``, closed after the test."""
    with RecallIndex(tmp_path / "recall") as opened:
        yield opened
