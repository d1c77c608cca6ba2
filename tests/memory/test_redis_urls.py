"""REDIS_URL as logs show it (never the password) and as settings check it."""

from __future__ import annotations

import pytest

from memory.stores.redis.urls import check_redis_url, redis_address, shown_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@h:1/0", "redis://***@h:1/0"),
        ("redis://bob:hunter2@h:1/0", "redis://bob:***@h:1/0"),
        ("redis://bob:p@ss@word@h:1/0", "redis://bob:***@h:1/0"),
        ("redis://h:1/0?password=hunter2&db=1", "redis://h:1/0?password=***&db=1"),
        ("unix:///run/redis.sock?password=hunter2", "unix:///run/redis.sock?password=***"),
    ],
)
def test_shown_url_masks_every_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://:pw@10.0.0.5:6380/0", "10.0.0.5:6380"),
        ("rediss://cache.example", "cache.example:6379"),
        ("redis://[::1]:7000/0", "[::1]:7000"),
        ("unix:///run/redis.sock", "/run/redis.sock"),
    ],
)
def test_redis_address_is_host_and_port(url: str, address: str) -> None:
    assert redis_address(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://:hunter2@h:1/0",
        "redis://:hunter2@h:port/0",
        "redis://:hunter2@h:99999/0",
        "redis://:hunter2@:6379/0",
        "redis://:hunter2@h:6379/db",
        "unix://",
    ],
)
def test_a_bad_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_redis_url(url)
    assert "hunter2" not in str(caught.value)


def test_good_urls_pass() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://u:p@h/3", "unix:///tmp/r.sock?db=1"):
        check_redis_url(url)
