"""Requirement 21: storage down, slow or refusing -- real servers, real faults.

``tests/web/test_failures.py`` proves the middleware's contract with a storage that raises on
demand. Here the same contract meets the real thing, through both middlewares:

* **down**: a private Redis, SecantusDB (MongoDB protocol), PostgreSQL or MariaDB is killed
  with SIGKILL mid-run (PostgreSQL: every process of it, as a crash or the OOM killer would);
* **slow**: the storage's port accepts connections and never answers; and a PostgreSQL or
  MariaDB frozen (SIGSTOP) while the storage holds open connections to it, so the statement
  already sent is the one that hangs;
* **refusing**: a Redis demoted to a replica (``READONLY``), a PostgreSQL whose transactions
  became read-only (``default_transaction_read_only``, set for the whole server and reloaded,
  which reaches the connections already open), a MariaDB switched to ``read_only`` under an
  application user without the privilege to ignore it, a SQLite file the kernel will not
  write, a SQLite file whose write lock another connection holds.

Every time: a request that needs the session answers 503 with no ``Set-Cookie`` (nobody is
logged out), within the configured timeout; the ``StorageError`` carries the driver's own
exception as ``__cause__`` and is logged; requests that don't touch the session are served; no
record is changed by a failed write; and once the fault is gone, the sessions written before it
are there again, without restarting the application.

The servers persist their data (see ``_faults.start_durable_redis`` / ``start_durable_mongo``;
PostgreSQL with ``synchronous_commit`` on, MariaDB writing its log at each commit):
``start_redis()`` and ``start_mongo()`` keep everything in memory, so after a restart they would
be empty whatever the library did. Every fault is on a private server: the machine's shared
ones are never stopped nor made read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import psycopg
import psycopg.errors
import pymongo.errors
import pymysql  # type: ignore[import-untyped, unused-ignore]
import pytest
import redis

from sessionkit import Storage, StorageError, Store
from sessionkit.testing import FakeClock
from sessionkit_mongo import MongoStorage
from sessionkit_mysql import MySQLStorage
from sessionkit_postgres import PostgresStorage
from sessionkit_redis import RedisStorage
from sessionkit_sqlite import SQLiteStorage
from tests._backends import BACKENDS
from tests._server_mysql import _connect, run_sql, start_mariadb
from tests._server_postgres import PostgresProcess, start_postgres
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

ServerT = TypeVar("ServerT", bound=ServerProcess)

#: Driver timeouts for these tests, in seconds: short, so an outage fails a request fast.
TIMEOUT = 0.5
#: The longest a failing request may take: a few timeouts (connect, then read, or a server
#: selection), never a retry loop or a hang.
LIMIT = 6 * TIMEOUT
#: MariaDB's answer to a write under ``read_only``: "The MariaDB server is running with the
#: --read-only option so it cannot execute this statement".
ER_OPTION_PREVENTS_STATEMENT = 1290
#: PostgreSQL's documented bound on any call: ``pool_timeout + statement_timeout`` and half a
#: second of grace (``sessionkit_postgres``' notes), both timeouts being ``TIMEOUT`` here.
POSTGRES_BOUND = 2 * TIMEOUT + 0.5

#: The server kinds under test, narrowed like every backend test by SESSIONKIT_TEST_BACKENDS.
SERVERS = [
    pytest.param(kind, marks=getattr(pytest.mark, kind), id=kind)
    for kind in ("redis", "mongo", "postgres", "mysql")
    if kind in BACKENDS
]
#: The SQL servers, which also get frozen mid-conversation (see the module's notes).
SQL_SERVERS = [param for param in SERVERS if param.values[0] in ("postgres", "mysql")]
only_with = {
    kind: pytest.mark.skipif(kind not in BACKENDS, reason="SESSIONKIT_TEST_BACKENDS leaves it out")
    for kind in ("redis", "sqlite", "postgres", "mysql")
}


def _open(kind: str, url: str) -> Storage:
    tag = uuid.uuid4().hex[:10]
    if kind == "postgres":
        # connect_timeout: libpq's least that is not "forever" is 2 s; pool_timeout bounds the
        # wait for a connection, connecting included, so a call still ends in TIMEOUT.
        return PostgresStorage(
            url,
            table=f"fault_{tag}",
            pool_timeout=TIMEOUT,
            statement_timeout=TIMEOUT,
            connect_timeout=2,
        )
    if kind == "mysql":
        return MySQLStorage(
            url,
            table=f"fault_{tag}",
            connect_timeout=TIMEOUT,
            read_timeout=TIMEOUT,
            write_timeout=TIMEOUT,
            pool_timeout=TIMEOUT,
        )
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


DRIVER_ERRORS: dict[str, type[Exception] | tuple[type[Exception], ...]] = {
    "redis": redis.RedisError,
    "mongo": pymongo.errors.PyMongoError,
    "postgres": psycopg.Error,
    # aiomysql raises PyMySQL's exceptions; a wait it gives up on is asyncio's TimeoutError
    # (the built-in TimeoutError from Python 3.11, a class of its own on 3.10).
    "mysql": (pymysql.err.MySQLError, TimeoutError, asyncio.TimeoutError),
}

#: A URL of each kind on ``port`` of this host (a stalled socket's).
URL_AT = {
    "redis": lambda port: f"redis://{HOST}:{port}/0",
    "mongo": lambda port: f"mongodb://{HOST}:{port}/?retryWrites=false",
    "postgres": lambda port: f"postgresql://postgres@{HOST}:{port}/postgres",
    "mysql": lambda port: f"mysql://root@{HOST}:{port}/test",
}


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Failures are logged with their traceback at DEBUG (the WARNING line has none)."""
    caplog.set_level(logging.DEBUG, logger="sessionkit")


def _private_server(name: str, start: Callable[[], ServerT], doc: str | None = None) -> Any:
    """A module-scoped fixture ``name``: the private server ``start()`` gives, closed after
    the module's last test."""

    def fixture() -> Iterator[ServerT]:
        server = start()
        yield server
        server.close()

    fixture.__doc__ = doc
    return pytest.fixture(scope="module", name=name)(fixture)


def _up(server: ServerT) -> ServerT:
    """``server`` running and not frozen, whatever a previous test that failed left it as."""
    server.resume()  # a previous test failed with it frozen
    if not server.running:  # a previous test failed before bringing it back
        server.start()
    return server


redis_server = _private_server("redis_server", start_durable_redis)
mongo_server = _private_server("mongo_server", start_durable_mongo)
postgres_server = _private_server(
    "postgres_server",
    lambda: start_postgres(durable=True),
    """A private PostgreSQL that acknowledges a commit once its WAL is written: what a client
    saw committed survives ``kill()``.""",
)
mysql_server = _private_server(
    "mysql_server",
    start_mariadb,
    "A private MariaDB (its log reaches the OS at each commit: survives ``kill()``).",
)


@attrs.define
class Outage:
    """A private, persistent server of one kind and a storage on it with short timeouts."""

    kind: str
    server: ServerProcess
    storage: Storage

    @property
    def driver_error(self) -> type[Exception] | tuple[type[Exception], ...]:
        return DRIVER_ERRORS[self.kind]


@pytest.fixture(params=SERVERS)
async def outage(request: pytest.FixtureRequest) -> AsyncIterator[Outage]:
    server = _up(request.getfixturevalue(f"{request.param}_server"))
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


async def _assert_unavailable_fast(request: Awaitable[Reply], limit: float = LIMIT) -> None:
    reply, elapsed = await _timed(request)
    assert_unavailable(reply)
    assert elapsed < limit, f"a request during the outage took {elapsed:.1f}s"


def _bound(kind: str) -> float:
    """The longest a failing request may take on ``kind``: the plugin's documented bound where
    it documents one (PostgreSQL), else :data:`LIMIT`."""
    return POSTGRES_BOUND if kind == "postgres" else LIMIT


async def _assert_served(client: Client, cookie: str | None) -> None:
    """A route that never touches its session answers during the outage, cookie or not."""
    reply, elapsed = await _timed(client.get("/noop", cookie=cookie))
    assert (reply.status, reply.text) == (200, "untouched")
    assert reply.header("set-cookie") == []
    assert elapsed < LIMIT


async def _logged_in(client: Client) -> Browser:
    """A browser logged in (a session written), before any fault. The server is healthy here,
    but on a machine the rest of the suite keeps busy it can still miss these tests' half-second
    timeouts (a new table's first insert on a private PostgreSQL once took longer than its
    ``statement_timeout``), so a 503 is tried again for a few seconds: the set-up is not what
    these tests check, and a storage that never answers still fails it."""
    browser = Browser(client)
    reply = await eventually(
        lambda: browser.get("/set?user=ada&role=user"), lambda r: r.status != 503, timeout=5.0
    )
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
    bound = _bound(outage.kind)
    await _assert_unavailable_fast(browser.get("/get?k=user"), bound)  # needs the storage
    assert_logged_with_cause(caplog, outage.driver_error)
    await _assert_unavailable_fast(browser.get("/set?user=mallory&role=admin"), bound)
    await _assert_unavailable_fast(client.get("/count"), bound)  # a new visitor's first write
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
        storage = _open(kind, URL_AT[kind](stalled.port))
        try:
            store = Store(storage=storage, clock=clock)
            client = make_client(store)
            cookie = f"session_id={store.new_id()}"
            reply, elapsed = await _timed(client.get("/get?k=user", cookie=cookie))
            assert_unavailable(reply)
            # It did wait for the server (the timeout expired), and no longer than a few times.
            assert TIMEOUT * 0.8 <= elapsed < _bound(kind), f"{elapsed:.2f}s"
            assert_logged_with_cause(caplog, DRIVER_ERRORS[kind])
            await _assert_unavailable_fast(client.get("/count"), _bound(kind))
            await _assert_served(client, None)
        finally:
            await storage.aclose()


# -- slow: a SQL server frozen while the storage holds connections to it ----------------------


@pytest.mark.parametrize("kind", SQL_SERVERS)
async def test_frozen_sql_server_answers_503_within_the_timeout_and_recovers(
    make_client: MakeClient,
    kind: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    """The server stops mid-conversation (SIGSTOP: a stalled VM, a stuck disk): the storage's
    pooled connections are open, so the statement is sent and its answer never comes. Only
    reads and a new visitor's first write are tried during the freeze: a write already sent
    when a server freezes may still be carried out when it thaws (the server has it), which no
    client can rule out, so this test does not send one."""
    server: ServerProcess = _up(request.getfixturevalue(f"{kind}_server"))
    storage = _open(kind, server.url)
    try:
        store = Store(storage=storage, clock=clock)
        client = make_client(store)
        browser = await _logged_in(client)  # the pool now holds a connection, the table exists
        assert browser.value is not None
        sid, key = browser.value, store.storage_key(browser.value)
        before = storage.get(key)
        assert before is not None
        with server.frozen():
            reply, elapsed = await _timed(browser.get("/get?k=user"))
            assert_unavailable(reply)
            assert TIMEOUT * 0.8 <= elapsed < _bound(kind), f"{elapsed:.2f}s"
            assert_logged_with_cause(caplog, DRIVER_ERRORS[kind])
            await _assert_unavailable_fast(browser.get("/get?k=user"), _bound(kind))
            await _assert_unavailable_fast(client.get("/count"), _bound(kind))
            await _assert_served(client, f"session_id={sid}")
            assert browser.value == sid  # nobody was logged out
        reply = await eventually(lambda: browser.get("/get?k=user"), lambda r: r.status == 200)
        assert (reply.status, reply.text) == (200, '"ada"'), "the session did not survive"
        assert storage.get(key) == before
        assert (await browser.get("/set?user=grace")).status == 200
        assert (await browser.get("/get?k=user")).text == '"grace"'
        assert browser.value == sid
    finally:
        server.resume()
        await storage.aclose()


# -- refusing: a SQL server that takes no writes -------------------------------------------------


async def _refuses_writes_keeps_reads(
    make_client: MakeClient,
    storage: Storage,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    refusing: Callable[[], AbstractContextManager[None]],
    cause: type[Exception],
) -> None:
    """While ``refusing()``: every write answers 503 without ``Set-Cookie`` and changes
    nothing, caused by ``cause``; logged-in users go on reading; afterwards writes work."""
    store = Store(storage=storage, clock=clock)
    client = make_client(store)
    browser = await _logged_in(client)  # made the table and a session, before the refusal
    assert browser.value is not None
    sid, key = browser.value, store.storage_key(browser.value)
    before = storage.get(key)
    with refusing():
        await _assert_unavailable_fast(browser.get("/set?user=mallory&role=admin"))
        assert_logged_with_cause(caplog, cause)
        reply = await browser.get("/get?k=user")
        assert (reply.status, reply.text) == (200, '"ada"')  # reads go on
        assert reply.header("set-cookie") == []
        await _assert_unavailable_fast(client.get("/count"))  # nobody new gets a session
        await _assert_served(client, None)
        with pytest.raises(StorageError) as caught:
            storage.set("probe", b"x", None)
        assert isinstance(caught.value.__cause__, cause), repr(caught.value.__cause__)
        assert storage.get(key) == before
        assert browser.value == sid
    assert (await browser.get("/set?user=grace")).status == 200
    assert (await browser.get("/get?k=user")).text == '"grace"'


@pytest.mark.postgres
@only_with["postgres"]
async def test_postgres_read_only_answers_503_on_writes_and_keeps_serving_reads(
    make_client: MakeClient,
    postgres_server: PostgresProcess,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``default_transaction_read_only`` for the whole server, by ``ALTER SYSTEM`` and a
    reload: every session takes it at its next statement, the storage's open connections
    included (as a database or role setting would reach only new ones). Writes fail with
    ``ReadOnlySqlTransaction``; reads go on."""
    server = _up(postgres_server)
    storage = _open("postgres", server.url)
    admin = psycopg.connect(server.url, autocommit=True)
    admin.execute("SET default_transaction_read_only = off")  # this session stays writable

    def read_only(on: bool) -> None:
        if on:
            admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
        admin.execute("SELECT pg_catalog.pg_reload_conf()")
        # A new session sees the reloaded setting once the postmaster has reloaded, which it
        # does before it signals the sessions already running.
        deadline = time.monotonic() + 10
        wanted = "on" if on else "off"
        while True:
            with psycopg.connect(server.url) as probe:
                row = probe.execute("SHOW default_transaction_read_only").fetchone()
            if row is not None and row[0] == wanted:
                return
            assert time.monotonic() < deadline, "the reload did not take"
            time.sleep(0.02)

    @contextlib.contextmanager
    def refusing() -> Iterator[None]:
        read_only(True)
        try:
            yield
        finally:
            read_only(False)

    try:
        await _refuses_writes_keeps_reads(
            make_client, storage, clock, caplog, refusing, psycopg.errors.ReadOnlySqlTransaction
        )
    finally:
        admin.close()
        await storage.aclose()


@pytest.mark.mysql
@only_with["mysql"]
async def test_mariadb_read_only_answers_503_on_writes_and_keeps_serving_reads(
    make_client: MakeClient,
    mysql_server: ServerProcess,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``SET GLOBAL read_only`` (a primary demoted to a replica) under an application user
    with every right on its database and none to ignore ``read_only`` (root has that
    privilege, ``READ_ONLY ADMIN``, and would write on): writes fail with error 1290, reads
    go on."""
    server = _up(mysql_server)
    admin = _connect(server.url)
    user = f"skapp_{uuid.uuid4().hex[:8]}"
    run_sql(admin, f"CREATE USER '{user}'@'{HOST}' IDENTIFIED BY 'app-secret'")
    run_sql(admin, f"GRANT ALL PRIVILEGES ON `test`.* TO '{user}'@'{HOST}'")
    storage = _open("mysql", f"mysql://{user}:app-secret@{HOST}:{server.port}/test")

    @contextlib.contextmanager
    def refusing() -> Iterator[None]:
        run_sql(admin, "SET GLOBAL read_only = ON")
        try:
            yield
        finally:
            run_sql(admin, "SET GLOBAL read_only = OFF")

    try:
        await _refuses_writes_keeps_reads(
            make_client, storage, clock, caplog, refusing, pymysql.err.MySQLError
        )
        # And that was the server's read_only, not some other refusal.
        with refusing(), pytest.raises(StorageError) as caught:
            storage.set("probe", b"x", None)
        assert caught.value.__cause__ is not None
        assert caught.value.__cause__.args[0] == ER_OPTION_PREVENTS_STATEMENT
    finally:
        await storage.aclose()
        run_sql(admin, f"DROP USER '{user}'@'{HOST}'")
        admin.close()


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
    storage = _open("redis", _up(redis_server).url)
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
