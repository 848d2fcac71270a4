"""The Redis storage against the shared conformance suite (server-side clock, conditional)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import quote

import pytest

from sessionkit import Storage
from sessionkit.testing import StorageConformance
from sessionkit_redis import RedisStorage

pytestmark = pytest.mark.redis


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (it was free a moment ago): connections fail
    at once with "connection refused", the way they do when the server is down."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestRedisStorage(StorageConformance):
    # Redis keeps the TTL itself, on its own clock: the suite waits in real time.
    clock_injectable = False
    conditional = True
    atomic = True
    creating = True
    processes_share_storage = True
    bad_urls = (
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
