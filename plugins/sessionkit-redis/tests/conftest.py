"""Fixtures for the Redis plugin's tests: a key root per run, a storage per test, raw access.

The tests may share the machine's Redis (127.0.0.1:6379) with other users, so every key they
write lives under one root unique to this run, and that root is deleted when the run ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from sessionkit_redis import RedisStorage
from sessionkit_redis._storage import glob_escape


@pytest.fixture(scope="session")
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test server, for looking behind the storage's back."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def key_root(raw: redis.Redis) -> Iterator[str]:
    """The prefix under which every key of this run lives; emptied at the end of the run."""
    root = f"sessionkit-test:{uuid.uuid4().hex[:12]}:"
    yield root
    for name in raw.scan_iter(match=glob_escape(root) + "*", count=1000):
        raw.unlink(name)


@pytest.fixture
def prefix(key_root: str) -> str:
    """A prefix of this test's own."""
    return f"{key_root}{uuid.uuid4().hex[:8]}:"


@pytest.fixture(params=["*", "?", "[ab]", "\\", "[", "]"])
def glob_prefix(
    request: pytest.FixtureRequest, raw: redis.Redis, key_root: str
) -> tuple[str, list[str]]:
    """A fresh prefix holding a glob metacharacter, and bystanders: keys set beside it (to
    ``b"keep"``) that the prefix, read as a pattern, would match (or that are its own text)."""
    base = f"{key_root}{uuid.uuid4().hex[:6]}"
    prefix = f"{base}{request.param}:"
    candidates = [f"{base}:k", f"{base}a:k", f"{base}ab:k", f"{base}\\:k", f"{base}{request.param}"]
    bystanders = [name for name in candidates if not name.startswith(prefix)]
    for name in bystanders:
        raw.set(name, b"keep")
    return prefix, bystanders


@pytest.fixture
def storage(redis_url: str, prefix: str) -> Iterator[RedisStorage]:
    """A storage built from the URL, as ``open_storage`` builds it."""
    storage = RedisStorage(redis_url, prefix=prefix)
    yield storage
    storage.close()
