"""The Redis storage against the shared conformance suite (server-side clock, conditional):
on one server, on a Redis Cluster URL, and on a Sentinel URL whose writes wait for a replica.

On the cluster and the Sentinel URLs, the checks that wait for a TTL to run out in real time
(Redis keeps its own clock: 1.2 s each, about 25 per class) run up to their wait and stop
there, skipped: what follows is the server's expiry, which the topology does not change and
``TestRedisStorage`` checks in full. The writes with TTLs before the wait do run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import ClassVar
from urllib.parse import quote, urlsplit

import pytest

from sessionkit import Storage
from sessionkit.testing import Harness, StorageConformance, closed_port
from sessionkit_redis import RedisStorage

pytestmark = pytest.mark.redis


class TestRedisStorage(StorageConformance):
    # Redis keeps the TTL itself, on its own clock: the suite waits in real time.
    clock_injectable = False
    conditional = True
    atomic = True
    creating = True
    processes_share_storage = True
    bad_urls: ClassVar[Sequence[str]] = (
        "redis://127.0.0.1:6379/0?prefx=a",
        "redis://127.0.0.1:6379/0?prefix=",
        "redis://127.0.0.1:6379/0?socket_timeout=-1",
        "redis://127.0.0.1:6379/0?timeout=2",
    )

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, key_root: str) -> None:
        self.url = redis_url
        self.root = key_root

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is None
        return RedisStorage(self.url, prefix=f"{self.root}{namespace}:")

    def make_broken_storage(self, namespace: str) -> Storage:
        return RedisStorage(f"redis://127.0.0.1:{closed_port()}/0", prefix=f"{namespace}:")

    def storage_url(self, namespace: str) -> str:
        separator = "&" if "?" in self.url else "?"
        return f"{self.url}{separator}prefix={quote(f'{self.root}{namespace}:')}"


def _netloc(url: str) -> str:
    """``host:port`` of a ``redis://host:port/0`` URL."""
    return urlsplit(url).netloc


class _NoRealTimeWaits:
    """Skip a check where it would sleep for a TTL to run out (see the module's note)."""

    @pytest.fixture(autouse=True)
    def _no_real_time_waits(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def wait(harness: Harness, seconds: float) -> None:
            pytest.skip(
                "waits for the server's clock in real time: expiry is checked in full by "
                "TestRedisStorage, on one server"
            )

        monkeypatch.setattr(Harness, "wait", wait)


class TestRedisClusterStorage(_NoRealTimeWaits, TestRedisStorage):
    """A ``redis+cluster://`` URL: every operation routed by key, the walks over every primary."""

    bad_urls: ClassVar[Sequence[str]] = (
        "redis+cluster://127.0.0.1:7000/1",
        "redis+cluster://127.0.0.1:7000?db=2",
        "redis+cluster://",
        "redis+cluster://127.0.0.1:7000,,127.0.0.1:7001",
        "redis+cluster://127.0.0.1:7000?read_from_replicas=true",
        "redis+cluster://127.0.0.1:7000?pool_timeout=1",
        "redis+cluster://127.0.0.1:7000?wait_replicas=1",
        "rediss+cluster://127.0.0.1:7000?prefx=a",
    )

    @pytest.fixture(autouse=True)
    def _server(self, redis_cluster_url: str) -> None:
        self.url = f"redis+cluster://{_netloc(redis_cluster_url)}"
        self.root = f"sessionkit-test:{uuid.uuid4().hex[:12]}:"

    def make_broken_storage(self, namespace: str) -> Storage:
        return RedisStorage(f"redis+cluster://127.0.0.1:{closed_port()}", prefix=f"{namespace}:")


class TestRedisSentinelStorage(_NoRealTimeWaits, TestRedisStorage):
    """A ``redis+sentinel://`` URL, every write waiting for the replica (``wait_replicas=1``):
    the primary found through the Sentinels, each write followed by ``WAIT``."""

    bad_urls: ClassVar[Sequence[str]] = (
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel:///mymaster",
        "redis+sentinel://127.0.0.1:26379/mymaster/x",
        "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_pasword=x",
        "redis+sentinel://127.0.0.1:26379/mymaster?sentinel_socket_timeout=0",
        "redis+sentinel://127.0.0.1:26379/mymaster?wait_replicas=1&wait_timeout=5",
        "valkey+sentinel://127.0.0.1:26379/mymaster?prefx=a",
    )

    @pytest.fixture(autouse=True)
    def _server(self, redis_sentinel_url: str) -> None:
        separator = "&" if "?" in redis_sentinel_url else "?"
        self.url = f"{redis_sentinel_url}{separator}wait_replicas=1"
        self.root = f"sessionkit-test:{uuid.uuid4().hex[:12]}:"

    def make_broken_storage(self, namespace: str) -> Storage:
        sentinels = f"127.0.0.1:{closed_port()},127.0.0.1:{closed_port()}"
        return RedisStorage(f"redis+sentinel://{sentinels}/mymaster", prefix=f"{namespace}:")
