"""How long a storage call takes to fail when the server stops answering, against real faults.

Faults on a private SecantusDB or socket: the server frozen (``SIGSTOP``), a black hole (a
socket that accepts and never answers), the server killed. Each must end in a
:class:`~sessionkit.StorageError` within ``timeoutMS`` plus a second, retries and server
selection included. Before ``timeoutMS`` bounded the call, a frozen server took the socket
timeout for the read and then the server selection timeout for pymongo's retry: 15 s with
the defaults, where the docs said 5.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pymongo.errors
import pytest

from sessionkit import StorageError
from sessionkit_mongo import MongoStorage
from tests._servers import ServerProcess, start_mongo
from tests.security._faults import StalledServer

pytestmark = pytest.mark.mongo

HOUR = timedelta(hours=1)
SHORT = {"timeoutMS": 800, "serverSelectionTimeoutMS": 800, "connectTimeoutMS": 800}
SLACK = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    server = start_mongo()
    yield server
    server.kill()  # a server thawed from SIGSTOP may take its time to stop gracefully
    server.close()


def _time_failure(call: Callable[[], Any]) -> float:
    began = time.monotonic()
    with pytest.raises(StorageError) as caught:
        call()
    assert isinstance(caught.value.__cause__, pymongo.errors.PyMongoError)
    return time.monotonic() - began


def _atime_failure(storage: MongoStorage, key: str) -> float:
    async def run() -> float:
        began = time.monotonic()
        with pytest.raises(StorageError):
            await storage.aget(key)
        return time.monotonic() - began

    return asyncio.run(run())


def test_a_frozen_server_fails_sync_and_async_calls_within_timeout_ms(
    server: ServerProcess,
) -> None:
    storage = MongoStorage(server.url, collection="frozen", **SHORT)
    storage.set("k", b"v", HOUR)
    try:
        with server.frozen():
            assert _time_failure(lambda: storage.get("k")) < 0.8 + SLACK
            assert _time_failure(lambda: storage.set("k", b"w", HOUR)) < 0.8 + SLACK
            assert _atime_failure(storage, "k") < 0.8 + SLACK
        assert storage.get("k") == b"v"
    finally:
        storage.close()


def test_socket_timeout_alone_no_longer_adds_a_retry_on_top(server: ServerProcess) -> None:
    """``socketTimeoutMS`` set, the rest default: the read times out, and pymongo's retry
    (another server selection) must still end within ``timeoutMS``, not after it."""
    storage = MongoStorage(server.url, collection="frozen2", socketTimeoutMS=500, timeoutMS=1500)
    storage.set("k", b"v", HOUR)
    try:
        with server.frozen():
            assert _time_failure(lambda: storage.get("k")) < 1.5 + SLACK
    finally:
        storage.close()


def test_a_black_hole_fails_within_timeout_ms() -> None:
    with StalledServer() as stalled:
        url = f"mongodb://127.0.0.1:{stalled.port}/?retryWrites=false"
        storage = MongoStorage(url, collection="c", **SHORT)
        try:
            assert _time_failure(lambda: storage.get("k")) < 0.8 + SLACK
            assert _atime_failure(storage, "k") < 0.8 + SLACK
        finally:
            storage.close()


def test_a_killed_server_fails_within_timeout_ms() -> None:
    server = start_mongo()
    storage = MongoStorage(server.url, collection="c", **SHORT)
    try:
        storage.set("k", b"v", HOUR)
        server.kill()
        assert _time_failure(lambda: storage.get("k")) < 0.8 + SLACK
    finally:
        storage.close()
        server.close()


def test_with_the_defaults_a_frozen_server_fails_within_five_seconds(
    server: ServerProcess,
) -> None:
    """The case measured at 15 s: a read on a live connection when the server freezes."""
    storage = MongoStorage(server.url, collection="defaults")
    storage.set("k", b"v", HOUR)
    try:
        with server.frozen():
            took = _time_failure(lambda: storage.get("k"))
        assert took < 5 + SLACK
    finally:
        storage.close()
