"""The default store: per-guild JSON files with a write-ahead journal (the store, its recovery, and
reading journal-only conversations).
"""
