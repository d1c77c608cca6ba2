"""Shared fixtures. Fixture modules of the test harness are imported here."""

from __future__ import annotations
