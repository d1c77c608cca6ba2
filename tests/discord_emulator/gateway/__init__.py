"""The emulated gateway: HELLO, heartbeats, IDENTIFY/READY, RESUME with replay, dispatch by
intents.

``connections.Gateway`` is the websocket endpoint (one connection per socket, opcodes routed,
closes and test-made drops); it combines ``wire`` (frames encoded, compressed, sent and
logged) and ``sessions`` (IDENTIFY, RESUME and replay, dispatch). ``protocol`` holds
Discord's numbers: opcodes, close codes, intents.
"""
