"""Every first-party storage backend behind one fixture, for tests that must hold on all of them.

The web and security tests are written once against a storage and run on each backend:
``backend`` is a parametrized fixture (``memory``, ``sqlite``, ``redis``, ``mongo``, ``mysql``,
``postgres``, and the Redis topologies ``redis-cluster`` and ``redis-sentinel``) and
``open_backend(request, name, clock)`` builds a fresh, empty storage of that kind for one test,
on the real servers of ``tests._servers``; it is reset and closed when the test ends.

**The Redis topologies** are the Redis plugin again, opened by the URLs a team that outgrew one
Redis would use: ``redis+cluster://`` on a real three-primary cluster (every key routed to its
slot's primary, ``reset`` walking every primary), and ``redis+sentinel://...?wait_replicas=1``
on a real Sentinel set (the primary found through the Sentinels, each write acknowledged only
once a replica has it, so it survives a failover). ``redis-cached`` is one server read through
the opt-in client-side cache, which must keep every promise the plain storage keeps (a read
served from the cache never resurrects, never shows another request's removed data). They are
``TOPOLOGIES``, not plugins:
``ALL_BACKENDS`` names the first-party plugins, which other guards compare with what is
installed. ``SESSIONKIT_TEST_BACKENDS`` takes their names as well.

They cost time: each test opens a cluster client (which first asks a node for the slot map)
or finds the primary through the Sentinels, and every write behind Sentinel waits for the
replica. Measured on the 2-core test machine (shared, load 7-9), ``tests/web tests/security -n
4 -k "redis-cluster or redis-sentinel"``: run everywhere they would add 1,202 tests and about
80 s. So they run the whole security suite (its promises are about what reaches storage, which
is what a topology changes), and of the web suite only the modules where the topology can
change the outcome (``TOPOLOGY_WEB_MODULES``): which storage calls a request makes and with
what (``test_storage_calls``), and what a failing storage does to the response
(``test_failures``, ``test_outage_logging``). The rest of the web suite is cookie, header and
framework plumbing above the storage, the same on every backend and run on a single Redis.
That leaves 1,086 tests: the security suite is nine tenths of the cost, and no part of it is
left out, so the restriction saves only about a tenth (the same ~80-90 s on that machine,
where the noise is as large as the saving).

``SESSIONKIT_TEST_BACKENDS=memory,sqlite`` narrows the set for a quick local run; CI runs all.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessionkit import Storage

__all__ = ["BACKENDS", "TOPOLOGIES", "backend", "backend_of", "open_backend", "raw_redis"]

#: The first-party storage plugins (``sessionkit-<name>``).
ALL_BACKENDS = ("memory", "sqlite", "redis", "mongo", "mysql", "postgres")
#: The Redis plugin on a Redis Cluster and on a Sentinel set, by URL, and on one server with
#: its client-side cache on (``client_cache=true``): see the module's notes.
ALL_TOPOLOGIES = ("redis-cluster", "redis-sentinel", "redis-cached")
#: Web modules the topologies run in (by file name); the security suite runs whole on them.
TOPOLOGY_WEB_MODULES = frozenset(
    {"test_storage_calls.py", "test_failures.py", "test_outage_logging.py"}
)


def _selected() -> tuple[str, ...]:
    wanted = os.environ.get("SESSIONKIT_TEST_BACKENDS", "").strip()
    if not wanted:
        return (*ALL_BACKENDS, *ALL_TOPOLOGIES)
    names = tuple(n.strip() for n in wanted.split(",") if n.strip())
    unknown = sorted(set(names) - {*ALL_BACKENDS, *ALL_TOPOLOGIES})
    if unknown:
        raise ValueError(f"SESSIONKIT_TEST_BACKENDS names unknown backends {unknown}")
    return names


_SELECTED = _selected()
#: The selected plugins (each a storage kind the other suites know how to open).
BACKENDS = tuple(n for n in _SELECTED if n in ALL_BACKENDS)
#: The selected Redis topologies.
TOPOLOGIES = tuple(n for n in _SELECTED if n in ALL_TOPOLOGIES)

#: Mongo's TTL sweeper reaps by real time; a test clock that runs behind it could lose records
#: the store still calls live. Seen from a year ahead, nothing written in a test is due.
MONGO_CLOCK_SHIFT = 365 * 86_400.0

_MARKS = {
    "redis": pytest.mark.redis,
    "redis-cluster": pytest.mark.redis,
    "redis-sentinel": pytest.mark.redis,
    "redis-cached": pytest.mark.redis,
    "mongo": pytest.mark.mongo,
    "mysql": pytest.mark.mysql,
    "postgres": pytest.mark.postgres,
}


def _backends_for(path: Path) -> tuple[str, ...]:
    """The backends a test module runs on: every selected plugin, and the topologies in the
    security suite and the web modules where they matter (see the module's notes)."""
    parts = path.parts
    web = len(parts) >= 2 and parts[-2] == "web" and "tests" in parts
    if web and path.name not in TOPOLOGY_WEB_MODULES:
        return BACKENDS
    return (*BACKENDS, *TOPOLOGIES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend`` per module (a fixture's own ``params`` are the same for all)."""
    if "backend" not in metafunc.fixturenames or _parametrized_directly(metafunc):
        return
    names = _backends_for(Path(str(metafunc.definition.path)))
    params = [pytest.param(n, marks=_MARKS.get(n, ()), id=n) for n in names]
    metafunc.parametrize("backend", params, indirect=True)


def _parametrized_directly(metafunc: pytest.Metafunc) -> bool:
    """Whether the test parametrizes ``backend`` itself (the load tests' own names)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if "backend" in names:
            return True
    return False


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the backend this test runs on (parametrized by ``pytest_generate_tests``)."""
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
    elif name == "redis-cached":
        from sessionkit_redis import RedisStorage

        url = request.getfixturevalue("redis_url")
        storage = RedisStorage(url, prefix=f"sessionkit-test:{tag}:", client_cache=True)
    elif name == "redis-cluster":
        from sessionkit_redis import RedisStorage

        node = urlsplit(request.getfixturevalue("redis_cluster_url")).netloc
        storage = RedisStorage(f"redis+cluster://{node}", prefix=f"sessionkit-test:{tag}:")
    elif name == "redis-sentinel":
        from sessionkit_redis import RedisStorage

        url = request.getfixturevalue("redis_sentinel_url")
        url = f"{url}{'&' if '?' in url else '?'}wait_replicas=1"
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
        known = ", ".join((*ALL_BACKENDS, *ALL_TOPOLOGIES))
        raise ValueError(f"unknown backend {name!r}; known: {known}")

    def teardown() -> None:
        try:
            storage.reset()
            emptied()
        finally:
            storage.close()

    request.addfinalizer(teardown)
    return storage


def backend_of(request: pytest.FixtureRequest, default: str = "redis") -> str:
    """The ``backend`` the requesting test runs on, or ``default`` for a test without one."""
    callspec = getattr(request.node, "callspec", None)
    name = None if callspec is None else callspec.params.get("backend")
    return default if name is None else str(name)


def raw_redis(request: pytest.FixtureRequest, name: str = "redis") -> Any:
    """A plain redis-py client on the server(s) behind backend ``name`` (``redis``,
    ``redis-cluster``, ``redis-sentinel``), for tests that read what a storage wrote without
    asking the plugin under test: a ``RedisCluster`` (whose ``scan_iter`` walks every
    primary), the primary the Sentinels name, or the one server. Close it after use."""
    import redis

    if name == "redis-cluster":
        return redis.RedisCluster.from_url(request.getfixturevalue("redis_cluster_url"))
    if name == "redis-sentinel":
        parts = urlsplit(request.getfixturevalue("redis_sentinel_url"))
        hosts = [h.rpartition(":") for h in parts.netloc.rpartition("@")[2].split(",")]
        service, _, db = parts.path.strip("/").partition("/")
        sentinel = redis.Sentinel([(host, int(port)) for host, _, port in hosts])
        return sentinel.master_for(service, db=int(db or 0))
    if name in ("redis", "redis-cached"):
        return redis.Redis.from_url(request.getfixturevalue("redis_url"))
    raise ValueError(f"backend {name!r} is not a Redis")


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
