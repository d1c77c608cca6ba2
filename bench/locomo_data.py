"""Where ``bench.locomo`` gets LoCoMo: ``--data PATH``, or the public file, fetched once.

LoCoMo (snap-research/locomo, CC BY-NC 4.0) is not in this repository: it may be used to measure,
not shipped. Without ``--data`` the public ``data/locomo10.json`` (ten dialogues) is downloaded
into a cache folder and checked against its known sha256, so a fresh clone measures the same
bytes as everyone else. Any failure is one line saying how to get the file, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEV_SAMPLES",
    "LOCOMO_SHA256",
    "LOCOMO_URL",
    "DataError",
    "Dataset",
    "cache_dir",
    "load",
]

LOCOMO_URL = "https://raw.githubusercontent.com/snap-research/locomo/main/data/locomo10.json"
# The public file as published (ten dialogues, 1,986 questions, about 2.8 MB).
LOCOMO_SHA256 = "79fa87e90f04081343b8c8debecb80a9a6842b76a7aa537dc9fdf651ea698ff4"
FILE_NAME = "locomo10.json"
# The five dialogues the project's settings were developed on (its dev split): a figure on
# these says less about unseen conversations than one on the other five.
DEV_SAMPLES = ("conv-26", "conv-30", "conv-41", "conv-42", "conv-43")
_TIMEOUT_S = 30.0
# Beside a checkout of the project, its copy of the dev split (not part of a clone).
LOCAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo-dev.json"


class DataError(Exception):
    """The data cannot be had; the message is one line saying what to do."""


@dataclass(frozen=True)
class Dataset:
    records: list[dict[str, Any]]
    path: Path
    sha256: str
    downloaded: bool = False

    @property
    def samples(self) -> list[str]:
        return [str(r.get("sample_id", f"#{n}")) for n, r in enumerate(self.records)]

    def select(self, which: str) -> Dataset:
        """``all``, ``dev`` (the dev split's five), ``unseen`` (all but those), or ids."""
        if which == "all":
            chosen = self.records
        elif which in ("dev", "unseen"):
            dev = which == "dev"
            chosen = [r for r in self.records if (r.get("sample_id") in DEV_SAMPLES) == dev]
        else:
            wanted = [w.strip() for w in which.split(",") if w.strip()]
            missing = [w for w in wanted if w not in self.samples]
            if missing:
                raise DataError(
                    f"{self.path} holds no dialogue {', '.join(missing)}"
                    f" (it holds {', '.join(self.samples)})"
                )
            chosen = [r for r in self.records if r.get("sample_id") in wanted]
        if not chosen:
            raise DataError(f"no dialogue of {self.path} is {which!r}")
        return Dataset(chosen, self.path, self.sha256, self.downloaded)

    def describe(self) -> str:
        """Which dialogues a run uses, and how they relate to the dev split."""
        used = self.samples
        dev = [s for s in used if s in DEV_SAMPLES]
        unseen = [s for s in used if s not in DEV_SAMPLES]
        parts = [f"dialogues used: {', '.join(used)}"]
        if unseen:
            parts.append(
                f"({len(dev)} of the dev split, {len(unseen)} unseen: {', '.join(unseen)})"
            )
        else:
            parts.append("(the dev split)" if len(dev) == len(DEV_SAMPLES) else "(dev dialogues)")
        return " ".join(parts)


def cache_dir() -> Path:
    """``$ECHO_BENCH_CACHE``, else ``$XDG_CACHE_HOME/echo-bench``, else ``~/.cache/echo-bench``."""
    explicit = os.environ.get("ECHO_BENCH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "echo-bench"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise DataError(f"{path} is not JSON ({exc}); LoCoMo is a JSON list of dialogues") from exc
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("conversation"), dict) for r in records
    ):
        raise DataError(
            f"{path} is not LoCoMo data: expected a list of dialogues with a conversation"
        )
    return records


def _how_to_get(target: Path, url: str) -> str:
    return (
        f"get it with: curl -fL -o {target} {url} (or pass --data PATH to a copy of locomo10.json)"
    )


def _download(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".locomo-", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as got:
            shutil.copyfileobj(got, out)
        digest = _sha256(temp)
        if digest != LOCOMO_SHA256:
            raise DataError(
                f"{url} gave a file whose sha256 is {digest}, not {LOCOMO_SHA256}; "
                + _how_to_get(target, LOCOMO_URL)
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def load(data: Path | None, *, url: str = LOCOMO_URL, cache: Path | None = None) -> Dataset:
    """The dialogues of ``data``, or of the cached public file (downloaded if absent)."""
    if data is not None:
        if not data.is_file():
            raise DataError(f"--data {data}: no such file; " + _how_to_get(data, LOCOMO_URL))
        digest = _sha256(data)
        return Dataset(_read(data), data, digest)
    target = (cache or cache_dir()) / FILE_NAME
    downloaded = False
    if target.is_file() and _sha256(target) != LOCOMO_SHA256:
        target.unlink()  # a partial or changed copy: fetch it again
    if not target.is_file():
        print(f"LoCoMo: downloading {url} into {target.parent} ...", flush=True)
        try:
            _download(url, target)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"could not download {url} ({reason}); {_how_to_get(target, LOCOMO_URL)}"
            ) from exc
        downloaded = True
    return Dataset(_read(target), target, LOCOMO_SHA256, downloaded)
