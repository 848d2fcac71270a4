"""Driver access (Fiber's ``Conn()``): the storage hands out the redis-py client it talks
through, sync and per event loop, for an operator's own commands on the same server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from sessionkit_redis import RedisStorage

pytestmark = pytest.mark.redis


def test_conn_reaches_the_records_under_the_prefix(redis_url: str) -> None:
    prefix = f"conn-test:{uuid.uuid4().hex}:"
    storage = RedisStorage(redis_url, prefix=prefix)
    try:
        storage.set("k", b"v", timedelta(minutes=1))
        client = storage.conn()
        assert client.ping()
        assert client.get(prefix + "k") == b"v"
    finally:
        storage.reset()
        storage.close()


def test_aconn_is_the_running_loops_client(redis_url: str) -> None:
    prefix = f"conn-test:{uuid.uuid4().hex}:"
    storage = RedisStorage(redis_url, prefix=prefix)

    async def use() -> bytes | None:
        await storage.aset("k", b"v", timedelta(minutes=1))
        client = storage.aconn()
        assert client is storage.aconn()  # one client per loop
        value: bytes | None = await client.get(prefix + "k")
        return value

    try:
        assert asyncio.run(use()) == b"v"
    finally:
        storage.reset()
        storage.close()
