"""Tests of the bot package's Discord-independent parts: LLM providers, tools."""
