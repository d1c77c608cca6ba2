"""Echo's side of Discord: the client, its endpoints and start-up, streaming replies within rate
limits, message text, attachments, catch-up after downtime.
"""
