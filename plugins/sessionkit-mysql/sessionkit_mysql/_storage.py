"""MySQL / MariaDB storage: one row per key in a table of its own, expiry on the server's clock.

Every operation is one statement in autocommit mode (see ``_sql`` for the statements and why
they count rows the way they do):

========================  ==========================================================================
``get``                   ``SELECT v ... WHERE k = ? AND <live>``
``set``                   ``INSERT ... ON DUPLICATE KEY UPDATE`` (an upsert)
``create``                ``INSERT ... ON DUPLICATE KEY UPDATE`` whose update keeps a live row as it
                          is: 1 row inserted, 2 an expired row overwritten, 0 a live row left alone
``replace``               ``UPDATE ... WHERE k = ? AND <live>``
``replace_if``            ``UPDATE ... WHERE k = ? AND v = ? AND <live>``
``touch``                 ``UPDATE ... SET expires_at = ... WHERE k = ? AND <live>``
``take``                  ``DELETE ... WHERE k = ? AND <live>``: one affected row is the answer
``delete``                ``DELETE ... WHERE k = ?``
``reset``                 ``DELETE FROM <table> LIMIT n``, until the table is empty (this table only)
``purge_expired``         ``DELETE ... WHERE <expired> LIMIT purge_batch``, until none is left
``count`` / ``scan``      ``SELECT`` of the live rows (a page of keys at a time for ``scan``)
========================  ==========================================================================

Row locks make each of them atomic among all clients of the server: two ``take``\\ s of one
row, or two ``replace_if``\\ s over the same bytes, cannot both count it, in one process or in
many. A statement the server chose as a deadlock victim (it rolled it back whole) is run again,
at most twice.

The table is made on first use (``CREATE TABLE IF NOT EXISTS``, its expiry index inside the same
statement, so racing processes cannot trip over each other), and checked: a table of that name
that is not a sessionkit table (a ``sessions`` table of another application) is refused rather
than written into, or emptied by ``reset``. A user without the ``CREATE`` privilege works on a
table made beforehand. A table dropped behind the storage's back is made again.

Expired rows are invisible at once and deleted later: every :attr:`MySQLStorage.purge_every`
writes of a storage, one ``DELETE ... LIMIT purge_batch`` of expired rows follows the write on
its connection, through the index on ``expires_at``; :meth:`MySQLStorage.purge_expired` deletes
them all, in such batches.

Connections: a bounded pool of PyMySQL connections for the sync methods, and one of aiomysql
connections per event loop for the async methods (``sessionkit.storage.PerLoop``); see
``_pool``. Every call is bounded by the timeouts of ``_options``, and every driver failure is a
:class:`~sessionkit.StorageError` with the driver's exception chained.

Sync and async share every decision: each operation is written once, as a plan
(``sessionkit.storage.run_plan``), a generator of the statements it runs, which the sync
methods run with PyMySQL and the async ones await with aiomysql. Which failure is whose, which
connection goes back broken, the deadlock retries and the table's creation are decided in one
place (``_executing`` and the plans it runs); what differs by side comes in as a ``_Side``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, NamedTuple

import pymysql  # type: ignore[import-untyped, unused-ignore]
import pymysql.constants  # type: ignore[import-untyped, unused-ignore]

from sessionkit.storage import (
    AsyncPool,
    ConfigError,
    DriverOps,
    PerLoop,
    Plan,
    PoolClosed,
    PoolTimeout,
    StorageError,
    SyncPool,
    arun_plan,
    blocking,
    run_plan,
    ttl_seconds,
)

from ._options import MySQLOptions
from ._pool import bounded, socket_has_news
from ._sql import COLUMNS, KEY_BYTES, Statements

__all__ = ["MySQLStorage"]

log = logging.getLogger("sessionkit.mysql")

#: The SQL mode of every connection, whatever the server's default: strict (a value the
#: column cannot hold is an error, never a silent truncation), and no engine but InnoDB.
SQL_MODE = "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION"

#: Server error codes the storage acts on.
ER_DBACCESS_DENIED = 1044
ER_TABLE_EXISTS = 1050
ER_TABLEACCESS_DENIED = 1142
ER_NO_SUCH_TABLE = 1146
ER_LOCK_DEADLOCK = 1213
ER_OPTION_PREVENTS_STATEMENT = 1290  # --read-only
ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792
ER_READ_ONLY_MODE = 1836
#: Why ``CREATE TABLE`` may be refused while the table is there and usable: no ``CREATE``
#: privilege, or a read-only server (a replica serving reads).
_CREATE_REFUSED = frozenset(
    {
        ER_DBACCESS_DENIED,
        ER_TABLEACCESS_DENIED,
        ER_OPTION_PREVENTS_STATEMENT,
        ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION,
        ER_READ_ONLY_MODE,
    }
)
#: How many times a statement the server rolled back as a deadlock victim is run again.
DEADLOCK_RETRIES = 2

#: The protocol's ``COM_QUIT``, sent before an idle async connection is closed.
_COM_QUIT = b"\x01\x00\x00\x00\x01"

_PROGRAM = "sessionkit"

#: ``CR_SSL_CONNECTION_ERROR``, the client's error number for a TLS failure.
CR_SSL_CONNECTION_ERROR = 2026
#: ``CR_CONN_HOST_ERROR``: the client could not connect.
CR_CONN_HOST_ERROR = 2003


def _refuse_plain_text(asked: object, capabilities: int) -> None:
    """Raise ``CR_SSL_CONNECTION_ERROR`` if TLS was ``asked`` for but the server's handshake
    (its ``capabilities``) does not offer it.

    aiomysql, and PyMySQL before 1.2, go on in plain text when the server does not offer TLS,
    so anyone between the two could strip the offer and read the session traffic. Both
    connection classes run this check before the client sends anything.
    """
    if asked and not capabilities & pymysql.constants.CLIENT.SSL:
        raise pymysql.err.OperationalError(
            CR_SSL_CONNECTION_ERROR,
            "TLS was asked for (the ssl options), but the server does not offer it",
        )


class _SyncConnection(pymysql.connections.Connection):  # type: ignore[misc]
    """PyMySQL's connection, made to refuse a server without TLS when TLS was asked for."""

    def _request_authentication(self) -> None:
        _refuse_plain_text(self.ssl, self.server_capabilities)
        super()._request_authentication()


_async_connection: Any = None


def _async_connection_class() -> Any:
    """aiomysql's connection, imported on first async use (a sync-only application never loads
    aiomysql), made to refuse a server without TLS when TLS was asked for."""
    global _async_connection
    if _async_connection is None:
        connection: Any = importlib.import_module("aiomysql").Connection

        class TLSConnection(connection):  # type: ignore[misc]
            async def _request_authentication(self) -> None:
                _refuse_plain_text(self._ssl_context is not None, self.server_capabilities)
                await super()._request_authentication()

        _async_connection = TLSConnection
    return _async_connection


#: What the clients raise: their own errors (server and client), socket errors, and the async
#: client's timeouts of ``bounded`` (the same class as ``TimeoutError`` from Python 3.11).
_ERRORS: tuple[type[BaseException], ...] = (
    pymysql.err.MySQLError,
    OSError,
    asyncio.TimeoutError,
)
#: What acquiring a connection may raise, beside the client's errors (opening one).
_ACQUIRE_ERRORS: tuple[type[BaseException], ...] = (PoolTimeout, PoolClosed, *_ERRORS)

#: :meth:`MySQLStorage._statement` and its async twin, for a plan.
STATEMENT = ("_statement", "_astatement")
#: :meth:`MySQLStorage._execute` and its async twin, for a plan of several calls of its own.
EXECUTE = ("_execute", "_aexecute")


def _code(exc: BaseException) -> int | None:
    """The MySQL error number of a driver exception, if it carries one."""
    args = getattr(exc, "args", ())
    return args[0] if args and type(args[0]) is int else None


def _server_said(exc: BaseException) -> bool:
    """Whether ``exc`` is an error the *server* answered (the connection is fine), rather than
    the client losing the connection (numbers 2000 to 2999), a timeout, or a socket error."""
    code = _code(exc)
    return code is not None and code != 0 and not 2000 <= code < 3000


def _key(key: str) -> bytes:
    if type(key) is not str:
        raise TypeError(f"storage keys are str, got {type(key).__name__}")
    return key.encode("utf-8", "surrogatepass")


def _fits(key: bytes) -> bool:
    return len(key) <= KEY_BYTES


def _writable(key: str) -> bytes:
    """``key`` as stored; a key too long for the column is the caller's error."""
    data = _key(key)
    if not _fits(data):
        raise ValueError(
            f"storage keys are at most {KEY_BYTES} bytes of UTF-8, got one of {len(data)}"
        )
    return data


def _check_ttl(ttl: timedelta | None) -> timedelta | None:
    ttl_seconds(ttl)  # rejects a zero or negative TTL, as every storage does
    return ttl


def _schema_problem(columns: tuple[tuple[Any, ...], ...]) -> str | None:
    """What makes a table that ``SHOW COLUMNS`` describes as ``columns`` unfit, if anything."""
    found = {str(row[0]).lower(): str(row[1]).lower() for row in columns}
    for name, types in COLUMNS:
        kind = found.get(name)
        if kind is None:
            return f"it has no column `{name}`"
        if not kind.startswith(types):
            return f"its column `{name}` is {kind}, not {types[0].rstrip('(')}"
    return None


# -- the sync client's connections ---------------------------------------------------------------


def _sync_alive(conn: Any) -> bool:
    return bool(conn.open) and not socket_has_news(conn._sock)


def _sync_discard(conn: Any) -> None:
    conn._force_close()  # no COM_QUIT: the server may not be listening


def _sync_close(conn: Any) -> None:
    conn.close()  # COM_QUIT, then the socket (bounded by write_timeout)


# -- the async client's connections --------------------------------------------------------------


def _transport(conn: Any) -> Any:
    writer = conn._writer
    return None if writer is None else writer.transport


def _async_alive(conn: Any) -> bool:
    reader, transport = conn._reader, _transport(conn)
    if reader is None or transport is None or transport.is_closing():
        return False
    # The loop has read what arrived already; the socket tells what has not been read yet.
    if getattr(reader, "eof_received", False) or reader.at_eof() or getattr(reader, "_buffer", b""):
        return False
    return not socket_has_news(transport.get_extra_info("socket"))


def _async_discard(conn: Any) -> None:
    conn.close()  # the transport, at once


def _async_close(conn: Any) -> None:
    transport = _transport(conn)
    if transport is not None and not transport.is_closing():
        conn._writer.write(_COM_QUIT)  # flushed by the transport as it closes
    conn.close()


def _async_abandon(conn: Any) -> None:
    """Close the socket of a connection whose loop is closed, and let aiomysql forget it (its
    own ``close()`` would need the loop)."""
    PerLoop.close_transport(_transport(conn))
    conn._writer = conn._reader = None


_SYNC_OPS: DriverOps[Any] = DriverOps(alive=_sync_alive, discard=_sync_discard, close=_sync_close)
_ASYNC_OPS: DriverOps[Any] = DriverOps(
    alive=_async_alive, discard=_async_discard, close=_async_close, abandon=_async_abandon
)


def _sync_gone(conn: Any) -> bool:
    return not conn.open


def _async_gone(conn: Any) -> bool:
    return bool(conn.closed)


def _loop_running() -> bool:
    """Whether a coroutine calls (an event loop runs in this thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Side(NamedTuple):
    """What a statement's plan takes from its side, the sync one or the running loop's: the
    pool, whether a connection of it is closed (``not open`` to PyMySQL, ``closed`` to
    aiomysql), and the lock the table is made under. Threads take turns; a loop's coroutines
    take none (a thread's lock held across an ``await`` would stall the loop, and two
    coroutines making the table at once is harmless: ``CREATE TABLE IF NOT EXISTS``)."""

    pool: Callable[[], Any]
    gone: Callable[[Any], bool]
    ready_lock: contextlib.AbstractContextManager[Any]


def _release_dead_pool(pool: AsyncPool[Any], loop: asyncio.AbstractEventLoop) -> None:
    """``PerLoop``'s ``release``: free the sockets of a closed loop's pool."""
    pool.release_dead()


async def _aconnect(
    settings: dict[str, Any], limit: float, address: str, deadline: float = 0.0
) -> Any:
    """A new aiomysql connection, made within ``limit`` (``connect_timeout + read_timeout``:
    aiomysql bounds only the TCP connect by itself), and closed if that fails or is cancelled.
    The pool's ``deadline`` (of the wait for a connection) does not bound it."""
    conn = _async_connection_class()(**settings)
    try:
        await bounded(conn._connect(), limit)
    except (asyncio.TimeoutError, TimeoutError) as exc:
        conn.close()
        raise pymysql.err.OperationalError(
            CR_CONN_HOST_ERROR,
            f"Can't connect to MySQL server on {address!r}: no handshake within "
            f"connect_timeout + read_timeout ({limit:g} s)",
        ) from exc
    except BaseException:
        conn.close()
        raise
    return conn


class MySQLStorage:
    """Session storage in a MySQL or MariaDB table.

    ``MySQLStorage("mysql://app:secret@db.internal:3306/app?table=web_sessions")``; options go
    in the URL's query or as keywords (keywords win), each checked when the storage is made:
    ``table``, ``user``, ``password``, ``unix_socket``, the timeouts ``connect_timeout`` (2 s),
    ``read_timeout`` (3 s), ``write_timeout`` (3 s) and ``pool_timeout`` (2 s),
    ``max_connections`` (16 per pool), ``purge_batch`` (256), and TLS: ``ssl`` (true, false, or
    an ``ssl.SSLContext``), ``ssl_ca``, ``ssl_cert``, ``ssl_key``, ``ssl_verify_cert``,
    ``ssl_verify_identity``. Nothing connects until the first call.
    """

    #: How many writes (``set``/``create``/``replace``/``replace_if``) of this storage pass
    #: between two bounded purges of expired rows.
    purge_every: ClassVar[int] = 64
    #: How many rows one statement of :meth:`scan` reads.
    scan_page: ClassVar[int] = 256
    #: How many rows one statement of :meth:`reset` deletes: the table is emptied in such
    #: batches, so no single statement holds locks (and undo) for a whole large table.
    reset_batch: ClassVar[int] = 1000

    def __init__(self, url: str | MySQLOptions, **options: Any) -> None:
        if isinstance(url, MySQLOptions):
            if options:
                raise ConfigError(min(options), "give options with a URL, not with settings")
            self.options = url
        else:
            self.options = MySQLOptions.from_url(url, options)
        opts = self.options
        self._sql = Statements(opts.table)
        self._init_command = (
            f"SET SESSION sql_mode = '{SQL_MODE}', "
            f"innodb_lock_wait_timeout = {opts.lock_wait_seconds}"
        )
        # Passwords travel as UTF-8 (both clients would encode text as Latin-1, which cannot
        # hold most of the world's characters).
        self._password = opts.password.encode("utf-8")
        self._closed = False
        self._ready = False
        self._ready_lock = threading.Lock()
        self._writes = itertools.count(1)
        self._pool: SyncPool[Any] = SyncPool(
            self._connect, _SYNC_OPS, size=opts.max_connections, wait=opts.pool_timeout
        )
        self._loop_pools: PerLoop[AsyncPool[Any]] = PerLoop(self._async_pool, _release_dead_pool)
        self._sync_side = _Side(lambda: self._pool, _sync_gone, self._ready_lock)
        self._async_side = _Side(self._loop_pools.get, _async_gone, contextlib.nullcontext())

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> MySQLStorage:
        """Build from ``mysql://user:password@host:port/database?table=...`` (the plugin's opener):
        the options come typed and checked by the core, the query read (``Backend(options=...)``)."""
        return cls(MySQLOptions.from_typed(url, options))

    def __repr__(self) -> str:
        return f"<MySQLStorage {self.options.scheme}://{self.options.address} table {self.options.table!r}>"

    @property
    def table(self) -> str:
        return self.options.table

    # -- connections ----------------------------------------------------------------------------

    def _connection_settings(self) -> dict[str, Any]:
        """What both clients tell each connection they open: the address, the account, strict
        UTF-8 in autocommit mode, the timeout to connect, TLS, and no ``LOAD DATA LOCAL``."""
        opts = self.options
        return {
            "host": opts.host or "localhost",
            "port": opts.port,
            "unix_socket": opts.unix_socket,
            "user": opts.user,
            "charset": "utf8mb4",
            "autocommit": True,
            "init_command": self._init_command,
            "connect_timeout": opts.connect_timeout,
            "ssl": opts.ssl_context,
            "local_infile": False,
            "program_name": _PROGRAM,
        }

    def _connect(self) -> Any:
        opts = self.options
        return _SyncConnection(
            **self._connection_settings(),
            password=self._password,
            database=opts.database,
            read_timeout=opts.read_timeout,
            write_timeout=opts.write_timeout,
            ssl_disabled=opts.ssl_context is None,  # else PyMySQL tries TLS unverified
        )

    def _async_pool(self) -> AsyncPool[Any]:
        opts = self.options
        # The pool's connect holds the settings, not this storage: a pool is a ``PerLoop``
        # client, which its finalizer holds (sessionkit._loops), so a pool that held the storage
        # would keep it alive for good.
        connect = functools.partial(
            _aconnect,
            {
                **self._connection_settings(),
                # aiomysql encodes the password as Latin-1: this text's Latin-1 is its UTF-8.
                "password": self._password.decode("latin-1"),
                "db": opts.database,
            },
            opts.connect_timeout + opts.read_timeout,
            opts.address,
        )
        return AsyncPool(
            connect,  # bounded by its own timeouts, not by the call's pool_timeout
            _ASYNC_OPS,
            size=opts.max_connections,
            wait=opts.pool_timeout,
        )

    def _failed(self, op: str, exc: BaseException) -> StorageError:
        if isinstance(exc, PoolTimeout):
            return StorageError(
                f"mysql {op} failed: all {self.options.max_connections} connections stayed "
                f"busy for pool_timeout ({self.options.pool_timeout:g} s)"
            )
        if isinstance(exc, PoolClosed):
            return StorageError(f"{self!r} is closed")
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not str(exc):
            return StorageError(
                f"mysql {op} failed: no reply from {self.options.address} within "
                f"read_timeout ({self.options.read_timeout:g} s)"
            )
        return StorageError(f"mysql {op} failed ({self.options.address}): {exc}")

    @contextlib.contextmanager
    def conn(self) -> Iterator[Any]:
        """A PyMySQL connection of this storage's pool (Fiber's ``Conn()``), for an operator's
        own statements, back in the pool when the block ends (closed instead if it broke):
        ``with storage.conn() as c: c.cursor().execute(...)``. The sessions are in
        :attr:`options` ``.table``."""
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        try:
            connection = self._pool.acquire()
        except _ACQUIRE_ERRORS as exc:
            raise self._failed("connect", exc) from exc
        try:
            yield connection
        finally:
            self._pool.release(connection, broken=not connection.open)

    # -- running a statement, written once (see ``sessionkit.storage.run_plan``) ---------------
    # ``side`` is ``self._sync_side`` or ``self._async_side``: the plans below decide, the
    # drivers make each call as it is (``run_plan``) or await it (``arun_plan``).

    def _executing(
        self,
        side: _Side,
        op: str,
        sql: str,
        *,
        rows: bool = False,
        write: bool = False,
        ensure: bool = True,
    ) -> Plan[Any]:
        """Run ``sql`` on a connection of ``side``'s pool: its rows, or its affected-row count;
        ``ensure=False`` runs it without first making the table. The connection goes back
        however the call ends (a cancelled task's too), closed if the failure was its own."""
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        pool = side.pool()
        try:
            conn = yield pool, "acquire", ()
        except _ACQUIRE_ERRORS as exc:
            raise self._failed(op, exc) from exc
        broken = True
        try:
            if ensure:
                result = yield from self._retried(side, conn, sql, rows)
            else:
                result = yield self, STATEMENT, (conn, sql, rows)
            if write:
                yield from self._after_write(conn)
            broken = side.gone(conn)
            return result
        except StorageError:
            broken = side.gone(conn)
            raise
        except _ERRORS as exc:
            broken = side.gone(conn) or not _server_said(exc)
            raise self._failed(op, exc) from exc
        finally:
            pool.release(conn, broken=broken)

    def _retried(self, side: _Side, conn: Any, sql: str, rows: bool) -> Plan[Any]:
        """``sql``, the table made and checked first if it is not known to be there; run again
        when the server refused it without changing anything (see :meth:`_again`)."""
        attempt = 0
        while True:
            try:
                if not self._ready:
                    with side.ready_lock:
                        if not self._ready:
                            yield from self._prepared(conn)
                return (yield self, STATEMENT, (conn, sql, rows))
            except pymysql.err.MySQLError as exc:
                if not self._again(exc, attempt):
                    raise
                attempt += 1

    def _prepared(self, conn: Any) -> Plan[None]:
        """Make the table if it is missing, and check that it is a sessionkit table."""
        refused: BaseException | None = None
        try:
            yield self, STATEMENT, (conn, self._sql.create_table, False)
        except pymysql.err.MySQLError as exc:
            if _code(exc) not in _CREATE_REFUSED | {ER_TABLE_EXISTS}:
                raise
            refused = exc
        try:
            columns = yield self, STATEMENT, (conn, self._sql.show_columns, True)
        except pymysql.err.MySQLError as exc:
            if refused is not None and _code(exc) == ER_NO_SUCH_TABLE:
                raise refused from None  # why the table could not be made
            raise
        self._check_columns(columns)

    def _after_write(self, conn: Any) -> Plan[None]:
        """Every ``purge_every`` writes, delete one bounded batch of expired rows.

        The write has succeeded by now, so a failed purge is logged, not raised: a clean-up
        problem must not turn a saved session into an error (the next batch will do).
        """
        if next(self._writes) % self.purge_every:
            return
        try:
            yield self, STATEMENT, (conn, self._sql.purge(self.options.purge_batch), False)
        except _ERRORS as exc:
            log.warning("%r: purging expired rows failed: %s", self, exc)

    @staticmethod
    def _statement(conn: Any, sql: str, rows: bool) -> Any:
        """Run one statement on a PyMySQL connection: its rows, or its affected-row count."""
        cursor = conn.cursor()
        count = cursor.execute(sql)
        result = cursor.fetchall() if rows else count
        cursor.close()  # a buffered cursor: nothing left to read (left alone on failure)
        return result

    async def _astatement(self, conn: Any, sql: str, rows: bool) -> Any:
        """:meth:`_statement` on an aiomysql connection, within ``read_timeout``."""
        # On the connection, not a cursor: aiomysql's cursors answer a statement's warnings
        # (a note that the table exists, a deprecation) with one more round trip, SHOW
        # WARNINGS, and a Python warning each. The result is read whole (buffered).
        count = await bounded(conn.query(sql), self.options.read_timeout)
        return conn._result.rows or () if rows else count

    def _execute(
        self, op: str, sql: str, *, rows: bool = False, write: bool = False, ensure: bool = True
    ) -> Any:
        """:meth:`_executing` on the sync pool."""
        plan = self._executing(self._sync_side, op, sql, rows=rows, write=write, ensure=ensure)
        return run_plan(plan)

    async def _aexecute(
        self, op: str, sql: str, *, rows: bool = False, write: bool = False, ensure: bool = True
    ) -> Any:
        """:meth:`_executing` on this event loop's pool; each statement within ``read_timeout``."""
        plan = self._executing(self._async_side, op, sql, rows=rows, write=write, ensure=ensure)
        return await arun_plan(plan)

    def _again(self, exc: BaseException, attempt: int) -> bool:
        """Whether a statement that failed with ``exc`` is run again (it changed nothing)."""
        code = _code(exc)
        if code == ER_NO_SUCH_TABLE and self._ready and attempt == 0:
            self._ready = False  # dropped behind our back (or a server restored empty)
            return True
        return code == ER_LOCK_DEADLOCK and attempt < DEADLOCK_RETRIES

    def _check_columns(self, columns: tuple[tuple[Any, ...], ...]) -> None:
        problem = _schema_problem(columns)
        if problem is not None:
            raise StorageError(
                f"table `{self.options.table}` of {self.options.address} is not a sessionkit "
                f"table: {problem}. Name another with ?table=..., or drop it if it is unused"
            )
        self._ready = True

    # -- the operations, written once -----------------------------------------------------------

    def _get(self, side: _Side, key: str) -> Plan[bytes | None]:
        data = _key(key)
        if not _fits(data):
            return None  # no such row can exist
        found = yield from self._executing(side, "get", self._sql.get(data), rows=True)
        return bytes(found[0][0]) if found else None

    def _set(self, side: _Side, key: str, value: bytes, ttl: timedelta | None) -> Plan[None]:
        sql = self._sql.set(_writable(key), bytes(value), _check_ttl(ttl))
        yield from self._executing(side, "set", sql, write=True)

    def _create(self, side: _Side, key: str, value: bytes, ttl: timedelta | None) -> Plan[bool]:
        sql = self._sql.create(_writable(key), bytes(value), _check_ttl(ttl))
        return bool((yield from self._executing(side, "create", sql, write=True)))

    def _replace(self, side: _Side, key: str, value: bytes, ttl: timedelta | None) -> Plan[bool]:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        sql = self._sql.replace(data, bytes(value), ttl)
        return int((yield from self._executing(side, "replace", sql, write=True))) == 1

    def _replace_if(
        self, side: _Side, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> Plan[bool]:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        sql = self._sql.replace_if(data, bytes(expected), bytes(value), ttl)
        return int((yield from self._executing(side, "replace_if", sql, write=True))) == 1

    def _touch(self, side: _Side, key: str, ttl: timedelta | None) -> Plan[bool]:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        return int((yield from self._executing(side, "touch", self._sql.touch(data, ttl)))) == 1

    def _take(self, side: _Side, key: str) -> Plan[bool]:
        data = _key(key)
        if not _fits(data):
            return False
        return int((yield from self._executing(side, "take", self._sql.take(data)))) == 1

    def _delete(self, side: _Side, key: str) -> Plan[None]:
        data = _key(key)
        if _fits(data):
            yield from self._executing(side, "delete", self._sql.delete(data))

    def _batches(self, op: str, sql: str, batch: int) -> Plan[int]:
        """Run the bounded ``DELETE`` ``sql`` until it deletes fewer than ``batch`` rows; return
        how many it deleted. Each batch is a call of its own (``_execute`` or ``_aexecute``),
        so requests are served between them."""
        total = 0
        while True:
            deleted = int((yield self, EXECUTE, (op, sql)))
            total += deleted
            if deleted < batch:
                return total

    def _closing(self, in_loop: bool) -> Plan[None]:
        """Close the sync connections and, ``in_loop`` (from a coroutine), the running loop's;
        forget the other loops' pools (a closed loop's sockets are freed). Each idle sync
        connection gets a ``COM_QUIT``, a blocking send: from a loop, in a worker thread."""
        loop_pool = self._loop_pools.pop_current() if in_loop else None
        if loop_pool is not None:
            loop_pool.close()
        if not self._closed:
            self._closed = True
            if self._pool.idle():
                yield blocking(self._pool.close)
            else:
                self._pool.close()
        self._loop_pools.clear()

    # -- the storage contract: sync -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return run_plan(self._get(self._sync_side, key))

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        run_plan(self._set(self._sync_side, key, value, ttl))

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live record is (an expired one counts as none); one
        statement. ``False``, and nothing written, when a live record holds the key."""
        return run_plan(self._create(self._sync_side, key, value, ttl))

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return run_plan(self._replace(self._sync_side, key, value, ttl))

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it is live and holds exactly ``expected``; one ``UPDATE``."""
        return run_plan(self._replace_if(self._sync_side, key, expected, value, ttl))

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return run_plan(self._touch(self._sync_side, key, ttl))

    def take(self, key: str) -> bool:
        """Delete ``key`` if it is live; return whether it was (one ``DELETE``)."""
        return run_plan(self._take(self._sync_side, key))

    def delete(self, key: str) -> None:
        run_plan(self._delete(self._sync_side, key))

    def reset(self) -> None:
        """Delete every row of this storage's table (and nothing else), in batches."""
        run_plan(self._batches("reset", self._sql.reset(self.reset_batch), self.reset_batch))

    def drop(self) -> None:
        """Drop this storage's table, its rows with it (``reset`` empties the table and keeps
        it, as a namespace in use needs).

        For a tool that made a table of its own and must not leave it behind: ``sessionkit
        check --reset-scratch`` drops its ``skcheck_...`` table with it. Nothing on the request
        path calls it. A table that does not exist is no error, and the storage's next write
        makes the table again.
        """
        self._execute("drop", self._sql.drop_table, ensure=False)
        self._ready = False

    def close(self) -> None:
        """Close the connections; closing again does nothing, any other call then raises.

        Called from a coroutine, it closes that event loop's connections too; those of other
        loops still running are closed by ``aclose()`` in their loop (or when the loop ends).
        """
        run_plan(self._closing(in_loop=_loop_running()))

    # -- the storage contract: async ----------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        return await arun_plan(self._get(self._async_side, key))

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        await arun_plan(self._set(self._async_side, key, value, ttl))

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._create(self._async_side, key, value, ttl))

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await arun_plan(self._replace(self._async_side, key, value, ttl))

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        return await arun_plan(self._replace_if(self._async_side, key, expected, value, ttl))

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        return await arun_plan(self._touch(self._async_side, key, ttl))

    async def atake(self, key: str) -> bool:
        return await arun_plan(self._take(self._async_side, key))

    async def adelete(self, key: str) -> None:
        await arun_plan(self._delete(self._async_side, key))

    async def areset(self) -> None:
        await arun_plan(self._batches("reset", self._sql.reset(self.reset_batch), self.reset_batch))

    async def aclose(self) -> None:
        """Close this event loop's connections and the sync ones (idempotent)."""
        await arun_plan(self._closing(in_loop=True))

    # -- for operators (sessionkit stats, sessionkit purge) ---------------------------------

    def count(self) -> int:
        """The number of live (unexpired) rows: a scan of the table, for tools, not requests."""
        found = self._execute("count", self._sql.count, rows=True)
        return int(found[0][0])

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)`` in key order, one page per statement.

        No connection is held across a ``yield``: requests go on while a tool walks the table,
        and the caller may delete keys already yielded. Each page resumes after the last key
        of the one before (keyset pagination on the primary key), so none is seen twice.
        """
        after: bytes | None = None
        while True:
            page = self._execute("scan", self._sql.scan(after, self.scan_page), rows=True)
            for key, value in page:
                yield bytes(key).decode("utf-8", "surrogatepass"), bytes(value)
            if len(page) < self.scan_page:
                return
            after = bytes(page[-1][0])

    def purge_expired(self) -> int:
        """Delete every expired row, ``purge_batch`` per statement; return how many.

        Each batch is a statement of its own, so requests are served between them
        (``sessionkit purge --expired-only``).
        """
        limit = self.options.purge_batch
        return run_plan(self._batches("purge_expired", self._sql.purge(limit), limit))
