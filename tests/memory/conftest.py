"""Fixtures for the memory tests: a store factory parametrized over every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from memory import ConversationStore, JsonFileStore

StoreFactory = Callable[[], ConversationStore]


@pytest.fixture(params=["json"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores over one backing location, so a test can close one and open the next."""
    if request.param == "json":
        return lambda: JsonFileStore(tmp_path / "data")
    raise AssertionError(f"unknown store backend {request.param}")
