"""Shared fixtures. Fixture modules of the test harness are imported here."""

from __future__ import annotations

from tests.discord_emulator.fixtures import (  # noqa: F401
    discord_emulator,
    pytest_terminal_summary,
)
from tests.fake_llm.fixtures import fake_llm  # noqa: F401
from tests.redis_support import (  # noqa: F401
    private_redis,
    pytest_configure,
    pytest_generate_tests,
    redis_cluster,
    redis_prefix,
    redis_url,
)
