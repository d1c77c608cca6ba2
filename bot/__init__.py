"""Echo's process: configuration, the Discord client, LLM providers, the reply agent, the CLI."""
