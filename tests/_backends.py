"""Every first-party storage backend behind one fixture, for tests that must hold on all of them.

The web and security tests are written once against a storage and run on each backend:
``backend`` is a parametrized fixture (``memory``, ``sqlite``, ``redis``, ``mongo``, ``mysql``,
``postgres``) and
``open_backend(request, name, clock)`` builds a fresh, empty storage of that kind for one test,
on the real servers of ``tests._servers``; it is reset and closed when the test ends.

The clock is injected where the backend takes one (memory, SQLite, Mongo), so a test that moves
time moves the storage's idea of it too. Redis, PostgreSQL and MySQL keep TTLs on the server's
clock; the store enforces expiry from the record's envelope anyway, which is what these tests
rely on.

``SESSIONKIT_TEST_BACKENDS=memory,sqlite`` narrows the set for a quick local run; CI runs all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable

import pytest

from sessionkit import Storage

__all__ = ["BACKENDS", "backend", "open_backend"]

ALL_BACKENDS = ("memory", "sqlite", "redis", "mongo", "mysql", "postgres")


def _selected() -> tuple[str, ...]:
    wanted = os.environ.get("SESSIONKIT_TEST_BACKENDS", "").strip()
    if not wanted:
        return ALL_BACKENDS
    names = tuple(n.strip() for n in wanted.split(",") if n.strip())
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown:
        raise ValueError(f"SESSIONKIT_TEST_BACKENDS names unknown backends {unknown}")
    return names


BACKENDS = _selected()

#: Mongo's TTL sweeper reaps by real time; a test clock that runs behind it could lose records
#: the store still calls live. Seen from a year ahead, nothing written in a test is due.
MONGO_CLOCK_SHIFT = 365 * 86_400.0

_MARKS = {
    "redis": pytest.mark.redis,
    "mongo": pytest.mark.mongo,
    "mysql": pytest.mark.mysql,
    "postgres": pytest.mark.postgres,
}


@pytest.fixture(params=[pytest.param(n, marks=_MARKS.get(n, ()), id=n) for n in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend this test runs on."""
    name: str = request.param
    return name


def open_backend(
    request: pytest.FixtureRequest, name: str, clock: Callable[[], float] | None = None
) -> Storage:
    """A new, empty storage of backend ``name`` for the requesting test (torn down after it)."""
    tag = uuid.uuid4().hex[:12]
    storage: Storage
    emptied: Callable[[], None] = lambda: None  # noqa: E731
    if name == "memory":
        from sessionkit_memory import MemoryStorage

        storage = MemoryStorage() if clock is None else MemoryStorage(clock=clock)
    elif name == "sqlite":
        from sessionkit_sqlite import SQLiteStorage

        path = request.getfixturevalue("tmp_path") / "sessions.db"
        storage = SQLiteStorage(path) if clock is None else SQLiteStorage(path, clock=clock)
    elif name == "redis":
        from sessionkit_redis import RedisStorage

        url: str = request.getfixturevalue("redis_url")
        storage = RedisStorage(url, prefix=f"sessionkit-test:{tag}:")
    elif name == "mongo":
        from sessionkit_mongo import MongoStorage

        url = request.getfixturevalue("mongo_url")
        shifted = None if clock is None else (lambda: clock() + MONGO_CLOCK_SHIFT)
        free = _FREE_COLLECTIONS.setdefault(url, [])
        storage = MongoStorage(url, collection=free.pop() if free else f"t_{tag}", clock=shifted)
        database, collection = storage.database, storage.collection
        request.addfinalizer(lambda: _release_collection(url, database, collection))
        emptied = lambda: _EMPTIED.add((url, collection))  # noqa: E731  (reset() emptied it)
    elif name == "mysql":
        from tests._server_mysql import open_backend_storage

        storage, emptied = open_backend_storage(request)
    elif name == "postgres":
        from tests._server_postgres import open_backend_storage as open_postgres

        storage, emptied = open_postgres(request)
    else:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(ALL_BACKENDS)}")

    def teardown() -> None:
        try:
            storage.reset()
            emptied()
        finally:
            storage.close()

    request.addfinalizer(teardown)
    return storage


#: Mongo collections a finished test emptied, by server URL, for the next test to reuse: an
#: empty collection with its TTL index in place is as fresh as a new one, and making the index
#: and dropping the collection per test was most of a Mongo test's cost on the test server.
_FREE_COLLECTIONS: dict[str, list[str]] = {}
_EMPTIED: set[tuple[str, str]] = set()


def _release_collection(url: str, database: str, collection: str) -> None:
    """After the storage's own teardown (finalizers run last in, first out): a collection its
    ``reset()`` emptied goes back for reuse; any other is dropped."""
    if (url, collection) in _EMPTIED:
        _EMPTIED.discard((url, collection))
        _FREE_COLLECTIONS.setdefault(url, []).append(collection)
    else:
        _drop_collection(url, database, collection)


def _drop_collection(url: str, database: str, collection: str) -> None:
    """Drop a test's Mongo collection (after the storage's own teardown: finalizers run last
    in, first out), so the server does not pile up collections and TTL indexes."""
    import pymongo

    with pymongo.MongoClient(url) as client:
        client[database].drop_collection(collection)
