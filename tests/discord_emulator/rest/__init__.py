"""The emulator's REST API v10: ``routing.RestApi`` (the route table and what every request
goes through) in front of one module of handlers per resource.

A route the emulator does not know answers Discord's 404 and logs an ERROR: add it to the
table in ``routing.py`` and its handler to the resource's module.
"""
