"""Echo uses its dependencies through their public APIs, and declares every one it imports.

Internals (CPython's C API through ctypes, pydantic's private attributes, redis-py's connection
methods) break on a dependency's next release without a word; an undeclared import works only
as long as some other dependency happens to pull the package in.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "cogs", "memory")

INTERNALS = re.compile(
    r"ctypes|pythonapi|__pydantic_\w+__|send_packed_command|read_response\(|__dict__\["
)


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalise(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in requirements}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_no_internals_of_dependencies() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNALS.search(line)
    ]
    assert not found, "internals of a dependency:\n" + "\n".join(found)


def test_every_third_party_import_is_declared() -> None:
    imported: dict[str, str] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in PACKAGES:
                    imported.setdefault(top, str(path.relative_to(ROOT)))
    assert imported, "the scan found no third-party import at all"
    project = _project()
    optional = project["optional-dependencies"]
    assert isinstance(optional, dict)
    declared = _requirement_names(
        [*project["dependencies"], *optional["redis"], *optional["semantic"]]
    )  # type: ignore[misc]
    distributions = importlib.metadata.packages_distributions()
    undeclared = {
        module: where
        for module, where in imported.items()
        if not {_normalise(d) for d in distributions.get(module, [module])} & declared
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_fast_moving_dependencies_have_an_upper_bound_that_admits_the_installed_one() -> None:
    project = _project()
    requirements = [*project["dependencies"], *project["optional-dependencies"]["redis"]]  # type: ignore[index]
    for name in ("openai", "redis"):
        (spec,) = [r for r in requirements if _requirement_names([r]) == {name}]
        upper = re.search(r"<\s*([\d.]+)", spec)
        assert upper, f"{spec!r} has no upper bound"
        installed = importlib.metadata.version(name)
        assert _version(installed) < _version(upper.group(1)), f"{spec!r} refuses {installed}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])
