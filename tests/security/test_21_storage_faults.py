"""Requirement 21: storage down, slow or refusing -- real servers, real faults.

``tests/web/test_failures.py`` proves the middleware's contract with a storage that raises on
demand. Here the same contract meets the real thing, through both middlewares:

* **down**: a private Redis or SecantusDB (MongoDB protocol) is killed with SIGKILL mid-run;
* **slow**: the storage's port accepts connections and never answers;
* **refusing**: a Redis demoted to a replica (``READONLY``), a SQLite file the kernel will not
  write, a SQLite file whose write lock another connection holds.

Every time: a request that needs the session answers 503 with no ``Set-Cookie`` (nobody is
logged out), within the configured timeout; the ``StorageError`` carries the driver's own
exception as ``__cause__`` and is logged; requests that don't touch the session are served; no
record is changed by a failed write; and once the fault is gone, the sessions written before it
are there again, without restarting the application.

The servers persist their data (see ``_faults.start_durable_redis`` / ``start_durable_mongo``):
``start_redis()`` and ``start_mongo()`` keep everything in memory, so after a restart they would
be empty whatever the library did.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import attrs
import pymongo.errors
import pytest
import redis

from sessionkit import Storage, StorageError, Store
from sessionkit.testing import FakeClock
from sessionkit_mongo import MongoStorage
from sessionkit_redis import RedisStorage
from sessionkit_sqlite import SQLiteStorage
from tests._backends import BACKENDS
from tests._servers import HOST, ServerProcess
from tests.security._faults import (
    StalledServer,
    assert_logged_with_cause,
    eventually,
    start_durable_mongo,
    start_durable_redis,
    unwritable,
)
from tests.web._support import Browser, Client, MakeClient, Reply
from tests.web.test_failures import assert_unavailable

#: Driver timeouts for these tests, in seconds: short, so an outage fails a request fast.
TIMEOUT = 0.5
#: The longest a failing request may take: a few timeouts (connect, then read, or a server
#: selection), never a retry loop or a hang.
LIMIT = 6 * TIMEOUT

#: The server kinds under test, narrowed like every backend test by SESSIONKIT_TEST_BACKENDS.
SERVERS = [
    pytest.param(kind, marks=getattr(pytest.mark, kind), id=kind)
    for kind in ("redis", "mongo")
    if kind in BACKENDS
]
only_with = {
    kind: pytest.mark.skipif(kind not in BACKENDS, reason="SESSIONKIT_TEST_BACKENDS leaves it out")
    for kind in ("redis", "sqlite")
}


def _open(kind: str, url: str) -> Storage:
    tag = uuid.uuid4().hex[:10]
    if kind == "redis":
        return RedisStorage(
            url,
            prefix=f"sk-fault:{tag}:",
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
    ms = int(TIMEOUT * 1000)
    return MongoStorage(
        url,
        collection=f"fault_{tag}",
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=2 * ms,
    )


DRIVER_ERRORS: dict[str, type[Exception]] = {
    "redis": redis.RedisError,
    "mongo": pymongo.errors.PyMongoError,
}


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Failures are logged with their traceback at DEBUG (the WARNING line has none)."""
    caplog.set_level(logging.DEBUG, logger="sessionkit")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ServerProcess]:
    server = start_durable_redis()
    yield server
    server.close()


@pytest.fixture(scope="module")
def mongo_server() -> Iterator[ServerProcess]:
    server = start_durable_mongo()
    yield server
    server.close()


@attrs.define
class Outage:
    """A private, persistent server of one kind and a storage on it with short timeouts."""

    kind: str
    server: ServerProcess
    storage: Storage

    @property
    def driver_error(self) -> type[Exception]:
        return DRIVER_ERRORS[self.kind]


@pytest.fixture(params=SERVERS)
async def outage(request: pytest.FixtureRequest) -> AsyncIterator[Outage]:
    server: ServerProcess = request.getfixturevalue(f"{request.param}_server")
    if not server.running:  # a previous test failed before bringing it back
        server.start()
    storage = _open(request.param, server.url)
    try:
        yield Outage(request.param, server, storage)
    finally:
        if not server.running:
            server.start()
        await storage.aclose()


async def _timed(request: Awaitable[Reply]) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = await request
    return reply, time.monotonic() - started


async def _assert_unavailable_fast(request: Awaitable[Reply]) -> None:
    reply, elapsed = await _timed(request)
    assert_unavailable(reply)
    assert elapsed < LIMIT, f"a request during the outage took {elapsed:.1f}s"


async def _assert_served(client: Client, cookie: str | None) -> None:
    """A route that never touches its session answers during the outage, cookie or not."""
    reply, elapsed = await _timed(client.get("/noop", cookie=cookie))
    assert (reply.status, reply.text) == (200, "untouched")
    assert reply.header("set-cookie") == []
    assert elapsed < LIMIT


async def _logged_in(client: Client) -> Browser:
    browser = Browser(client)
    reply = await browser.get("/set?user=ada&role=user")
    assert reply.status == 200 and browser.value is not None
    return browser


# -- down: the server is killed, then comes back ------------------------------------------------


async def test_killed_server_answers_503_and_sessions_survive_its_restart(
    make_client: MakeClient, outage: Outage, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(storage=outage.storage, clock=clock)
    client = make_client(store)
    browser = await _logged_in(client)
    assert browser.value is not None
    sid, cookie = browser.value, f"session_id={browser.value}"
    key = store.storage_key(sid)
    before = outage.storage.get(key)
    assert before is not None

    outage.server.kill()
    await _assert_unavailable_fast(browser.get("/get?k=user"))  # reading it needs the storage
    assert_logged_with_cause(caplog, outage.driver_error)
    await _assert_unavailable_fast(browser.get("/set?user=mallory&role=admin"))
    await _assert_unavailable_fast(client.get("/count"))  # a new visitor's first write
    await _assert_served(client, cookie)
    await _assert_served(client, None)
    with pytest.raises(StorageError) as caught:
        store.get_by_id(sid)
    assert isinstance(caught.value.__cause__, outage.driver_error)
    assert browser.value == sid  # no response of the outage touched the cookie

    outage.server.restart()  # same port, same data directory
    reply = await eventually(lambda: browser.get("/get?k=user"), lambda r: r.status == 200)
    assert (reply.status, reply.text) == (200, '"ada"'), "the session did not survive"
    assert outage.storage.get(key) == before  # byte for byte: no failed write landed, even half
    assert (await browser.get("/set?user=grace")).status == 200  # writes work again
    assert (await browser.get("/get?k=user")).text == '"grace"'
    assert browser.value == sid


# -- slow: the port accepts and never answers ---------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
async def test_stalled_server_answers_503_within_the_timeout(
    make_client: MakeClient, kind: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with StalledServer() as stalled:
        urls = {
            "redis": f"redis://{HOST}:{stalled.port}/0",
            "mongo": f"mongodb://{HOST}:{stalled.port}/?retryWrites=false",
        }
        storage = _open(kind, urls[kind])
        try:
            store = Store(storage=storage, clock=clock)
            client = make_client(store)
            cookie = f"session_id={store.new_id()}"
            reply, elapsed = await _timed(client.get("/get?k=user", cookie=cookie))
            assert_unavailable(reply)
            # It did wait for the server (the timeout expired), and no longer than a few times.
            assert TIMEOUT * 0.8 <= elapsed < LIMIT, f"{elapsed:.2f}s"
            assert_logged_with_cause(caplog, DRIVER_ERRORS[kind])
            await _assert_unavailable_fast(client.get("/count"))
            await _assert_served(client, None)
        finally:
            await storage.aclose()


# -- refusing: Redis demoted to a read-only replica ---------------------------------------------


@pytest.mark.redis
@only_with["redis"]
async def test_redis_refusing_writes_answers_503_and_keeps_serving_reads(
    make_client: MakeClient,
    redis_server: ServerProcess,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis that became a replica (a failover the application was not told about) refuses
    every write with ``READONLY`` and keeps serving the data it holds."""
    if not redis_server.running:
        redis_server.start()
    storage = _open("redis", redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    try:
        store = Store(storage=storage, clock=clock)
        browser = await _logged_in(make_client(store))
        assert browser.value is not None
        key = store.storage_key(browser.value)
        before = storage.get(key)
        # A master that is not there: no sync ever happens, so the data set stays as it is.
        admin.replicaof(HOST, 1)
        try:
            await _assert_unavailable_fast(browser.get("/set?user=mallory&role=admin"))
            assert_logged_with_cause(caplog, redis.exceptions.ReadOnlyError)
            reply = await browser.get("/get?k=user")
            assert (reply.status, reply.text) == (200, '"ada"')  # reads go on
            assert reply.header("set-cookie") == []
            assert storage.get(key) == before
        finally:
            admin.replicaof("NO", "ONE")
        assert (await browser.get("/set?user=grace")).status == 200
        assert (await browser.get("/get?k=user")).text == '"grace"'
    finally:
        admin.close()
        await storage.aclose()


# -- refusing: SQLite ---------------------------------------------------------------------------


def _integrity(database: Path) -> str:
    conn = sqlite3.connect(database)
    try:
        (result,) = conn.execute("PRAGMA integrity_check").fetchone()
        return str(result)
    finally:
        conn.close()


@only_with["sqlite"]
async def test_sqlite_unwritable_file_refuses_writes_and_keeps_reads(
    make_client: MakeClient, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The database file (and its WAL and directory) become unwritable while the app runs.

    As root (CI) that is the immutable attribute, which the kernel enforces on the storage's
    open connection too: its writes fail with ``disk I/O error``. As another user it is
    read-only permissions, which only a connection opened afterwards sees ("attempt to write a
    readonly database"); a storage opened during the outage is checked in both cases. Reads of
    existing sessions keep working (SQLite reads a read-only WAL database): the real behaviour
    is "logged-in users can browse, nobody can log in or change anything", not a blanket 503.
    """
    database = tmp_path / "sessions.db"
    live = SQLiteStorage(database, clock=clock)
    store = Store(storage=live, clock=clock)
    browser = await _logged_in(make_client(store))
    assert browser.value is not None
    cookie = f"session_id={browser.value}"
    key = store.storage_key(browser.value)
    before = live.get(key)
    with unwritable(database) as how:
        late = SQLiteStorage(database, clock=clock)  # a worker started during the outage
        try:
            stores = [Store(storage=late, clock=clock)]
            if how == "immutable":
                stores.insert(0, store)
            for target in stores:
                client = make_client(target)
                caplog.clear()
                await _assert_unavailable_fast(
                    client.get("/set?user=mallory&role=admin", cookie=cookie)
                )
                assert_logged_with_cause(caplog, sqlite3.Error)
                await _assert_unavailable_fast(client.get("/count"))
                reply = await client.get("/get?k=user", cookie=cookie)
                assert (reply.status, reply.text) == (200, '"ada"')
                assert reply.header("set-cookie") == []
                await _assert_served(client, cookie)
                with pytest.raises(StorageError) as caught:
                    target.storage.set("probe", b"x", None)
                assert isinstance(caught.value.__cause__, sqlite3.Error)
        finally:
            late.close()
    assert live.get(key) == before  # nothing written, not even half a record
    assert _integrity(database) == "ok"
    assert (await browser.get("/get?k=user")).text == '"ada"'
    assert (await browser.get("/set?user=grace")).status == 200
    assert (await browser.get("/get?k=user")).text == '"grace"'
    live.close()


@only_with["sqlite"]
async def test_sqlite_write_lock_held_elsewhere_answers_503_after_busy_timeout(
    make_client: MakeClient, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection (a migration, a backup, another process) holds the write lock: a
    write waits ``busy_timeout`` and fails with "database is locked"; WAL readers go on."""
    database = tmp_path / "sessions.db"
    storage = SQLiteStorage(database, clock=clock, busy_timeout=TIMEOUT)
    store = Store(storage=storage, clock=clock)
    browser = await _logged_in(make_client(store))
    assert browser.value is not None
    key = store.storage_key(browser.value)
    before = storage.get(key)
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        reply, elapsed = await _timed(browser.get("/set?user=mallory&role=admin"))
        assert_unavailable(reply)
        assert TIMEOUT * 0.8 <= elapsed < LIMIT, f"{elapsed:.2f}s"
        assert_logged_with_cause(caplog, sqlite3.OperationalError)
        reply = await browser.get("/get?k=user")
        assert (reply.status, reply.text) == (200, '"ada"')
        assert storage.get(key) == before
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await browser.get("/set?user=grace")).status == 200
    assert (await browser.get("/get?k=user")).text == '"grace"'
    storage.close()
