"""The field types of the records: Discord ids (snowflakes) and UTC timestamps.

Every id is a Discord snowflake kept as a string of digits. Ids end up in file paths, so
anything else is rejected at the boundary rather than sanitised later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, ValidationInfo

__all__ = ["Snowflake", "Timestamp", "iso", "to_utc", "utcnow", "validate_snowflake"]

# Discord snowflakes are 64-bit integers: at most 20 decimal digits.
_MAX_SNOWFLAKE_DIGITS = 20


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.now(UTC)


def validate_snowflake(value: object, field: str = "id") -> str:
    """Return ``value`` as a digit string, or raise ``ValueError`` naming ``field``."""
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a string of digits (a Discord id), got {value!r}")
    if isinstance(value, int):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value
        or not value.isascii()
        or not value.isdigit()
        or len(value) > _MAX_SNOWFLAKE_DIGITS
    ):
        raise ValueError(f"{field} must be a string of digits (a Discord id), got {value!r}")
    return value


def _coerce_int_id(value: object) -> object:
    # discord.py hands out ids as ints; accept them, but nothing else that is not already a str.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_snowflake(value: str, info: ValidationInfo) -> str:
    return validate_snowflake(value, info.field_name or "id")


Snowflake = Annotated[str, BeforeValidator(_coerce_int_id), AfterValidator(_check_snowflake)]
"""A Discord id as a string of digits."""


def to_utc(value: datetime) -> datetime:
    # Naive datetimes are read as UTC: everything Echo writes carries an offset anyway.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: datetime) -> str:
    # pydantic would write "Z"; DESIGN.md promises an explicit "+00:00" offset.
    return value.isoformat()


Timestamp = Annotated[
    datetime, AfterValidator(to_utc), PlainSerializer(iso, return_type=str, when_used="json")
]
"""A timezone-aware UTC datetime written as ISO 8601 with ``+00:00``."""
