"""How a storage on a Sentinel URL follows the primary, without a failover (the shared set).

The failovers themselves are in ``test_failover.py``; here the storage is made to believe the
Sentinels named another server, and the checks are counted.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit_redis import RedisStorage
from sessionkit_redis._lane import SyncLane

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)


@pytest.fixture
def url(redis_sentinel_url: str) -> str:
    separator = "&" if "?" in redis_sentinel_url else "?"
    return f"{redis_sentinel_url}{separator}prefix=sentinel:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def storage(url: str) -> Iterator[RedisStorage]:
    storage = RedisStorage(url)
    yield storage
    storage.reset()
    storage.close()


def test_a_connection_to_another_server_than_the_named_primary_reconnects(
    storage: RedisStorage,
) -> None:
    storage.set("k", b"v", HOUR)
    lane = storage._sync_lane()
    (conn,) = lane._idle
    sock = conn._sock
    pool: Any = lane.client.connection_pool  # type: ignore[union-attr]
    primary = pool.master_address
    pool.proxy.master_address = ("127.0.0.1", 1)  # as if the Sentinels had named another
    assert storage.get("k") == b"v"  # reconnected through the Sentinels, to the real one
    assert conn._sock is not sock and pool.master_address == primary


async def test_an_async_connection_to_another_server_reconnects(url: str) -> None:
    storage = RedisStorage(url)
    await storage.aset("k", b"v", HOUR)
    lane = storage._async_lane_here()
    (conn,) = lane._idle
    reader = conn._reader
    pool: Any = lane.client.connection_pool  # type: ignore[union-attr]
    primary = pool.master_address
    pool.master_address = ("127.0.0.1", 1)
    assert await storage.aget("k") == b"v"
    assert conn._reader is not reader and pool.master_address == primary
    await storage.areset()
    await storage.aclose()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_sentinels_are_asked_every_check_interval(
    url: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once per ``sentinel_check_interval`` whatever the traffic, by one call only."""
    storage = RedisStorage(f"{url}&sentinel_check_interval=0.1")
    asked: list[float] = []

    def counting(lane: Any) -> None:
        original = lane._sentinel_pool.get_master_address

        def ask() -> Any:
            asked.append(time.monotonic())
            return original()

        async def aask() -> Any:
            asked.append(time.monotonic())
            return await original()

        monkeypatch.setattr(lane._sentinel_pool, "get_master_address", ask)
        if mode == "async":
            monkeypatch.setattr(lane._sentinel_pool, "get_master_address", aask)

    during: list[float] = []
    if mode == "sync":
        storage.set("k", b"v", HOUR)
        counting(storage._sync_lane())
        began = time.monotonic()
        while time.monotonic() - began < 0.55:
            storage.get("k")
        during = list(asked)
        storage.reset()
    else:

        async def run() -> None:
            await storage.aset("k", b"v", HOUR)
            counting(storage._async_lane_here())
            began = time.monotonic()
            while time.monotonic() - began < 0.55:
                await storage.aget("k")
            during.extend(asked)
            await storage.areset()
            await storage.aclose()

        asyncio.run(run())
    storage.close()
    assert 4 <= len(during) <= 7, during
    assert min(later - earlier for earlier, later in itertools.pairwise(during)) >= 0.095


def test_no_checks_when_the_interval_is_zero(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = RedisStorage(f"{url}&sentinel_check_interval=0")
    storage.set("k", b"v", HOUR)
    lane = storage._sync_lane()
    monkeypatch.setattr(SyncLane, "check_primary", lambda self: pytest.fail("asked"))
    for _ in range(50):
        storage.get("k")
    assert lane._check_every is None
    storage.reset()
    storage.close()
