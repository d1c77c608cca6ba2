"""Checking HTTP exchanges against an OpenAPI 3.1 document (Discord's), field by field.

Operations are found by method and concrete path (a literal segment wins over a
parameter); each one's validators are built on first use and kept, so a session pays
for a schema once. Errors inside a union are explained down to the alternative the
body meant, so a violation names the field that is wrong, not just "matches nothing".
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.discord_emulator.schema_speedups import inline_references, named_values_as_enums

# Two copies of the spec live in the registry: Discord accepts integer snowflakes in
# request bodies (discord.py sends ids as ints) while its answers always carry strings.
_REQUEST_URI = "urn:discord-openapi:request"
_RESPONSE_URI = "urn:discord-openapi:response"
_METHODS = ("get", "put", "post", "patch", "delete")


# Formats that matter to a client: discord.py parses timestamps with fromisoformat and
# follows URLs. Checked with the standard library (jsonschema's own checkers for these
# need extra packages and are skipped silently without them).
FORMATS = FormatChecker(formats=())
_INT32 = range(-(2**31), 2**31)


@FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    return not isinstance(value, str) or dt.datetime.fromisoformat(value).tzinfo is not None


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    return (
        not isinstance(value, str) or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$", value) is not None
    )


@FORMATS.checks("int32")
def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or value in _INT32


@dataclass(frozen=True)
class SpecViolation:
    """One request or 2xx answer that Discord's spec does not allow."""

    operation_id: str
    method: str
    template: str  # the spec's path template
    path: str  # the concrete path requested
    direction: str  # "request" or "response"
    status: int
    field: str  # JSON path, "$" for the whole body
    message: str

    def __str__(self) -> str:
        where = f"{self.status} response body"
        if self.direction == "request":
            where = "request" if self.field.startswith("query.") else "request body"
        return (
            f"{self.operation_id} ({self.method} {self.template}, path {self.path}): "
            f"{where} at {self.field}: {self.message}"
        )


@dataclass
class SpecStats:
    """What was checked: request bodies, 2xx answers, and how many of each were valid."""

    requests: int = 0
    requests_valid: int = 0
    responses: int = 0
    responses_valid: int = 0
    bodies: int = 0  # 2xx answers with a JSON body (the rest are 204s)
    bodies_valid: int = 0
    seconds: float = 0.0  # spent validating, to keep an eye on the suite's time

    def add(self, other: SpecStats) -> None:
        self.requests += other.requests
        self.requests_valid += other.requests_valid
        self.responses += other.responses
        self.responses_valid += other.responses_valid
        self.bodies += other.bodies
        self.bodies_valid += other.bodies_valid
        self.seconds += other.seconds

    def __str__(self) -> str:
        return (
            f"{self.requests_valid} of {self.requests} requests and "
            f"{self.responses_valid} of {self.responses} 2xx answers valid "
            f"({self.bodies_valid} of {self.bodies} with a body; {self.seconds:.2f}s validating)"
        )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass
class Operation:
    """One (method, path) of the spec and its lazily built validators."""

    spec: OpenApiSpec
    method: str
    template: str
    body: dict[str, Any]
    regex: re.Pattern[str]
    literal_segments: int
    _validators: dict[tuple[str, str], Draft202012Validator | None] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        return str(self.body.get("operationId") or f"{self.method} {self.template}")

    def _validator(self, uri: str, pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{uri}#{pointer}"}, registry=self.spec.registry, format_checker=FORMATS
        )

    def _pointer(self, *parts: str) -> str:
        tokens = ["paths", self.template, self.method.lower(), *parts]
        return "/" + "/".join(_escape(t) for t in tokens)

    def request_validator(self) -> Draft202012Validator | None:
        """The request body's validator; a multipart ``payload_json`` is the JSON body."""
        key = ("request", "")
        if key not in self._validators:
            content = (self.body.get("requestBody") or {}).get("content") or {}
            self._validators[key] = (
                self._validator(
                    _REQUEST_URI,
                    self._pointer("requestBody", "content", "application/json", "schema"),
                )
                if "application/json" in content
                else None
            )
        return self._validators[key]

    def query_validator(self, name: str) -> Draft202012Validator | None:
        """A declared query parameter's validator (None: the operation has no such one)."""
        key = ("query", name)
        if key not in self._validators:
            params = self.body.get("parameters") or []
            index = next(
                (i for i, p in enumerate(params) if p.get("in") == "query" and p["name"] == name),
                None,
            )
            self._validators[key] = (
                None
                if index is None
                else self._validator(
                    _REQUEST_URI, self._pointer("parameters", str(index), "schema")
                )
            )
        return self._validators[key]

    def request_required(self) -> bool:
        return bool((self.body.get("requestBody") or {}).get("required"))

    def response(self, status: int) -> tuple[str | None, Draft202012Validator | None]:
        """(the declared status key or None, the body's validator or None for no body)."""
        responses = self.body.get("responses") or {}
        declared = next(
            (k for k in (str(status), f"{str(status)[0]}XX") if k in responses),
            None,
        )
        if declared is None:
            return None, None
        key = ("response", declared)
        if key not in self._validators:
            content = responses[declared].get("content") or {}
            self._validators[key] = (
                self._validator(
                    _RESPONSE_URI,
                    self._pointer("responses", declared, "content", "application/json", "schema"),
                )
                if "application/json" in content
                else None
            )
        return declared, self._validators[key]


class OpenApiSpec:
    """Operations by method and path, with validators that resolve the spec's ``$ref``s."""

    def __init__(
        self,
        document: dict[str, Any],
        *,
        source: Path | None = None,
        allowed: Callable[[SpecViolation], bool] = lambda violation: False,
    ) -> None:
        self.source = source
        self.document = document
        self.allowed = allowed
        response_doc = named_values_as_enums(copy.deepcopy(document))
        request_doc = copy.deepcopy(response_doc)
        snowflake = request_doc["components"]["schemas"]["SnowflakeType"]
        request_doc["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0}]
        }
        inline_references(request_doc)
        inline_references(response_doc)
        self.registry: Registry[Any] = Registry().with_resources(
            [
                (_REQUEST_URI, Resource(contents=request_doc, specification=DRAFT202012)),
                (_RESPONSE_URI, Resource(contents=response_doc, specification=DRAFT202012)),
            ]
        )
        self.operations: dict[str, list[Operation]] = {}
        for template, item in document["paths"].items():
            pattern, literal = _template_regex(template)
            for method in _METHODS:
                if method in item:
                    op = Operation(self, method.upper(), template, item[method], pattern, literal)
                    self.operations.setdefault(method.upper(), []).append(op)
        # A literal segment wins over a parameter (``/thread-members/@me`` before ``{user_id}``).
        for ops in self.operations.values():
            ops.sort(key=lambda o: -o.literal_segments)

    def operation(self, method: str, path: str) -> Operation | None:
        for op in self.operations.get(method.upper(), ()):
            if op.regex.fullmatch(path):
                return op
        return None

    def check(
        self,
        method: str,
        path: str,
        *,
        request_body: Any,
        has_files: bool,
        status: int,
        response_body: Any,
        stats: SpecStats,
        query: Mapping[str, str] | None = None,
    ) -> list[SpecViolation]:
        """Violations of one exchange; an unknown operation is one itself."""
        op = self.operation(method, path)
        if op is None:
            return [
                SpecViolation(
                    "(none)", method, path, path, "request", status, "$",
                    "Discord's spec has no such operation",
                )
            ]  # fmt: skip
        found = list(self._check_request(op, path, request_body, has_files, status))
        found += self._check_query(op, path, query or {}, status)
        stats.requests += 1
        stats.requests_valid += not found
        if 200 <= status < 300:
            response = list(self._check_response(op, path, status, response_body))
            stats.responses += 1
            stats.responses_valid += not response
            if response_body is not None:
                stats.bodies += 1
                stats.bodies_valid += not response
            found += response
        kept = []
        for violation in found:
            if not self.allowed(violation):
                kept.append(violation)
        return kept

    def _check_request(
        self, op: Operation, path: str, body: Any, has_files: bool, status: int
    ) -> Iterator[SpecViolation]:
        def violation(at: str, message: str) -> SpecViolation:
            return SpecViolation(
                op.operation_id, op.method, op.template, path, "request", status, at, message
            )

        if body is None:
            if op.request_required() and not has_files:
                yield violation("$", "a request body is required")
            return
        validator = op.request_validator()
        if validator is None:
            yield violation("$", "this operation takes no JSON request body")
            return
        yield from (violation(at, msg) for at, msg in _errors(validator, body))

    @staticmethod
    def _check_query(
        op: Operation, path: str, query: Mapping[str, str], status: int
    ) -> list[SpecViolation]:
        found = []
        for name, raw in query.items():
            validator = op.query_validator(name)
            if validator is None:
                errors = [("", f"Discord's spec has no query parameter {name!r} here")]
            else:
                # A query string carries text: try it as the number it spells, and as a
                # boolean the way Discord reads one ("true", "True" or "1" is true, anything
                # else false: "Boolean Query Strings" in Discord's API reference).
                candidates: list[Any] = []
                if re.fullmatch(r"-?\d+", raw):
                    candidates.append(int(raw))
                candidates += [raw in ("true", "True", "1"), raw]
                tried = [list(_errors(validator, value)) for value in candidates]
                errors = [] if any(not e for e in tried) else tried[0]
            found += [
                SpecViolation(
                    op.operation_id, op.method, op.template, path, "request", status,
                    f"query.{name}{at[1:]}", message,
                )
                for at, message in errors
            ]  # fmt: skip
        return found

    def _check_response(
        self, op: Operation, path: str, status: int, body: Any
    ) -> Iterator[SpecViolation]:
        def violation(at: str, message: str) -> SpecViolation:
            return SpecViolation(
                op.operation_id, op.method, op.template, path, "response", status, at, message
            )

        declared, validator = op.response(status)
        if declared is None:
            yield violation("$", f"Discord does not answer {status} here")
        elif validator is None:
            if body is not None:
                yield violation("$", f"Discord's {status} answer here has no body")
        elif body is None:
            yield violation("$", f"Discord's {status} answer here has a JSON body")
        else:
            yield from (violation(at, msg) for at, msg in _errors(validator, body))


def _errors(validator: Draft202012Validator, body: Any) -> Iterator[tuple[str, str]]:
    """(JSON path, message) of each error, unions explained down to the alternative meant."""
    for error in validator.iter_errors(body):
        for leaf in _leaves(error):
            yield leaf.json_path, _short(leaf.message)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors inside the one alternative of a union (``oneOf``/``anyOf``) that fits.

    Discord's unions are told apart by a ``type`` value (or null against an object): an
    alternative that fails on that discriminator was not the one meant. When exactly one
    alternative is left, its own errors are the real ones; otherwise the union is.
    """
    if not error.context:
        yield error
        return
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [errs for errs in branches.values() if not any(map(_missed_discriminator, errs))]
    if len(meant) != 1:
        yield best_match([error]) or error
        return
    for sub in meant[0]:
        yield from _leaves(sub)


def _missed_discriminator(error: ValidationError) -> bool:
    path = list(error.relative_path)
    if not path:
        return error.validator in ("type", "const", "enum")
    return path == ["type"] and error.validator in ("const", "enum", "type")


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _template_regex(template: str) -> tuple[re.Pattern[str], int]:
    """A spec path template as a regex; also how many of its segments are literal."""
    out, pos = [], 0
    for m in re.finditer(r"\{[^}/]+\}", template):
        out.append(re.escape(template[pos : m.start()]))
        out.append("[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
    return re.compile("".join(out)), literal
