"""Tests for Echo; the package makes `tests.` imports work for shared helpers."""
