"""Rewrites of an OpenAPI document that allow the same bodies but validate faster.

A test session validates a couple of thousand bodies; jsonschema spends most of that in
``oneOf`` branches that each make an error object and in ``$ref`` lookups. Both rewrites
here keep the meaning of every schema, so a body is valid after them exactly when it was
valid before.
"""

from __future__ import annotations

import json
from typing import Any

_ANNOTATIONS = frozenset({"title", "description"})
_SCHEMAS = "#/components/schemas/"


def named_values_as_enums(node: Any) -> Any:
    """Rewrite each ``oneOf`` of named constants (Discord's enums) as the ``enum`` it means.

    The same values are allowed either way, but a ``oneOf`` tries every branch and makes
    an error object for each miss (for ``MessageType``, dozens per message).
    """
    if isinstance(node, list):
        for item in node:
            named_values_as_enums(item)
    elif isinstance(node, dict):
        branches = node.get("oneOf")
        if (
            isinstance(branches, list)
            and branches
            and all(
                isinstance(b, dict) and "const" in b and set(b) - {"const"} <= _ANNOTATIONS
                for b in branches
            )
        ):
            values = [b["const"] for b in branches]
            if len({json.dumps(v) for v in values}) == len(values):
                del node["oneOf"]
                node["enum"] = values
        for value in node.values():
            named_values_as_enums(value)
    return node


def _refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            found.add(ref[len(_SCHEMAS) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)
    return found


def _recursive(graph: dict[str, set[str]]) -> set[str]:
    """The schemas that can reach themselves through references."""
    result = set()
    for start in graph:
        stack, seen = list(graph[start]), set()
        while stack:
            name = stack.pop()
            if name == start:
                result.add(start)
                break
            if name in seen or name not in graph:
                continue
            seen.add(name)
            stack.extend(graph[name])
    return result


def inline_references(document: dict[str, Any]) -> dict[str, Any]:
    """Replace each ``$ref`` to a non-recursive component schema by that schema itself.

    Only a reference with nothing but annotations beside it is replaced, and the schema
    is shared, not copied. References into a cycle stay references.
    """
    schemas: dict[str, Any] = document["components"]["schemas"]
    graph = {name: _refs(schema, set()) for name, schema in schemas.items()}
    keep = _recursive(graph)
    walked: set[int] = set()

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if (
                isinstance(ref, str)
                and ref.startswith(_SCHEMAS)
                and ref[len(_SCHEMAS) :] in schemas
                and ref[len(_SCHEMAS) :] not in keep
                and set(node) - {"$ref"} <= _ANNOTATIONS
            ):
                return walk(schemas[ref[len(_SCHEMAS) :]])
            return walk(node)
        if isinstance(node, list):
            return walk(node)
        return node

    def walk(node: Any) -> Any:
        if id(node) in walked:
            return node
        walked.add(id(node))
        if isinstance(node, dict):
            for key in list(node):
                node[key] = inline(node[key])
        elif isinstance(node, list):
            node[:] = [inline(item) for item in node]
        return node

    walk(document)
    return document
