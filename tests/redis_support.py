"""Real Redis for the tests: the shared server, a private prefix per test, private servers,
and a Redis Cluster.

Tests that need Redis take the ``redis_url`` fixture. It answers with ``REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). If nothing answers there, the test fails under ``CI=true``
(``.ci/run`` starts a server first) and is skipped, with the reason, on a laptop.

A test (or module) marked ``redis_backends`` runs twice: on that server, and on a Redis Cluster
at ``TEST_REDIS_CLUSTER_URL`` (default ``redis://127.0.0.1:7000/0``, any node of it; ``.ci/run``
starts a three-node one). Its ``redis_cluster`` fixture says which (``RedisStore(...,
cluster=redis_cluster)``); ``redis_url`` names the server or the cluster's node. A cluster that
does not answer fails the test under ``CI=true`` and skips it on a laptop, as a server does.
(Not ``REDIS_...``: Echo warns about a variable that looks like one of its settings.)

Every test gets its own key prefix (``redis_prefix``), removed afterwards, so tests never see
each other's keys and never need FLUSHALL. A test that stops or kills Redis must not do it to
the shared server: ``private_redis`` starts one of its own on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_REDIS_CLUSTER_URL = "redis://127.0.0.1:7000/0"
BACKENDS_MARK = "redis_backends"


def shared_redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def cluster_redis_url() -> str:
    return os.environ.get("TEST_REDIS_CLUSTER_URL") or DEFAULT_REDIS_CLUSTER_URL


def _ping(url: str, cluster: bool = False) -> str | None:
    """None if Redis (a whole cluster, with ``cluster``) answers at ``url``, else why not."""
    try:
        import redis
    except ImportError:
        return "the 'redis' package is not installed (pip install -e '.[dev,redis]')"
    if cluster:
        try:
            with sync_client(url, cluster=True) as client:
                state = client.cluster_info().get("cluster_state")
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            return f"no Redis Cluster answers at {url}: {exc}"
        return None if state == "ok" else f"the Redis Cluster at {url} is {state}, not ok"
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis answers at {url}: {exc}"
    finally:
        client.close()
    return None


def sync_client(url: str, *, cluster: bool = False) -> Any:
    """A blocking client of the server, or of the whole cluster (``redis.RedisCluster``, which
    sends each command to the node of its key); use it in a ``with`` block."""
    import redis

    if cluster:
        return redis.RedisCluster.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    return redis.Redis.from_url(url)


def async_client(url: str, *, cluster: bool = False) -> Any:
    """An asyncio client of the server or of the whole cluster (close it with ``aclose``)."""
    from redis.asyncio import Redis, RedisCluster

    return RedisCluster.from_url(url) if cluster else Redis.from_url(url)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_redis_package() -> None:
    """For test modules that import redis: a missing extra fails under CI, skips on a laptop."""
    try:
        import redis  # noqa: F401
    except ImportError:
        why = "the 'redis' package is not installed (pip install -e '.[dev,redis]')"
        if _in_ci():
            pytest.fail(f"{why} (CI=true: Redis tests must run)", pytrace=False)
        pytest.skip(why, allow_module_level=True)


def require_redis(url: str, *, cluster: bool = False) -> None:
    problem = _ping(url, cluster)
    if problem is None:
        return
    if _in_ci():
        pytest.fail(f"{problem} (CI=true: Redis tests must run; .ci/run starts a server)")
    if cluster:
        pytest.skip(
            f"{problem}; start a Redis Cluster (as .ci/run does) or set TEST_REDIS_CLUSTER_URL to "
            "run the Redis tests on a cluster"
        )
    pytest.skip(f"{problem}; start redis-server or set REDIS_URL to run the Redis tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BACKENDS_MARK}: run on one Redis server and on a Redis Cluster (TEST_REDIS_CLUSTER_URL)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "redis_cluster" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        BACKENDS_MARK
    ):
        metafunc.parametrize(
            "redis_cluster", [False, True], ids=["redis", "redis-cluster"], indirect=True
        )


@pytest.fixture
def redis_cluster(request: pytest.FixtureRequest) -> bool:
    """Whether this run of the test is on the Redis Cluster (only ``redis_backends`` tests)."""
    return bool(getattr(request, "param", False))


@pytest.fixture
def redis_url(redis_cluster: bool) -> str:
    url = cluster_redis_url() if redis_cluster else shared_redis_url()
    require_redis(url, cluster=redis_cluster)
    return url


@pytest.fixture
def redis_prefix(redis_url: str, redis_cluster: bool) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    prefix = f"echotest-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(redis_url, prefix, cluster=redis_cluster)


def delete_prefix(url: str, prefix: str, *, cluster: bool = False) -> None:
    with sync_client(url, cluster=cluster) as client:
        for pattern in (f"{prefix}:*", f"{prefix}"):
            batch = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of one test's own, on loopback, which the test may stop and restart."""

    def __init__(
        self, directory: Path, *, persist: bool = False, password: str | None = None
    ) -> None:
        """``persist``: an append-only file in ``directory``, so a restart keeps the data.
        ``password``: the server wants it (``--requirepass``); ``url`` carries it."""
        self.directory = directory
        self.persist = persist
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """A URL that gets in (with the password, if the server wants one)."""
        return self.url_as(None, self.password)

    def url_as(self, user: str | None, password: str | None) -> str:
        """The URL of this server with these credentials (none: ``redis://host:port/0``)."""
        if password is None:
            return f"redis://{user + '@' if user else ''}{self.address}/0"
        return f"redis://{user or ''}:{password}@{self.address}/0"

    def add_user(self, name: str, password: str, *rules: str) -> None:
        """An ACL user (``ACL SETUSER name on >password rules...``)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            client.execute_command("ACL", "SETUSER", name, "on", f">{password}", *rules)
        finally:
            client.close()

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persist else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while _ping(self.url) is not None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"private redis-server on {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (with ``persist``, a restart finds the data again)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started redis-server of this test's own (keeping its data across restarts in an
    append-only file); stopped after the test."""
    if shutil.which("redis-server") is None:
        if _in_ci():
            pytest.fail("redis-server is not installed (CI=true: Redis tests must run)")
        pytest.skip("redis-server is not installed; install it to run this Redis test")
    server = PrivateRedis(tmp_path / "private-redis", persist=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
