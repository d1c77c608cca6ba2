"""The scenarios of ``python -m bench``, in the order they run.

Each is a module here with ``NAME``, ``TITLE`` and ``run(quick: bool) -> Scenario``
(see ``bench/framework.py``). A module that is missing or fails to import is skipped with a
line saying why; a scenario that raises is reported as failed and the others still run.
"""

SCENARIOS = [
    "recording",
    "redis",
    "stalls",
    "save",
    "footprint",
    "startup",
    "recall",
    "shards",
    "load",
]
