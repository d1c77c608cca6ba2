"""Measurements that are not tests: quality and timing goals (DESIGN.md: timing goals live here)."""
