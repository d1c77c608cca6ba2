"""The fake OpenAI-compatible server: ``core.FakeLLM`` (start, stop, where to reach it; how to
use it is in its module docstring) combining ``script`` (the scripted reply queue),
``recording`` (what the client sent) and ``routes`` (the HTTP endpoints and streaming), with
``payloads`` building the Chat Completions JSON they answer with.
"""
