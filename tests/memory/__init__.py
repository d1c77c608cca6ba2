"""Tests of the memory library (no Discord)."""
