"""Long-term memory: distilling ended conversations into memory records, the batch queue and its
lease, the service, and forgetting a person.
"""

from __future__ import annotations

from memory.longterm.distiller import Distiller, ExtractiveDistiller, extractive_memory
from memory.longterm.forget import ForgetReport, forget_person
from memory.longterm.queue import (
    BatchLease,
    BatchReport,
    InProcessMemoryQueue,
    MemoryBatch,
    MemoryQueue,
)
from memory.longterm.service import DEFAULT_INACTIVITY_SECONDS, MemoryService, eligible

__all__ = [
    "DEFAULT_INACTIVITY_SECONDS",
    "BatchLease",
    "BatchReport",
    "Distiller",
    "ExtractiveDistiller",
    "ForgetReport",
    "InProcessMemoryQueue",
    "MemoryBatch",
    "MemoryQueue",
    "MemoryService",
    "eligible",
    "extractive_memory",
    "forget_person",
]
