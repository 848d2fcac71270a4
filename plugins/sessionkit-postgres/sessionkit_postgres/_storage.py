"""PostgreSQL storage: one table per storage, psycopg 3 pools, the server's clock.

Each operation is one statement, run in autocommit mode (see ``_sql`` for the table and the
statements, and why expiry is judged by the database server's clock alone). ``reset`` and
``purge_expired`` repeat one bounded ``DELETE`` until nothing is left, so neither ever holds a
lock on many rows for long; ``scan`` reads a page of keys per statement.

**Connections.** Sync calls take a connection from a ``psycopg_pool.ConnectionPool`` (its
threads connect in the background; a call waits up to ``pool_timeout`` for one). Async calls
take one from the running event loop's own :class:`~sessionkit_postgres._loop_pool.LoopPool`,
made on first use in that loop (:class:`~sessionkit.storage.PerLoop`), closed by ``aclose()``
in its loop and, for a loop that ended without it, released (its sockets closed) when the
next loop makes its pool. That pool runs no task of its own, so a loop may end at any moment
(``_loop_pool`` says why psycopg_pool's ``AsyncConnectionPool`` cannot promise that). Pools
open no connection until a call needs one, keep at most ``pool_max_size``, and close idle ones
beyond ``pool_min_size`` after ten minutes. A forked child (a pre-forking server that opened
the storage before forking) makes pools of its own on first use: the parent's connections
are never used, nor closed, by the child (psycopg leaves them alone in a child).

**The table** is made on a storage's first call when it does not exist yet (``CREATE TABLE IF
NOT EXISTS`` and the expiry index, in one transaction, under an advisory lock: two processes
creating it at once would otherwise collide in the catalog, PostgreSQL's ``CREATE ... IF NOT
EXISTS`` being no guard against a concurrent creator). When it exists, the storage only looks
it up (``to_regclass``), so an application role with no right to create tables works with a
table made by a migration. A table dropped while in use is made again on the next call.

**Bounds.** Every call ends within ``pool_timeout + statement_timeout + 0.5`` seconds (5 s with
the defaults), whatever the server does:

* the wait for a connection (``pool_timeout``), a connection attempt included (libpq's
  ``connect_timeout``, 2 s by default);
* the statement: the server cancels it after ``statement_timeout`` (sent as its own setting
  when connecting), and a server that cannot even do that (stopped, unreachable) loses the
  connection half a second later, when the client shuts its socket (see ``_deadlines``);
* while the server refuses connections (down, restarting, out of connection slots), a call
  that finds no idle connection fails at once with the last refusal, except one call a
  second, which tries again: a dead database answers 503 at once, and does not hold every
  worker for ``pool_timeout`` each.

**Failures.** Every driver error surfaces as :class:`~sessionkit.StorageError` with psycopg's
exception chained. A call whose connection turns out to have been closed by the server (a
restart, a failover, ``idle_session_timeout``, a proxy) is sent again on another connection,
within the same bound: each statement here can be repeated safely (an upsert, a delete, a
guarded update; a ``create`` or ``take`` repeated after its first attempt really ran answers
False, which the core takes the safe way). So a server restart costs no request an error once
the server is back.

**Sync and async** share every decision: each operation is written once, as a plan
(``sessionkit.storage.run_plan``), a generator of the psycopg calls it makes, which the sync
methods make as they are and the async ones await. The bound, the retry on a closed
connection, the error that surfaces and the connection's way back to its pool are decided in
one place (``_calling``), the table's creation in another (``_ensured``); what differs by side
(the pool, the deadline's watcher) comes in as a ``_Side``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal, NamedTuple, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from sessionkit.storage import (
    ConfigError,
    PerLoop,
    Plan,
    StorageError,
    arun_plan,
    blocking,
    run_plan,
    ttl_seconds,
    within,
)

from ._deadlines import WATCHER, AsyncWatch, Watch, watch_async
from ._loop_pool import LoopPool
from ._options import PostgresOptions
from ._plan import called
from ._sql import Names, Statements, lock_id

__all__ = ["COUNT_TIMEOUT", "PostgresStorage"]

T = TypeVar("T")
SyncConnection = psycopg.Connection[Any]
AsyncConnection = psycopg.AsyncConnection[Any]
#: A connection of either side, as a plan sees it (psycopg's two classes share their names).
Connection = SyncConnection | AsyncConnection
#: An operation's work on a connection, written once: a plan of its calls.
Work = Callable[[Connection, Statements], Plan[T]]
Fetch = Literal["rowcount", "one", "rows"]

#: A pool's ``getconn`` (``ConnectionPool``) and ``acquire`` (:class:`LoopPool`), for a plan.
GETCONN = ("getconn", "acquire")
#: :meth:`PostgresStorage._exec` and its async twin, for a plan of several calls of its own.
EXEC = ("_exec", "_aexec")

#: Seconds the client waits past ``statement_timeout`` for the server's own cancellation to
#: arrive, before it shuts the connection's socket (the server is frozen or unreachable).
CLIENT_GRACE = 0.5

#: Seconds ``count()`` may run (it walks the table: a tool's call, not a request's), on the
#: server and the client alike; at least ``statement_timeout``.
COUNT_TIMEOUT = 60.0

#: Rows one ``scan()`` statement reads.
SCAN_PAGE = 500

#: While the server refuses connections: how long after a refusal a call that finds no idle
#: connection fails at once, and how often one such call tries again instead (seconds).
REFUSAL_WINDOW = 2.0
RETRY_EVERY = 1.0

#: The longest TTL stored: 10,000 years, as good as none, and far inside ``timestamptz``
#: (``timedelta.max``, 2.7 million years, would be out of its range).
MAX_TTL_SECONDS = 10_000 * 365.25 * 86_400


class _Refusals:
    """The last failure to connect, noted by the pools' connection classes (cleared by a
    success), and the clock of the one-a-second retry while the server refuses."""

    def __init__(self) -> None:
        self.error: psycopg.Error | None = None
        self.at = 0.0
        self._retried_at = 0.0
        self._lock = threading.Lock()

    def note(self, error: psycopg.Error) -> None:
        self.error, self.at = error, time.monotonic()

    def clear(self) -> None:
        self.error = None

    def recent(self) -> psycopg.Error | None:
        error = self.error
        if error is not None and time.monotonic() - self.at < REFUSAL_WINDOW:
            return error
        return None

    def may_retry(self) -> bool:
        """Whether this call is the one (a second) to try connecting again."""
        with self._lock:
            now = time.monotonic()
            if now - self._retried_at >= RETRY_EVERY:
                self._retried_at = now
                return True
            return False


def _connection_classes(
    refusals: _Refusals,
) -> tuple[type[SyncConnection], type[AsyncConnection]]:
    """psycopg's connection classes, noting each failure to connect in ``refusals`` (the sync
    pool connects in its own threads, and tells a waiting call only "timeout")."""

    class NotingConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> NotingConnection:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                refusals.note(exc)
                raise
            refusals.clear()
            return conn

    class NotingAsyncConnection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> NotingAsyncConnection:
            try:
                conn = await super().connect(conninfo, **kwargs)
            except psycopg.Error as exc:
                refusals.note(exc)
                raise
            refusals.clear()
            return conn

    return NotingConnection, NotingAsyncConnection


def _release_dead_loop(pool: LoopPool, loop: asyncio.AbstractEventLoop) -> None:
    """Close the connections of a pool whose event loop was closed (``PerLoop``'s ``release``):
    each is finished synchronously (``PQfinish``: a goodbye to the server, the socket closed)."""
    pool.release_dead()


def _key(key: str) -> bytes:
    """A key as stored: its UTF-8 bytes (lone surrogates kept, so any ``str`` comes back)."""
    if not isinstance(key, str):
        raise TypeError(f"storage keys are str, got {type(key).__name__}")
    return key.encode("utf-8", "surrogatepass")


def _text(key: bytes) -> str:
    return bytes(key).decode("utf-8", "surrogatepass")


def _ttl(ttl: timedelta | None) -> float | None:
    """Seconds to store for ``ttl`` (rejecting a zero or negative one, as every storage does)."""
    seconds = ttl_seconds(ttl)
    return None if seconds is None else min(seconds, MAX_TTL_SECONDS)


def _brief(exc: BaseException, limit: int = 300) -> str:
    """The first line of a driver message, cut short (libpq adds hints on further lines)."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _broken(conn: SyncConnection | AsyncConnection, exc: psycopg.Error) -> bool:
    """Whether ``exc`` came from a connection the server (or the network) had closed."""
    return isinstance(exc, psycopg.OperationalError) and (conn.closed or conn.broken)


def _sync_idle(pool: ConnectionPool[SyncConnection]) -> int:
    """How many idle connections the sync pool holds (``LoopPool.idle`` for a loop's)."""
    return int(pool.get_stats().get("pool_available", 0))


def _fetched(conn: Connection, sql: Any, params: Mapping[str, Any], fetch: Fetch) -> Plan[Any]:
    """One statement, its result as ``fetch`` says."""
    cursor = yield conn, "execute", (sql, params), {"binary": True}
    if fetch == "rowcount":
        return cursor.rowcount
    if fetch == "one":
        row = yield cursor, "fetchone", ()
        return None if row is None else row[0]
    return (yield cursor, "fetchall", ())


class _Side(NamedTuple):
    """What a call's plan takes from its side, the sync one or the running loop's: the pool
    (made on first use), how many idle connections it holds, and how a statement's deadline
    is watched (see ``_deadlines``)."""

    pool: Callable[[], Any]
    idle: Callable[[Any], int]
    watch: Callable[[int, float], Watch | AsyncWatch]


class PostgresStorage:
    """Session storage in a PostgreSQL table, sync and async.

    ``PostgresStorage("postgresql://app@db.internal/app?sslmode=verify-full", table="web_sessions")``:
    options come in the URL's query or as keywords (keywords win): the storage's own
    (``table``, ``schema``, ``pool_min_size``, ``pool_max_size``, ``pool_timeout``,
    ``statement_timeout``, ``purge_batch``, ``prepare_threshold``) and any libpq connection
    parameter (``sslmode``, ``application_name``, ``options``, ``target_session_attrs``, ...).
    See :class:`~sessionkit_postgres.PostgresOptions`. Nothing connects until the first call.
    """

    def __init__(self, url: str | PostgresOptions, **options: Any) -> None:
        if isinstance(url, PostgresOptions):
            if options:
                raise ConfigError(min(options), "give options with a URL, not with settings")
            self.options = url
        else:
            self.options = PostgresOptions.from_url(url, options)
        self._names = Names(self.options.table, self.options.schema)
        self._lock_id = lock_id(self.options.schema, self.options.table)
        self._limit = self.options.statement_timeout + CLIENT_GRACE
        self._statements: Statements | None = None
        self._ready = False
        self._closed = False
        self._refusals = _Refusals()
        self._sync_class, self._async_class = _connection_classes(self._refusals)
        self._pool: ConnectionPool[SyncConnection] | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._loop_pools: PerLoop[LoopPool] = PerLoop(self._make_loop_pool, _release_dead_loop)
        self._sync_side = _Side(self._sync_pool, _sync_idle, WATCHER.watch)
        self._async_side = _Side(self._loop_pools.get, LoopPool.idle, watch_async)

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> PostgresStorage:
        """Build from ``postgresql://...?table=...`` and options (the plugin's opener): the
        options come typed and checked by the core, the query read (``Backend(options=...)``)."""
        return cls(PostgresOptions.from_typed(url, options))

    def __repr__(self) -> str:
        return f"<PostgresStorage {self.options.where} table {self.qualified_table!r}>"

    @property
    def table(self) -> str:
        return self.options.table

    @property
    def schema(self) -> str | None:
        return self.options.schema

    @property
    def qualified_table(self) -> str:
        """``schema.table`` (or ``table``), as given: for messages, not for SQL."""
        schema = self.options.schema
        return self.options.table if schema is None else f"{schema}.{self.options.table}"

    # -- pools ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self!r} is closed")

    def _pool_settings(self) -> dict[str, Any]:
        """What both pools are told: how each connection is set up, how many to keep, and how
        long a call waits for one."""
        options = self.options
        return {
            "kwargs": {"autocommit": True, "prepare_threshold": options.prepare_threshold},
            "min_size": options.pool_min_size,
            "max_size": options.pool_max_size,
            "timeout": options.pool_timeout,
        }

    def _sync_pool(self) -> ConnectionPool[SyncConnection]:
        """This process's pool, made on first use (and again in a forked child)."""
        pool, pid = self._pool, os.getpid()
        if pool is not None and self._pool_pid == pid:
            return pool
        with self._pool_lock:
            self._check_open()
            if self._pool is None or self._pool_pid != pid:
                # A parent's pool is dropped, never closed: its connections are the parent's.
                options = self.options
                pool = ConnectionPool(
                    options.conninfo,
                    connection_class=self._sync_class,
                    **self._pool_settings(),
                    # A failed connection attempt is tried again once after this, then given
                    # up: the next call that needs a connection tries afresh (see
                    # ``_Refusals``), rather than the pool backing off for minutes while the
                    # server is back.
                    reconnect_timeout=options.pool_timeout,
                    name=f"sessionkit-{options.table}",
                    open=False,
                )
                pool.open()
                self._pool, self._pool_pid = pool, pid
            return self._pool

    def _make_loop_pool(self) -> LoopPool:
        """The running loop's pool (``PerLoop``'s factory); see ``_loop_pool`` for why it is
        not psycopg_pool's ``AsyncConnectionPool``."""
        return LoopPool(
            self.options.conninfo, connection_class=self._async_class, **self._pool_settings()
        )

    def _refused(self, op: str, available: Callable[[], int]) -> None:
        """Fail at once while the server refuses connections and none is idle, but for one
        call a second, which tries again (see the module's notes)."""
        error = self._refusals.recent()
        if error is None or available() > 0:
            return
        if not self._refusals.may_retry():
            raise StorageError(
                f"postgres {op} failed: no connection to {self.options.where}; the last "
                f"attempt, {time.monotonic() - self._refusals.at:.1f} s ago, failed: "
                f"{_brief(error)}"
            ) from error

    def _no_connection(self, op: str, exc: psycopg.Error) -> tuple[StorageError, BaseException]:
        """The error for a call that got no connection in time, and its cause: the last
        failure to connect when there was one (the pool itself says only "timeout")."""
        if self._closed:
            return StorageError(f"{self!r} is closed"), exc
        refusal = self._refusals.recent()
        why = (
            f"the last attempt failed: {_brief(refusal)}"
            if refusal is not None
            else f"all {self.options.pool_max_size} connections busy, or the server slow to answer"
        )
        error = StorageError(
            f"postgres {op} failed: no connection to {self.options.where} within "
            f"{self.options.pool_timeout:g} s (pool_timeout); {why}"
        )
        return error, refusal or exc

    def _failed(self, op: str, exc: psycopg.Error, fired: bool, limit: float) -> StorageError:
        if fired:
            return StorageError(
                f"postgres {op} failed: no answer from {self.options.where} within "
                f"{limit:g} s (statement_timeout + {CLIENT_GRACE:g}); the connection was dropped"
            )
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return StorageError(
                f"postgres {op} failed: the server cancelled it after "
                f"{self.options.statement_timeout:g} s (statement_timeout): {_brief(exc)}"
            )
        return StorageError(f"postgres {op} failed: {_brief(exc)}")

    # -- running a call, written once (see ``sessionkit.storage.run_plan``) ---------------------
    # ``side`` is ``self._sync_side`` or ``self._async_side``: the plans below decide, the
    # drivers make each call as it is (``run_plan``) or await it (``arun_plan``).

    def _calling(
        self,
        side: _Side,
        op: str,
        work: Work[T],
        limit: float | None = None,
        ensure: bool = True,
    ) -> Plan[T]:
        """Run ``work(connection, statements)`` on a pooled connection of ``side``, within the
        bound (see the module's notes); ``ensure=False`` runs it without first making the
        table. The connection goes back to its pool however the call ends, a cancelled
        task's included; a connection the server had closed is replaced, within the bound."""
        self._check_open()
        pool = side.pool()
        limit = self._limit if limit is None else limit
        deadline = time.monotonic() + self.options.pool_timeout + limit
        while True:
            conn = yield from self._connection(side, pool, op, deadline)
            fired = False
            try:
                watch = side.watch(conn.pgconn.socket, min(limit, deadline - time.monotonic()))
                try:
                    if not ensure:
                        return (yield from work(conn, self._rendered(conn)))
                    return (yield from self._with_table(conn, work))
                finally:
                    fired = watch.finish()
            except psycopg.Error as exc:
                if not fired and _broken(conn, exc) and time.monotonic() < deadline:
                    continue  # closed by the server meanwhile: another connection
                raise self._failed(op, exc, fired, limit) from exc
            finally:
                if fired:  # its socket is shut: never back into the pool as if healthy
                    with contextlib.suppress(Exception):
                        yield conn, "close", ()
                pool.putconn(conn)

    def _connection(self, side: _Side, pool: Any, op: str, deadline: float) -> Plan[Any]:
        """A connection of ``pool`` by ``deadline``, failing at once while the server refuses
        them (see :meth:`_refused`); a timeout is told with its likely cause."""
        self._refused(op, lambda: side.idle(pool))
        wait = min(self.options.pool_timeout, deadline - time.monotonic())
        try:
            return (yield pool, GETCONN, (max(wait, 0.001),))
        except psycopg.Error as exc:
            error, cause = self._no_connection(op, exc)
            raise error from cause

    def _with_table(self, conn: Connection, work: Work[T]) -> Plan[T]:
        """``work``, the table made first when it is not known to exist, and made again (once)
        when it was dropped meanwhile."""
        statements = self._statements
        if statements is None or not self._ready:
            statements = yield from self._ensured(conn)
        try:
            return (yield from work(conn, statements))
        except psycopg.errors.UndefinedTable:  # dropped meanwhile: make it again, once
            self._ready = False
            return (yield from work(conn, (yield from self._ensured(conn))))

    def _rendered(self, conn: Connection) -> Statements:
        """The statements, rendered on the first connection (its quoting rules)."""
        statements = self._statements or Statements.render(self._names, conn)
        self._statements = statements
        return statements

    def _ensured(self, conn: Connection) -> Plan[Statements]:
        """Render the statements and make the table if it does not exist (see the notes)."""
        statements = self._rendered(conn)
        cursor = yield conn, "execute", (statements.relkind, {"name": statements.qualified})
        row = yield cursor, "fetchone", ()
        if row is None:
            yield from within(conn.transaction(), self._created(conn, statements))
        else:
            self._check_relkind(row[0])
        self._ready = True
        return statements

    def _created(self, conn: Connection, statements: Statements) -> Plan[None]:
        """The table and its index, under the advisory lock (in a transaction, which ends it)."""
        yield conn, "execute", (statements.lock, {"lock": self._lock_id})
        yield conn, "execute", (statements.create_table,)
        yield conn, "execute", (statements.create_index,)

    def _check_relkind(self, relkind: str) -> None:
        if relkind not in ("r", "p"):
            raise StorageError(
                f"{self.qualified_table!r} names an existing relation that is not a table "
                f"(pg_class.relkind {relkind!r}): give the storage another table"
            )

    def _query(
        self, side: _Side, op: str, name: str, params: Mapping[str, Any], fetch: Fetch
    ) -> Plan[Any]:
        """One statement (``name`` of :class:`Statements`), its result as ``fetch`` says."""

        def work(conn: Connection, statements: Statements) -> Plan[Any]:
            return _fetched(conn, getattr(statements, name), params, fetch)

        return self._calling(side, op, work)

    def _exec(self, op: str, name: str, params: Mapping[str, Any], fetch: Fetch) -> Any:
        """:meth:`_query` from sync code."""
        return run_plan(self._query(self._sync_side, op, name, params, fetch))

    async def _aexec(self, op: str, name: str, params: Mapping[str, Any], fetch: Fetch) -> Any:
        return await arun_plan(self._query(self._async_side, op, name, params, fetch))

    def _run(
        self,
        op: str,
        work: Callable[[SyncConnection, Statements], T],
        *,
        limit: float | None = None,
        ensure: bool = True,
    ) -> T:
        """Run a function ``work(connection, statements)`` as :meth:`_calling` runs a plan (an
        operator's statements: ``count``, ``drop``)."""
        plan = self._calling(self._sync_side, op, functools.partial(called, work), limit, ensure)
        result: T = run_plan(plan)
        return result

    async def _arun(
        self,
        op: str,
        work: Callable[[AsyncConnection, Statements], Awaitable[T]],
        *,
        limit: float | None = None,
        ensure: bool = True,
    ) -> T:
        """:meth:`_run` on the running loop's pool, ``work`` a coroutine function."""
        plan = self._calling(self._async_side, op, functools.partial(called, work), limit, ensure)
        result: T = await arun_plan(plan)
        return result

    # -- the operations, written once -----------------------------------------------------------

    def _get(self, side: _Side, key: str) -> Plan[bytes | None]:
        value = yield from self._query(side, "get", "get", {"key": _key(key)}, "one")
        return None if value is None else bytes(value)

    def _written(
        self, side: _Side, name: str, key: str, value: bytes, ttl: timedelta | None
    ) -> Plan[bool]:
        """``set``, ``create`` or ``replace`` (``name``): whether a row was written."""
        params = {"key": _key(key), "value": value, "ttl": _ttl(ttl)}
        return bool((yield from self._query(side, name, name, params, "rowcount")) == 1)

    def _replaced_if(
        self, side: _Side, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> Plan[bool]:
        params = {"key": _key(key), "expected": expected, "value": value, "ttl": _ttl(ttl)}
        return bool(
            (yield from self._query(side, "replace_if", "replace_if", params, "rowcount")) == 1
        )

    def _taken(self, side: _Side, key: str) -> Plan[bool]:
        return bool((yield from self._query(side, "take", "take", {"key": _key(key)}, "one")))

    def _touched(self, side: _Side, key: str, ttl: timedelta | None) -> Plan[bool]:
        params = {"key": _key(key), "ttl": _ttl(ttl)}
        return bool((yield from self._query(side, "touch", "touch", params, "rowcount")) == 1)

    def _deleted(self, side: _Side, key: str) -> Plan[None]:
        yield from self._query(side, "delete", "delete", {"key": _key(key)}, "rowcount")

    def _batches(self, op: str, name: str) -> Plan[int]:
        """Run the bounded ``DELETE`` ``name`` until a batch finds less than a full one; each
        batch is a call of its own (requests are served between them), made by ``_exec`` or
        ``_aexec``."""
        limit, total = self.options.purge_batch, 0
        while True:
            deleted = int((yield self, EXEC, (op, name, {"limit": limit}, "rowcount")))
            total += deleted
            if deleted < limit:
                return total

    def _closing(self, in_loop: bool) -> Plan[None]:
        """``close`` (``in_loop``: ``aclose``, which also closes the running loop's pool). The
        sync pool's ``close`` joins its threads: from a loop, it runs in a worker thread."""
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        loop_pool = self._loop_pools.pop_current() if in_loop else None
        self._loop_pools.clear()
        try:
            if loop_pool is not None:
                loop_pool.close()
            if pool is not None and self._pool_pid == os.getpid():
                yield blocking(pool.close)
        except psycopg.Error as exc:
            raise StorageError(f"closing {self!r} failed: {_brief(exc)}") from exc

    # -- the storage contract ------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return run_plan(self._get(self._sync_side, key))

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        run_plan(self._written(self._sync_side, "set", key, value, ttl))

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live record is (an expired one counts as none); one
        statement. ``False``, and nothing written, when a live record holds the key."""
        return run_plan(self._written(self._sync_side, "create", key, value, ttl))

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it exists and has not expired."""
        return run_plan(self._written(self._sync_side, "replace", key, value, ttl))

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it is live and holds exactly ``expected``; one ``UPDATE``."""
        return run_plan(self._replaced_if(self._sync_side, key, expected, value, ttl))

    def take(self, key: str) -> bool:
        """Delete ``key`` (an expired remnant too); return whether a live record was there."""
        return run_plan(self._taken(self._sync_side, key))

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return run_plan(self._touched(self._sync_side, key, ttl))

    def delete(self, key: str) -> None:
        run_plan(self._deleted(self._sync_side, key))

    def reset(self) -> None:
        """Delete every row of this storage's table (and nothing else), a batch at a time."""
        run_plan(self._batches("reset", "reset"))

    @contextlib.contextmanager
    def conn(self) -> Iterator[SyncConnection]:
        """A connection of this storage's pool (Fiber's ``Conn()``), for an operator's own
        statements, back in the pool when the block ends: ``with storage.conn() as c:
        c.execute(...)``. The sessions are in :attr:`options` ``.table``; nothing here bounds
        the statements you run (``statement_timeout`` still does, on the server)."""
        self._check_open()
        try:
            with self._sync_pool().connection(timeout=self.options.pool_timeout) as connection:
                yield connection
        except StorageError:
            raise
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageError(f"postgres connection failed: {exc}") from exc

    def drop(self) -> None:
        """Drop this storage's table, its rows and index with it (``reset`` empties the table
        and keeps it, as a namespace in use needs).

        For a tool that made a table of its own and must not leave it behind: ``sessionkit
        check --reset-scratch`` drops its ``skcheck_...`` table with it. Nothing on the request
        path calls it. A table that does not exist is no error, and the storage's next write
        makes the table again.
        """

        def work(conn: SyncConnection, statements: Statements) -> None:
            conn.execute(statements.drop_table)

        self._run("drop", work, ensure=False)
        self._ready = False

    def close(self) -> None:
        """Close the sync pool; closing again does nothing, any other call raises.

        Async pools are closed by ``aclose()`` in their loop; those of loops already closed are
        released here.
        """
        run_plan(self._closing(in_loop=False))

    # -- the async twins -----------------------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        return await arun_plan(self._get(self._async_side, key))

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        await arun_plan(self._written(self._async_side, "set", key, value, ttl))

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._written(self._async_side, "create", key, value, ttl))

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._written(self._async_side, "replace", key, value, ttl))

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        return await arun_plan(self._replaced_if(self._async_side, key, expected, value, ttl))

    async def atake(self, key: str) -> bool:
        return await arun_plan(self._taken(self._async_side, key))

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        return await arun_plan(self._touched(self._async_side, key, ttl))

    async def adelete(self, key: str) -> None:
        await arun_plan(self._deleted(self._async_side, key))

    async def areset(self) -> None:
        await arun_plan(self._batches("reset", "reset"))

    async def aclose(self) -> None:
        """Close this loop's pool and the sync pool; closing again does nothing."""
        await arun_plan(self._closing(in_loop=True))

    # -- for operators (see sessionkit._inspect) ------------------------------------------------

    def purge_expired(self) -> int:
        """Delete every expired row, ``purge_batch`` rows per statement; return how many.

        Rows a request holds locked are skipped (``SKIP LOCKED``), so a purge never waits for
        a request, nor a request for a purge; they are purged the next time.
        """
        return run_plan(self._batches("purge_expired", "purge"))

    def count(self) -> int:
        """Return the number of live sessions. Walks the table: for tools, not requests
        (it may run up to :data:`COUNT_TIMEOUT` seconds)."""
        seconds = max(COUNT_TIMEOUT, self.options.statement_timeout)
        ms = str(math.ceil(seconds * 1000))

        def work(conn: SyncConnection, statements: Statements) -> int:
            with conn.transaction():
                conn.execute(statements.count_timeout, {"ms": ms})
                row = conn.execute(statements.count, binary=True).fetchone()
            return 0 if row is None else int(row[0])

        return self._run("count", work, limit=seconds + CLIENT_GRACE)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)`` in key order, :data:`SCAN_PAGE` rows per statement.

        No connection is held across a ``yield``: requests go on while a tool walks the
        table, and the caller may delete keys already yielded. Each page resumes after the
        last key (keyset pagination on the primary key; ``last + b"\\x00"`` is the smallest
        key after ``last``), so no key is repeated or skipped.
        """
        start = b""
        while True:
            params = {"start": start, "limit": SCAN_PAGE}
            rows = self._exec("scan", "scan", params, "rows")
            for key, value in rows:
                yield _text(key), bytes(value)
            if len(rows) < SCAN_PAGE:
                return
            start = bytes(rows[-1][0]) + b"\x00"
