"""Discord's official OpenAPI description as the judge of the emulator's traffic.

Every REST request the bot sends is checked against its operation's request schema, and
every 2xx answer the emulator gives against the operation's response schema. discord.py
tolerates many wrong answers, so without this the emulator could drift from Discord and
the tests would keep passing the day Echo starts to depend on a field the emulator gets
wrong. The spec is read once per test session (``openapi.py`` builds each operation's
validators once, on first use).

The spec is never copied into the project: it is found through ``ECHO_DISCORD_OPENAPI``,
else ``<repo>/../shared/data/discord-openapi.json``, else ``/work/shared/data/...``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.discord_emulator.openapi import OpenApiSpec, SpecStats, SpecViolation

if TYPE_CHECKING:
    from tests.discord_emulator.world.core import RequestRecord

log = logging.getLogger(__name__)

__all__ = [
    "ALLOWLIST",
    "SESSION_STATS",
    "SPEC_ENV",
    "AllowedDeviation",
    "OpenApiSpec",
    "SpecMissingError",
    "SpecMonitor",
    "SpecStats",
    "SpecViolation",
    "SpecViolationError",
    "load_spec",
    "read_spec",
    "spec_path",
]

SPEC_ENV = "ECHO_DISCORD_OPENAPI"
SPEC_NAME = "discord-openapi.json"
_REPO = Path(__file__).resolve().parents[2]
_FALLBACK = Path("/work/shared/data") / SPEC_NAME


class SpecMissingError(FileNotFoundError):
    """The OpenAPI document the emulator is validated against is not where it should be."""


@dataclass(frozen=True)
class AllowedDeviation:
    """A place where the spec itself is wrong about Discord, and why we know."""

    operation_id: str
    direction: str  # "request" or "response"
    field: str  # a regex over the JSON path of the error
    reason: str

    def covers(self, violation: SpecViolation) -> bool:
        return (
            violation.operation_id == self.operation_id
            and violation.direction == self.direction
            and re.fullmatch(self.field, violation.field) is not None
        )


# Only for what the spec gets wrong; an emulator answer the spec refuses is fixed in the
# emulator instead. Each entry says why Discord is right and the spec is not.
ALLOWLIST: tuple[AllowedDeviation, ...] = ()


# Totals over the whole test session, for the terminal summary.
SESSION_STATS = SpecStats()


def spec_path() -> Path:
    """Where the spec is read from (it need not exist; ``load_spec`` says so if not)."""
    configured = os.environ.get(SPEC_ENV)
    if configured:
        return Path(configured)
    beside_repo = _REPO.parent / "shared" / "data" / SPEC_NAME
    return beside_repo if beside_repo.is_file() else _FALLBACK


@functools.cache
def load_spec() -> OpenApiSpec:
    """The parsed spec, once per process."""
    return read_spec(spec_path())


def read_spec(path: Path) -> OpenApiSpec:
    """The spec at ``path``; a missing file is a ``SpecMissingError`` that says what to do."""
    if not path.is_file():
        raise SpecMissingError(
            f"Discord's OpenAPI spec is missing: {path} does not exist. The emulator's "
            f"traffic is validated against it; put {SPEC_NAME} in ../shared/data/ beside "
            f"the repository or point {SPEC_ENV} at it (see tests/README.md)."
        )
    with path.open(encoding="utf-8") as f:
        return OpenApiSpec(json.load(f), source=path, allowed=_allowed)


def _allowed(violation: SpecViolation) -> bool:
    return any(entry.covers(violation) for entry in ALLOWLIST)


class SpecViolationError(AssertionError):
    """Raised at the end of a test whose traffic broke Discord's spec."""


class SpecMonitor:
    """Checks each logged exchange of one emulator; keeps what broke the spec."""

    def __init__(self, spec: OpenApiSpec) -> None:
        self.spec = spec
        self.violations: list[SpecViolation] = []
        self.stats = SpecStats()

    def observe(self, record: RequestRecord) -> None:
        """Check one request the emulator routed or faulted (unknown routes answer 404)."""
        if record.route is None and not record.fault:
            return
        started = time.perf_counter()
        stats = SpecStats()
        found = self.spec.check(
            record.method,
            record.path,
            request_body=record.json,
            has_files=bool(record.files),
            status=record.status,
            response_body=record.response,
            stats=stats,
            query=record.query,
        )
        stats.seconds = time.perf_counter() - started
        self.stats.add(stats)
        SESSION_STATS.add(stats)
        for violation in found:
            log.error("discord emulator: off Discord's spec: %s", violation)
        self.violations.extend(found)

    def take(self) -> list[SpecViolation]:
        """The violations so far, forgotten (for a test that provokes them on purpose)."""
        taken, self.violations = self.violations, []
        return taken

    def assert_clean(self) -> None:
        if self.violations:
            lines = "\n".join(f"  - {v}" for v in self.violations)
            raise SpecViolationError(
                f"{len(self.violations)} exchange(s) with the emulator break Discord's "
                f"OpenAPI spec ({self.spec.source}):\n{lines}"
            )
