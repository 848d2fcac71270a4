"""Many calls in flight at once, against the real server: they queue for a connection, they
do not fail.

redis-py's default pool refuses the 101st concurrent connection ("Too many connections"),
which under a real server answered 503 to most requests of 200 concurrent clients. The
storage's pools block instead: past ``max_connections`` a call waits, up to ``pool_timeout``,
for a connection to come back, and only a storage that stays busy or stalled that long fails.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis

from sessionkit import StorageError
from sessionkit_redis import RedisStorage
from tests.security._faults import StalledServer

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)


def _connections_named(raw: redis.Redis, name: str) -> int:
    return sum(1 for client in raw.client_list() if client.get("name") == name)


@pytest.fixture
def client_name() -> str:
    return f"sk-conc-{uuid.uuid4().hex[:8]}"


def test_500_calls_in_flight_on_one_loop_all_succeed(redis_url: str, prefix: str) -> None:
    """Default settings: 500 tasks each write then read their own key, all at once."""
    storage = RedisStorage(redis_url, prefix=prefix)

    async def one(n: int) -> bytes | None:
        await storage.aset(f"k{n}", b"v%d" % n, HOUR)
        return await storage.aget(f"k{n}")

    async def all_at_once() -> list[object]:
        try:
            return await asyncio.gather(*(one(n) for n in range(500)), return_exceptions=True)
        finally:
            await storage.aclose()

    results = asyncio.run(all_at_once())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == [], f"{len(errors)} of 500 failed, first: {errors[:1]!r}"
    assert results == [b"v%d" % n for n in range(500)]


def test_200_threads_at_once_all_succeed(redis_url: str, prefix: str) -> None:
    """Default settings: 200 threads, released together, each write and read 5 times."""
    storage = RedisStorage(redis_url, prefix=prefix)
    start = threading.Barrier(200)

    def one(n: int) -> list[bytes | None]:
        start.wait()
        got = []
        for i in range(5):
            storage.set(f"k{n}", b"%d-%d" % (n, i), HOUR)
            got.append(storage.get(f"k{n}"))
        return got

    try:
        with ThreadPoolExecutor(200) as pool:
            futures = [pool.submit(one, n) for n in range(200)]
            outcomes = [f.exception() or f.result() for f in futures]
    finally:
        storage.close()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert errors == [], f"{len(errors)} of 200 threads failed, first: {errors[:1]!r}"
    assert outcomes == [[b"%d-%d" % (n, i) for i in range(5)] for n in range(200)]


def test_the_bound_makes_async_callers_wait_not_fail(
    redis_url: str, prefix: str, raw: redis.Redis, client_name: str
) -> None:
    """Two connections for 300 calls: every call succeeds, and the server never sees more
    than two connections of this storage."""
    storage = RedisStorage(redis_url, prefix=prefix, max_connections=2, client_name=client_name)
    most = 0

    async def watch(stop: asyncio.Event) -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, await asyncio.to_thread(_connections_named, raw, client_name))
            await asyncio.sleep(0.005)

    async def run() -> list[object]:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        try:
            calls = (storage.aset(f"k{n % 7}", b"x" * 1000, HOUR) for n in range(300))
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            stop.set()
            await watcher
            await storage.aclose()

    results = asyncio.run(run())
    assert [r for r in results if r is not None] == []
    assert 1 <= most <= 2


def test_the_bound_makes_threads_wait_not_fail(
    redis_url: str, prefix: str, raw: redis.Redis, client_name: str
) -> None:
    storage = RedisStorage(redis_url, prefix=prefix, max_connections=3, client_name=client_name)
    try:
        with ThreadPoolExecutor(40) as pool:
            futures = [pool.submit(storage.set, f"k{n}", b"v", HOUR) for n in range(400)]
            errors = [f.exception() for f in futures if f.exception() is not None]
        assert errors == []
        assert _connections_named(raw, client_name) <= 3
        assert storage.count() == 400  # the walk gets a connection beside the lane's
    finally:
        storage.close()


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    with StalledServer() as server:
        yield server


def test_a_wait_past_pool_timeout_is_a_storage_error_async(stalled: StalledServer) -> None:
    """One connection, held by a call the server never answers: the next call waits
    ``pool_timeout`` for it, then fails, well before the first call's socket timeout."""
    storage = RedisStorage(
        f"redis://127.0.0.1:{stalled.port}/0", max_connections=1, pool_timeout=0.3,
        socket_timeout=3,
    )  # fmt: skip

    async def run() -> tuple[BaseException | None, float]:
        holder = asyncio.create_task(storage.aget("held"))
        await asyncio.sleep(0.1)  # the holder has the one connection now
        began = time.monotonic()
        try:
            await storage.aget("waiting")
        except StorageError as exc:
            caught: BaseException | None = exc
        else:
            caught = None
        waited = time.monotonic() - began
        holder.cancel()
        await asyncio.gather(holder, return_exceptions=True)
        return caught, waited

    caught, waited = asyncio.run(run())
    assert isinstance(caught, StorageError)
    assert isinstance(caught.__cause__, redis.ConnectionError)
    assert 0.25 <= waited < 1.0
    storage.close()


def test_a_wait_past_pool_timeout_is_a_storage_error_sync(stalled: StalledServer) -> None:
    storage = RedisStorage(
        f"redis://127.0.0.1:{stalled.port}/0", max_connections=1, pool_timeout=0.3,
        socket_timeout=2,
    )  # fmt: skip

    def hold() -> None:
        with pytest.raises(StorageError):
            storage.get("held")

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        storage.get("waiting")
    waited = time.monotonic() - began
    holder.join()
    storage.close()
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert 0.25 <= waited < 1.0
