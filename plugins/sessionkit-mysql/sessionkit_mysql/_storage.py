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
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any, ClassVar, cast

import pymysql  # type: ignore[import-untyped, unused-ignore]
import pymysql.constants  # type: ignore[import-untyped, unused-ignore]

from sessionkit._pools import AsyncPool, DriverOps, PoolClosed, PoolTimeout, SyncPool
from sessionkit.storage import ConfigError, PerLoop, StorageError, ttl_seconds

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

_async_connection: Any = None


def _async_connection_class() -> Any:
    """aiomysql's connection, imported on first async use (a sync-only application never loads
    aiomysql), made to refuse a server without TLS when TLS was asked for.

    aiomysql goes on in plain text when the server does not offer TLS, where PyMySQL (asked
    for TLS) refuses; so anyone between the two could strip the offer and read the session
    traffic. The check runs before the client sends anything.
    """
    global _async_connection
    if _async_connection is None:
        connection: Any = importlib.import_module("aiomysql").Connection

        class TLSConnection(connection):  # type: ignore[misc]
            async def _request_authentication(self) -> None:
                offered = self.server_capabilities & pymysql.constants.CLIENT.SSL
                if self._ssl_context is not None and not offered:
                    raise pymysql.err.OperationalError(
                        CR_SSL_CONNECTION_ERROR,
                        "TLS was asked for (the ssl options), but the server does not offer it",
                    )
                await super()._request_authentication()

        _async_connection = TLSConnection
    return _async_connection


#: What the sync client raises: its own errors (server and client), and socket errors.
_SYNC_ERRORS: tuple[type[BaseException], ...] = (pymysql.err.MySQLError, OSError)
#: The async client's, and the timeouts of ``bounded`` (the same class from Python 3.11).
_ASYNC_ERRORS: tuple[type[BaseException], ...] = (
    pymysql.err.MySQLError,
    OSError,
    asyncio.TimeoutError,
)


#: What acquiring a connection may raise, beside the client's errors (opening one).
_SYNC_ACQUIRE: tuple[type[BaseException], ...] = (PoolTimeout, PoolClosed, *_SYNC_ERRORS)
_ASYNC_ACQUIRE: tuple[type[BaseException], ...] = (PoolTimeout, PoolClosed, *_ASYNC_ERRORS)


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


def _statement(conn: Any, sql: str, rows: bool) -> Any:
    """Run one statement on a PyMySQL connection: its rows, or its affected-row count."""
    cursor = conn.cursor()
    count = cursor.execute(sql)
    result = cursor.fetchall() if rows else count
    cursor.close()  # a buffered cursor: nothing left to read (left alone on failure)
    return result


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


def _release_dead_pool(pool: AsyncPool[Any], loop: asyncio.AbstractEventLoop) -> None:
    """``PerLoop``'s ``release``: free the sockets of a closed loop's pool."""
    pool.release_dead()


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

    def _connect(self) -> Any:
        opts = self.options
        return pymysql.connect(
            host=opts.host or "localhost",
            port=opts.port,
            unix_socket=opts.unix_socket,
            user=opts.user,
            password=self._password,
            database=opts.database,
            charset="utf8mb4",
            autocommit=True,
            init_command=self._init_command,
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            write_timeout=opts.write_timeout,
            ssl=opts.ssl_context,
            ssl_disabled=opts.ssl_context is None,  # else PyMySQL tries TLS unverified
            local_infile=False,
            program_name=_PROGRAM,
        )

    async def _aconnect(self, deadline: float = 0.0) -> Any:
        """A new aiomysql connection, made within ``connect_timeout + read_timeout`` (aiomysql
        bounds only the TCP connect by itself), and closed if that fails or is cancelled. The
        pool's ``deadline`` (of the wait for a connection) does not bound it."""
        opts = self.options
        conn = _async_connection_class()(
            host=opts.host or "localhost",
            port=opts.port,
            unix_socket=opts.unix_socket,
            user=opts.user,
            # aiomysql encodes the password as Latin-1: this text's Latin-1 is its UTF-8.
            password=self._password.decode("latin-1"),
            db=opts.database,
            charset="utf8mb4",
            autocommit=True,
            init_command=self._init_command,
            connect_timeout=opts.connect_timeout,
            ssl=opts.ssl_context,
            local_infile=False,
            program_name=_PROGRAM,
        )
        limit = opts.connect_timeout + opts.read_timeout
        try:
            await bounded(conn._connect(), limit)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            conn.close()
            raise pymysql.err.OperationalError(
                CR_CONN_HOST_ERROR,
                f"Can't connect to MySQL server on {opts.address!r}: no handshake within "
                f"connect_timeout + read_timeout ({limit:g} s)",
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _async_pool(self) -> AsyncPool[Any]:
        opts = self.options
        return AsyncPool(
            self._aconnect,  # bounded by its own timeouts, not by the call's pool_timeout
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
        except _SYNC_ACQUIRE as exc:
            raise self._failed("connect", exc) from exc
        try:
            yield connection
        finally:
            self._pool.release(connection, broken=not connection.open)

    # -- running a statement: sync ----------------------------------------------------------

    def _execute(
        self, op: str, sql: str, *, rows: bool = False, write: bool = False, ensure: bool = True
    ) -> Any:
        """Run ``sql`` on a connection of the pool: its rows, or its affected-row count;
        ``ensure=False`` runs it without first making the table."""
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        try:
            conn = self._pool.acquire()
        except _SYNC_ACQUIRE as exc:
            raise self._failed(op, exc) from exc
        broken = True
        try:
            result = self._run(conn, sql, rows) if ensure else _statement(conn, sql, rows)
            if write:
                self._after_write(conn)
            broken = not conn.open
            return result
        except StorageError:
            broken = not conn.open
            raise
        except _SYNC_ERRORS as exc:
            broken = not conn.open or not _server_said(exc)
            raise self._failed(op, exc) from exc
        finally:
            self._pool.release(conn, broken=broken)

    def _run(self, conn: Any, sql: str, rows: bool) -> Any:
        attempt = 0
        while True:
            try:
                if not self._ready:
                    with self._ready_lock:
                        if not self._ready:
                            self._prepare(conn)
                return _statement(conn, sql, rows)
            except pymysql.err.MySQLError as exc:
                if not self._again(exc, attempt):
                    raise
                attempt += 1

    def _prepare(self, conn: Any) -> None:
        """Make the table if it is missing, and check that it is a sessionkit table."""
        refused: BaseException | None = None
        try:
            _statement(conn, self._sql.create_table, False)
        except pymysql.err.MySQLError as exc:
            if _code(exc) not in _CREATE_REFUSED | {ER_TABLE_EXISTS}:
                raise
            refused = exc
        try:
            columns = _statement(conn, self._sql.show_columns, True)
        except pymysql.err.MySQLError as exc:
            if refused is not None and _code(exc) == ER_NO_SUCH_TABLE:
                raise refused from None  # why the table could not be made
            raise
        self._check_columns(columns)

    def _after_write(self, conn: Any) -> None:
        """Every ``purge_every`` writes, delete one bounded batch of expired rows.

        The write has succeeded by now, so a failed purge is logged, not raised: a clean-up
        problem must not turn a saved session into an error (the next batch will do).
        """
        if next(self._writes) % self.purge_every:
            return
        try:
            _statement(conn, self._sql.purge(self.options.purge_batch), False)
        except _SYNC_ERRORS as exc:
            log.warning("%r: purging expired rows failed: %s", self, exc)

    # -- running a statement: async ----------------------------------------------------------

    async def _aexecute(self, op: str, sql: str, *, rows: bool = False, write: bool = False) -> Any:
        """:meth:`_execute` on this event loop's pool; each statement within ``read_timeout``."""
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        pool = self._loop_pools.get()
        try:
            conn = await pool.acquire()
        except _ASYNC_ACQUIRE as exc:
            raise self._failed(op, exc) from exc
        broken = True
        try:
            result = await self._arun(conn, sql, rows)
            if write:
                await self._aafter_write(conn)
            broken = bool(conn.closed)
            return result
        except StorageError:
            broken = bool(conn.closed)
            raise
        except _ASYNC_ERRORS as exc:
            broken = bool(conn.closed) or not _server_said(exc)
            raise self._failed(op, exc) from exc
        finally:
            pool.release(conn, broken=broken)

    async def _astatement(self, conn: Any, sql: str, rows: bool) -> Any:
        # On the connection, not a cursor: aiomysql's cursors answer a statement's warnings
        # (a note that the table exists, a deprecation) with one more round trip, SHOW
        # WARNINGS, and a Python warning each. The result is read whole (buffered).
        count = await bounded(conn.query(sql), self.options.read_timeout)
        return conn._result.rows or () if rows else count

    async def _arun(self, conn: Any, sql: str, rows: bool) -> Any:
        attempt = 0
        while True:
            try:
                if not self._ready:
                    await self._aprepare(conn)
                return await self._astatement(conn, sql, rows)
            except pymysql.err.MySQLError as exc:
                if not self._again(exc, attempt):
                    raise
                attempt += 1

    async def _aprepare(self, conn: Any) -> None:
        refused: BaseException | None = None
        try:
            await self._astatement(conn, self._sql.create_table, False)
        except pymysql.err.MySQLError as exc:
            if _code(exc) not in _CREATE_REFUSED | {ER_TABLE_EXISTS}:
                raise
            refused = exc
        try:
            columns = await self._astatement(conn, self._sql.show_columns, True)
        except pymysql.err.MySQLError as exc:
            if refused is not None and _code(exc) == ER_NO_SUCH_TABLE:
                raise refused from None
            raise
        self._check_columns(columns)

    async def _aafter_write(self, conn: Any) -> None:
        if next(self._writes) % self.purge_every:
            return
        try:
            await self._astatement(conn, self._sql.purge(self.options.purge_batch), False)
        except _ASYNC_ERRORS as exc:
            log.warning("%r: purging expired rows failed: %s", self, exc)

    # -- shared by both ------------------------------------------------------------------------

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

    # -- the storage contract: sync -----------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        data = _key(key)
        if not _fits(data):
            return None  # no such row can exist
        found = self._execute("get", self._sql.get(data), rows=True)
        return bytes(found[0][0]) if found else None

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        sql = self._sql.set(_writable(key), bytes(value), _check_ttl(ttl))
        self._execute("set", sql, write=True)

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live record is (an expired one counts as none); one
        statement. ``False``, and nothing written, when a live record holds the key."""
        sql = self._sql.create(_writable(key), bytes(value), _check_ttl(ttl))
        return bool(self._execute("create", sql, write=True))

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        return (
            int(self._execute("replace", self._sql.replace(data, bytes(value), ttl), write=True))
            == 1
        )

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it is live and holds exactly ``expected``; one ``UPDATE``."""
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        sql = self._sql.replace_if(data, bytes(expected), bytes(value), ttl)
        return int(self._execute("replace_if", sql, write=True)) == 1

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        return int(self._execute("touch", self._sql.touch(data, ttl))) == 1

    def take(self, key: str) -> bool:
        """Delete ``key`` if it is live; return whether it was (one ``DELETE``)."""
        data = _key(key)
        if not _fits(data):
            return False
        return int(self._execute("take", self._sql.take(data))) == 1

    def delete(self, key: str) -> None:
        data = _key(key)
        if _fits(data):
            self._execute("delete", self._sql.delete(data))

    def reset(self) -> None:
        """Delete every row of this storage's table (and nothing else), in batches."""
        batch = self.reset_batch
        while self._execute("reset", self._sql.reset(batch)) >= batch:
            pass

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
        if not self._closed:
            self._closed = True
            self._pool.close()
        with contextlib.suppress(RuntimeError):  # RuntimeError: no loop runs in this thread
            asyncio.get_running_loop()
            pool = self._loop_pools.pop_current()
            if pool is not None:
                pool.close()
        self._loop_pools.clear()

    # -- the storage contract: async ----------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        data = _key(key)
        if not _fits(data):
            return None
        found = await self._aexecute("get", self._sql.get(data), rows=True)
        return bytes(found[0][0]) if found else None

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        sql = self._sql.set(_writable(key), bytes(value), _check_ttl(ttl))
        await self._aexecute("set", sql, write=True)

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        sql = self._sql.create(_writable(key), bytes(value), _check_ttl(ttl))
        return bool(await self._aexecute("create", sql, write=True))

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        sql = self._sql.replace(data, bytes(value), ttl)
        return int(await self._aexecute("replace", sql, write=True)) == 1

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        sql = self._sql.replace_if(data, bytes(expected), bytes(value), ttl)
        return int(await self._aexecute("replace_if", sql, write=True)) == 1

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        ttl = _check_ttl(ttl)
        data = _key(key)
        if not _fits(data):
            return False
        return int(await self._aexecute("touch", self._sql.touch(data, ttl))) == 1

    async def atake(self, key: str) -> bool:
        data = _key(key)
        if not _fits(data):
            return False
        return int(await self._aexecute("take", self._sql.take(data))) == 1

    async def adelete(self, key: str) -> None:
        data = _key(key)
        if _fits(data):
            await self._aexecute("delete", self._sql.delete(data))

    async def areset(self) -> None:
        batch = self.reset_batch
        while await self._aexecute("reset", self._sql.reset(batch)) >= batch:
            pass

    async def aclose(self) -> None:
        """Close this event loop's connections and the sync ones (idempotent)."""
        pool = self._loop_pools.pop_current()
        if pool is not None:
            pool.close()
        if not self._closed:
            self._closed = True
            if self._pool.idle():  # each gets a COM_QUIT: a blocking send, so not on the loop
                await asyncio.to_thread(self._pool.close)
            else:
                self._pool.close()
        self._loop_pools.clear()

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
        total = 0
        while True:
            deleted = cast(int, self._execute("purge_expired", self._sql.purge(limit)))
            total += deleted
            if deleted < limit:
                return total
