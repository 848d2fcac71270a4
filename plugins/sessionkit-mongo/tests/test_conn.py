"""Driver access (Fiber's ``Conn()``): the storage hands out the pymongo collection it keeps
its sessions in, sync and per event loop, for an operator's own queries."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from sessionkit_mongo import MongoStorage

pytestmark = pytest.mark.mongo


def test_conn_is_the_collection_of_the_records(mongo_url: str) -> None:
    storage = MongoStorage(mongo_url, collection=f"conn_{uuid.uuid4().hex[:8]}")
    try:
        storage.set("k", b"v", timedelta(minutes=1))
        collection = storage.conn()
        assert collection.name == storage.collection
        assert collection.count_documents({}) == 1
    finally:
        storage.drop()
        storage.close()


def test_aconn_is_the_running_loops_collection(mongo_url: str) -> None:
    storage = MongoStorage(mongo_url, collection=f"conn_{uuid.uuid4().hex[:8]}")

    async def use() -> int:
        await storage.aset("k", b"v", timedelta(minutes=1))
        collection = await storage.aconn()
        count: int = await collection.count_documents({})
        return count

    try:
        assert asyncio.run(use()) == 1
    finally:
        storage.drop()
        storage.close()
