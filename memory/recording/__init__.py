"""Recording: the in-memory conversation manager (its active conversations, listeners, idle
sweeper and per-thread locks), and the write-ahead journal.
"""
