"""How long a storage call takes to fail when the server stops answering, against real faults.

Three faults, each on a private server or socket (never the shared Redis): the server frozen
(``SIGSTOP``: its socket accepts, nothing answers), a black hole (a socket that accepts and
never answers a byte), and the server killed (connections refused). Each must end in a
:class:`~sessionkit.StorageError` within the documented bound plus a second: ``pool_timeout``
(only while every connection is busy) plus ``socket_timeout``. Most tests configure short
timeouts to stay fast; one per fault kind runs on the defaults (2 + 3 = 5 s).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from sessionkit import StorageError
from sessionkit_redis import RedisStorage
from tests._servers import ServerProcess, start_redis
from tests.security._faults import StalledServer

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)
SHORT = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "pool_timeout": 0.3}
SLACK = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_redis()
    yield server
    server.close()


def _time_failure(call: Callable[[], Any]) -> float:
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    assert isinstance(caught.value.__cause__, (redis.RedisError, OSError))
    return time.monotonic() - began


def _atime_failure(storage: RedisStorage, key: str) -> float:
    async def run() -> float:
        began = time.monotonic()
        with pytest.raises(StorageError):
            await storage.aget(key)
        took = time.monotonic() - began
        return took

    return asyncio.run(run())


def test_a_frozen_server_fails_a_call_within_socket_timeout(server: ServerProcess) -> None:
    storage = RedisStorage(server.url, **SHORT)
    storage.set("k", b"v", HOUR)  # a live connection, kept by the storage
    try:
        with server.frozen():
            assert _time_failure(lambda: storage.get("k")) < 0.5 + SLACK
            assert _atime_failure(storage, "k") < 0.5 + SLACK
        assert storage.get("k") == b"v"  # thawed: the next call reconnects and succeeds
    finally:
        storage.close()


def test_a_frozen_server_under_load_fails_every_call_within_the_bound(
    server: ServerProcess,
) -> None:
    """200 calls in flight over 4 connections: the 4 wait ``socket_timeout``, the others
    ``pool_timeout`` for a connection, and none longer than both together."""
    storage = RedisStorage(server.url, max_connections=4, **SHORT)

    async def run() -> list[tuple[bool, float]]:
        await asyncio.gather(*(storage.aset(f"k{n}", b"v", HOUR) for n in range(10)))

        async def one(n: int) -> tuple[bool, float]:
            began = time.monotonic()
            try:
                await storage.aget(f"k{n % 10}")
            except StorageError:
                return False, time.monotonic() - began
            return True, time.monotonic() - began

        with server.frozen():
            return await asyncio.gather(*(one(n) for n in range(200)))

    try:
        results = asyncio.run(run())
    finally:
        storage.close()
    assert not any(ok for ok, _ in results)
    assert max(took for _, took in results) < 0.3 + 0.5 + SLACK


def test_a_black_hole_fails_a_call_within_socket_timeout() -> None:
    with StalledServer() as stalled:
        storage = RedisStorage(f"redis://127.0.0.1:{stalled.port}/0", **SHORT)
        try:
            assert _time_failure(lambda: storage.get("k")) < 0.5 + SLACK
            assert _atime_failure(storage, "k") < 0.5 + SLACK
        finally:
            storage.close()


def test_a_killed_server_fails_a_call_at_once() -> None:
    server = start_redis()
    storage = RedisStorage(server.url, **SHORT)
    try:
        storage.set("k", b"v", HOUR)
        server.kill()
        assert _time_failure(lambda: storage.get("k")) < SLACK
        assert _atime_failure(storage, "k") < SLACK
    finally:
        storage.close()
        server.close()


def test_timeouts_are_never_retried_by_default(server: ServerProcess) -> None:
    """redis-py's client would retry ten times; a pool made by the storage retries none, so
    nothing multiplies ``socket_timeout``."""
    storage = RedisStorage(server.url)
    try:
        storage.set("k", b"v", HOUR)
        conn = storage._lane.client.connection_pool._connections[0]  # type: ignore[union-attr]
        assert conn.retry.get_retries() == 0
    finally:
        storage.close()


def test_with_the_defaults_a_frozen_server_fails_within_five_seconds(
    server: ServerProcess,
) -> None:
    storage = RedisStorage(server.url)
    storage.set("k", b"v", HOUR)
    try:
        with server.frozen():
            took = _time_failure(lambda: storage.get("k"))
        assert 2.5 < took < 5 + SLACK
    finally:
        storage.close()
