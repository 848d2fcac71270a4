"""The Redis storage against the shared conformance suite (server-side clock, conditional)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_redis import RedisStorage

pytestmark = pytest.mark.redis


class TestRedisStorage(StorageConformance):
    # Redis keeps the TTL itself, on its own clock: the suite waits in real time.
    clock_injectable = False
    conditional = True
    atomic = True
    creating = True

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, key_root: str) -> None:
        self.url = redis_url
        self.root = key_root

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is None
        return RedisStorage(self.url, prefix=f"{self.root}{namespace}:")
