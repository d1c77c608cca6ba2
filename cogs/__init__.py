"""discord.py extensions (cogs) for Echo."""
