"""Recording: the in-memory conversation manager, its idle clock and per-thread locks, and the
write-ahead journal.
"""
