"""The default store: per-guild JSON files with a write-ahead journal (the store, its files, its
recovery, the memory files, and reading journal-only conversations).
"""
