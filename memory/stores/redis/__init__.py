"""The Redis store (needs the ``redis`` extra): conversations, memories, the spool for outages, the
change feed and the memory queue. Import its modules directly; this package imports nothing, so
a JSON-only install can name it.
"""
