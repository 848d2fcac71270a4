"""A suite run leaves nothing behind on a shared server: every key it wrote is gone."""

from __future__ import annotations

import uuid

import pytest
import redis

from .conftest import RunSuite

pytestmark = pytest.mark.redis


def test_a_redis_run_leaves_no_keys(run_suite: RunSuite, redis_url: str) -> None:
    root = f"sessionkit-cleanup:{uuid.uuid4().hex[:10]}:"
    run = run_suite(
        f"""
from sessionkit.testing import StorageConformance
from sessionkit_redis import RedisStorage

class TestRedis(StorageConformance):
    atomic = True
    creating = True
    def make_storage(self, namespace, clock):
        return RedisStorage({redis_url!r}, prefix={root!r} + namespace + ":")
""",
        # Tests that write and then close, write to two namespaces, race, and fail midway.
        "close_is_idempotent or namespaces_do_not_share or odd_keys_are_stored "
        "or take_is_atomic or scan_yields",
    )
    assert run.outcomes and set(run.outcomes.values()) == {"passed"}, run.outcomes
    client = redis.Redis.from_url(redis_url)
    try:
        left = list(client.scan_iter(match=f"{root}*", count=1000))
        for name in left:
            client.unlink(name)
    finally:
        client.close()
    assert left == [], f"the suite left {len(left)} keys under its prefix"
