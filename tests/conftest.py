"""Shared fixtures. Fixture modules of the test harness are imported here."""

from __future__ import annotations

from tests.fake_llm.fixtures import fake_llm  # noqa: F401
