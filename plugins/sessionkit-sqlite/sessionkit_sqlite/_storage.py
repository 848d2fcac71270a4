"""SQLite storage: one table per storage, a pool of connections, one in-process writer at a time.

Every operation is one statement, run in autocommit mode (``take`` is a short transaction on a
SQLite older than 3.35):

========================  ==========================================================================
``get``                   ``SELECT value ... WHERE key = ? AND <live>``
``set``                   ``INSERT ... ON CONFLICT (key) DO UPDATE`` (an upsert)
``create``                ``INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE <the row is expired>``:
                          the change count says whether it wrote (a live row is left alone)
``replace``               ``UPDATE ... WHERE key = ? AND <live>``
``replace_if``            ``UPDATE ... WHERE key = ? AND value = ? AND <live>``
``touch``                 ``UPDATE ... SET expires_at = ? WHERE key = ? AND <live>``
``take``                  ``DELETE ... WHERE key = ? RETURNING expires_at``
``delete``                ``DELETE ... WHERE key = ?``
``reset``                 ``DELETE FROM <table>`` (this table only)
``purge_expired``         ``DELETE`` of at most ``purge_batch`` expired rows, through the index
``count`` / ``scan``      ``SELECT`` of the live rows (a page of keys at a time for ``scan``)
========================  ==========================================================================

**Connections, and why.** A file database is in WAL mode, where readers never wait for a
writer, not even for another process holding the write lock (a migration, ``VACUUM``, a
backup). To keep that, reads must not queue behind anything of ours either, so connections
come from a pool: a call takes an idle one (or opens one), uses it alone and puts it back.
Reads take nothing else. A pool rather than a connection per thread: a server that starts a
thread per request would open (and leak) one connection per request, and ``close()`` could
not reach connections held by other threads. Writes also take the storage's *writer lock*, because SQLite's busy
handler sleeps and polls (up to 100 ms a step) while an in-process lock hands over at once:
two threads of one process never wait on each other through the busy handler.

The writer lock was once a lock on the only connection, taken with no time limit, and the
connection waited ``busy_timeout`` inside it. While another process held the database, the k-th
queued request waited k x ``busy_timeout``, and reads queued too. Now every call has a
deadline, ``busy_timeout`` after its own start: it waits for the writer lock at most until then,
and SQLite's busy timeout is set to what is left. A writer whose time ran out in the queue
makes one attempt that does not wait, without the lock (safe: SQLite itself serialises writers;
the lock only makes hand-overs quick), so its error is SQLite's own ``database is locked``, or
its write succeeds if the lock has just gone. No call outlives its ``busy_timeout`` by more than
the time of its statement (and, for an async call, any wait for a worker thread beyond it).

``:memory:`` is one connection, shared by every thread (a second connection would see another,
empty database) and held for a whole call; no other process can lock it, so nothing there ever
waits longer than a statement.

The async twins run the call inline on the event loop when that cannot stall it (a statement
takes microseconds, a hop to a worker thread far more: docs/performance.md): the writer lock
and a connection taken without blocking, and a busy timeout of 0, so a lock held elsewhere
fails at once, having written nothing. Then the call goes to a worker thread, with the deadline
it got when the coroutine started: time spent waiting for a worker thread counts too.

Expired rows are invisible at once (every statement compares ``expires_at`` with the clock)
and deleted later: every :attr:`SQLiteStorage.purge_every` writes, one bounded ``DELETE``
removes at most ``purge_batch`` of them through the index on ``expires_at``, so no request ever
pays for a scan of the table. :meth:`SQLiteStorage.purge_expired` empties them all on demand.

New database files are created with mode 0600 (their ``-wal`` and ``-shm`` files take the mode of
the database file): they hold live session ids. The mode of an existing file is its owner's
decision and is left alone, with a warning when other users may read it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import attrs

from sessionkit.storage import (
    StorageError,
    SyncStorage,
    WouldBlock,
    current_async_call,
    ttl_seconds,
)

from ._options import MEMORY, SQLiteOptions
from ._sql import Statements

__all__ = ["SQLiteStorage"]

log = logging.getLogger("sessionkit.sqlite")

T = TypeVar("T")

#: ``DELETE ... RETURNING`` came with SQLite 3.35.0 (2021); Python builds may link an older one.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

#: The mode of a database file this storage creates: its owner alone reads and writes it.
FILE_MODE = 0o600


class _Contended(WouldBlock):
    """An inline (event-loop) attempt met a lock; the call goes to a worker thread instead."""


@attrs.define(eq=False)
class _Connection:
    """One sqlite3 connection, used by one call at a time, and the busy timeout it is set to
    (so the ``PRAGMA`` runs only when a call needs another value)."""

    raw: sqlite3.Connection
    busy_ms: int = -1

    def wait_at_most(self, ms: int) -> None:
        if ms != self.busy_ms:
            self.raw.execute(f"PRAGMA busy_timeout = {int(ms)}")
            self.busy_ms = ms

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> sqlite3.Cursor:
        return self.raw.execute(sql, {} if params is None else params)


class _Pool:
    """The connections of one storage.

    A file database gets as many as calls run at once (each thread of a server, the event
    loop, the worker threads of the async twins); up to ``max_idle`` idle ones are kept for
    the next call, last used first, and the rest closed, so a burst of threads does not keep
    its file descriptors for good. ``:memory:`` has one connection, and a call holds it alone. Closing closes the
    idle connections at once and each busy one when its call ends, so ``close()`` never waits
    for a call stuck on another process's lock.
    """

    #: How many idle connections a file database keeps open.
    max_idle: ClassVar[int] = 16

    def __init__(
        self, first: sqlite3.Connection, opener: Callable[[], sqlite3.Connection], shared: bool
    ) -> None:
        self._opener = opener
        self._idle = [_Connection(first)]
        self._mutex = threading.Lock()
        self._closed = False
        # :memory: only: who holds the one connection.
        self._shared: threading.Lock | None = threading.Lock() if shared else None

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self, *, blocking: bool) -> _Connection | None:
        """A connection for one call; ``None`` when ``blocking`` is false and the only
        (``:memory:``) connection is in use. Raises :class:`_Closed` after :meth:`close`."""
        shared = self._shared
        if shared is not None:
            if not shared.acquire(blocking):
                return None
            if self._closed:
                shared.release()
                raise _Closed
            return self._idle[0]
        with self._mutex:
            if self._closed:
                raise _Closed
            if self._idle:
                return self._idle.pop()
        return _Connection(self._opener())

    def release(self, conn: _Connection, *, broken: bool = False) -> None:
        """Give ``conn`` back after a call; a ``broken`` one is closed rather than kept (the
        one ``:memory:`` connection is always kept: it holds the whole database)."""
        if self._shared is not None:
            self._shared.release()
            return
        with self._mutex:
            if not broken and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        with contextlib.suppress(sqlite3.Error):  # closed or surplus: nothing to report to
            conn.raw.close()

    def drop_idle(self) -> None:
        """Close the idle connections (not ``:memory:``'s), so the next calls open new ones."""
        if self._shared is not None:
            return
        with self._mutex:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(sqlite3.Error):
                conn.raw.close()

    def close(self) -> None:
        """Close every connection; raises the first ``sqlite3.Error`` after closing them all."""
        if self._shared is not None:
            with self._shared:
                self._closed = True
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
        error: sqlite3.Error | None = None
        for conn in idle:
            try:
                conn.raw.close()
            except sqlite3.Error as exc:
                error = error or exc
        if error is not None:
            raise error


class _Closed(Exception):
    """The pool is closed."""


class _Stale(Exception):
    """A write found its connection read-only (see :meth:`SQLiteStorage._call`)."""


class SQLiteStorage(SyncStorage):
    """A thread-safe SQLite storage whose async twins run inline when nothing is in the way.

    The twins are derived from the sync methods (``async_calls = "inline_first"``): the event
    loop's attempt waits for nothing and raises :class:`_Contended` where it would, and the
    call is then repeated in a worker thread, with the deadline it got when it started.

    Every ``sqlite3.Error`` surfaces as a :class:`~sessionkit.StorageError` with the driver's
    exception chained. Keys are always bound parameters, never SQL. It is an
    :class:`~sessionkit.AtomicStorage` and a :class:`~sessionkit.CreatingStorage`: ``create``,
    ``take`` and ``replace_if`` are each one statement (``take`` a short transaction on a
    SQLite older than 3.35).
    """

    #: How many writes (``set``/``create``/``replace``/``replace_if``) pass between two bounded
    #: purges of expired rows.
    purge_every: ClassVar[int] = 64
    #: Whether ``take`` is one ``DELETE ... RETURNING`` (SQLite 3.35+) rather than a transaction
    #: of two ``DELETE`` statements. The tests turn it off to check the older way too.
    take_returning: ClassVar[bool] = HAS_RETURNING
    #: How many rows one statement of :meth:`scan` reads.
    scan_page: ClassVar[int] = 256

    async_calls = "inline_first"

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        *,
        table: str = "sessions",
        purge_batch: int = 256,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = SQLiteOptions(
            os.fspath(path),
            table=table,
            purge_batch=purge_batch,
            busy_timeout=busy_timeout,
            clock=clock,
        )
        self._sql = Statements.for_table(table)
        self._clock = clock
        self._busy_timeout = float(busy_timeout)
        self._busy_ms = math.ceil(busy_timeout * 1000)
        # Plain, not re-entrant: no call takes it twice, and a thread that held it across a
        # nested call would hold every other writer up.
        self._writer = threading.Lock()
        self._writes = itertools.count(1)
        try:
            first = _connect(self.options, self._sql)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self!r}: {exc}") from exc
        self._pool = _Pool(first, lambda: _open(self.options), shared=self.options.in_memory)

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> SQLiteStorage:
        """Open ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite://:memory:``."""
        return cls(**attrs.asdict(SQLiteOptions.from_url(url, options), recurse=False))

    def __repr__(self) -> str:
        return f"<SQLiteStorage {self.options.path!r} table {self.options.table!r}>"

    # -- running a call -------------------------------------------------------------------

    def _deadline(self) -> float:
        return time.monotonic() + self._busy_timeout

    def _call(
        self,
        op: Callable[..., T],
        args: tuple[Any, ...],
        *,
        write: bool,
        deadline: float,
        inline: bool = False,
    ) -> T:
        """Run ``op(connection, *args)`` by ``deadline``; driver errors become StorageError.

        ``inline`` (the event loop's attempt) waits for nothing: the writer lock, the
        ``:memory:`` connection and the database's lock are each taken only if free, else
        :class:`_Contended` is raised and nothing has been written.
        """
        locked = False
        if write:
            if inline:
                locked = self._writer.acquire(blocking=False)
                if not locked:
                    raise _Contended
            else:
                left = deadline - time.monotonic()
                locked = (
                    self._writer.acquire(timeout=left)
                    if left > 0
                    else self._writer.acquire(blocking=False)
                )
                # Not locked: the writers ahead of this call used up its time. It still makes
                # one attempt, which waits for nothing, so the answer is SQLite's own.
        try:
            try:
                return self._run(op, args, deadline, inline, retry=write)
            except _Stale:
                # Opened while the file could not be written (made immutable, a read-only
                # or full disk), a connection comes up read-only without a word and refuses
                # every write for good, after the file is writable again. Nothing was
                # written: drop the idle ones (opened in the same fault, maybe) and try once
                # more on a connection opened now.
                self._pool.drop_idle()
                return self._run(op, args, deadline, inline, retry=False)
        finally:
            if locked:
                self._writer.release()

    def _run(
        self,
        op: Callable[..., T],
        args: tuple[Any, ...],
        deadline: float,
        inline: bool,
        *,
        retry: bool,
    ) -> T:
        """:meth:`_call` on one connection of the pool (the locks taken)."""
        try:
            conn = self._pool.acquire(blocking=not inline)
        except _Closed:
            raise StorageError(f"{self!r} is closed") from None
        except sqlite3.Error as exc:  # opening one more connection
            raise StorageError(f"{self!r}: {exc}") from exc
        if conn is None:
            raise _Contended
        broken = False
        try:
            conn.wait_at_most(0 if inline else self._ms_left(deadline))
            return op(conn, *args)
        except sqlite3.Error as exc:
            if _busy(exc):
                if inline:
                    raise _Contended from None
            else:
                broken = True  # not a lock held elsewhere: the connection may be what is wrong
                if retry and _readonly(exc):
                    raise _Stale from exc
            raise StorageError(f"{self!r}: {exc}") from exc
        finally:
            self._pool.release(conn, broken=broken)

    def _ms_left(self, deadline: float) -> int:
        """The busy timeout that ends at ``deadline``, in whole milliseconds (rounded up, so an
        uncontended call keeps the full value and the PRAGMA is not run again)."""
        left = math.ceil((deadline - time.monotonic()) * 1000)
        return max(0, min(left, self._busy_ms))

    def _sync(self, op: Callable[..., T], *args: Any, write: bool) -> T:
        """Run a call: by itself, or for a derived async twin, with the deadline taken when
        the coroutine started (a wait for a free worker thread counts) and, in the event
        loop's attempt, waiting for nothing."""
        call = current_async_call()
        if call is None:
            return self._call(op, args, write=write, deadline=self._deadline())
        deadline = call.started + self._busy_timeout
        return self._call(op, args, write=write, deadline=deadline, inline=call.inline)

    def conn(self) -> AbstractContextManager[sqlite3.Connection]:
        """A ``sqlite3`` connection of this storage's pool (Fiber's ``Conn()``), for an
        operator's own statements, back in the pool when the block ends: ``with
        storage.conn() as c: c.execute(...)``. It holds this storage's writer lock meanwhile,
        so keep the block short. The sessions are in :attr:`options` ``.table``."""
        return self._connection()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool for as long as the block runs (tests and tools)."""
        with self._writer:
            try:
                conn = self._pool.acquire(blocking=True)
            except _Closed:
                raise StorageError(f"{self!r} is closed") from None
            assert conn is not None
            try:
                yield conn.raw
            except sqlite3.Error as exc:
                raise StorageError(f"{self!r}: {exc}") from exc
            finally:
                self._pool.release(conn)

    def _wrote(self, conn: _Connection, now: float) -> None:
        """Count a write; every ``purge_every`` writes, purge one bounded batch.

        The caller's write has succeeded by now, so a failed purge is logged, not raised: a
        clean-up problem must not turn a saved session into an error. The purge waits for no
        lock: a call must not outlive its deadline for a clean-up the next batch can do.
        """
        if next(self._writes) % self.purge_every:
            return
        try:
            conn.wait_at_most(0)
            conn.execute(self._sql.purge, {"now": now, "limit": self.options.purge_batch})
        except sqlite3.Error as exc:
            # Busy: another process is writing; the next batch will do. Anything else is worth
            # a warning.
            level = logging.DEBUG if _busy(exc) else logging.WARNING
            log.log(level, "%r: purging expired rows failed: %s", self, exc)

    def _expiry(self, seconds: float | None) -> tuple[float, float | None]:
        """Return (now, expires_at) for a TTL already checked by ``ttl_seconds``."""
        now = self._clock()
        return now, None if seconds is None else now + seconds

    # -- the operations, each on one connection ---------------------------------------------

    def _get(self, conn: _Connection, key: str) -> bytes | None:
        row = conn.execute(self._sql.get, {"key": key, "now": self._clock()}).fetchone()
        return None if row is None else bytes(row[0])

    def _set(self, conn: _Connection, key: str, value: bytes, seconds: float | None) -> None:
        now, expires_at = self._expiry(seconds)
        conn.execute(self._sql.set, {"key": key, "value": value, "expires_at": expires_at})
        self._wrote(conn, now)

    def _create(self, conn: _Connection, key: str, value: bytes, seconds: float | None) -> bool:
        now, expires_at = self._expiry(seconds)
        params = {"key": key, "value": value, "expires_at": expires_at, "now": now}
        written = conn.execute(self._sql.create, params).rowcount == 1
        self._wrote(conn, now)
        return written

    def _replace(self, conn: _Connection, key: str, value: bytes, seconds: float | None) -> bool:
        now, expires_at = self._expiry(seconds)
        params = {"key": key, "value": value, "expires_at": expires_at, "now": now}
        written = conn.execute(self._sql.replace, params).rowcount == 1
        self._wrote(conn, now)
        return written

    def _replace_if(
        self, conn: _Connection, key: str, expected: bytes, value: bytes, seconds: float | None
    ) -> bool:
        now, expires_at = self._expiry(seconds)
        params = {
            "key": key,
            "expected": expected,
            "value": value,
            "expires_at": expires_at,
            "now": now,
        }
        written = conn.execute(self._sql.replace_if, params).rowcount == 1
        self._wrote(conn, now)
        return written

    def _touch(self, conn: _Connection, key: str, seconds: float | None) -> bool:
        now, expires_at = self._expiry(seconds)
        params = {"key": key, "expires_at": expires_at, "now": now}
        return conn.execute(self._sql.touch, params).rowcount == 1

    def _take(self, conn: _Connection, key: str) -> bool:
        now = self._clock()
        if not self.take_returning:
            return self._take_in_transaction(conn, key, now)
        # fetchall() runs the statement to its end, which commits it (autocommit mode).
        rows = conn.execute(self._sql.take, {"key": key}).fetchall()
        return any(expires_at is None or expires_at > now for (expires_at,) in rows)

    def _take_in_transaction(self, conn: _Connection, key: str, now: float) -> bool:
        """``take`` without RETURNING: delete the live row (its rowcount is the answer), then
        any expired remnant, in one transaction. ``BEGIN IMMEDIATE`` takes the write lock
        first, and a failure rolls everything back, so a busy database changes nothing (and
        an inline attempt may be retried in a thread)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            live = conn.execute(self._sql.take_live, {"key": key, "now": now}).rowcount == 1
            conn.execute(self._sql.delete, {"key": key})
            conn.execute("COMMIT")
        except BaseException:
            if conn.raw.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                    conn.execute("ROLLBACK")
            raise
        return live

    def _delete(self, conn: _Connection, key: str) -> None:
        conn.execute(self._sql.delete, {"key": key})

    def _reset(self, conn: _Connection) -> None:
        conn.execute(self._sql.reset)

    def _purge_batch(self, conn: _Connection) -> int:
        params = {"now": self._clock(), "limit": self.options.purge_batch}
        deleted: int = conn.execute(self._sql.purge, params).rowcount
        return deleted

    def _count(self, conn: _Connection) -> int:
        (live,) = conn.execute(self._sql.count, {"now": self._clock()}).fetchone()
        return int(live)

    def _scan_page(self, conn: _Connection, start: str) -> list[tuple[str, bytes]]:
        params = {"start": start, "now": self._clock(), "limit": self.scan_page}
        return [(key, bytes(value)) for key, value in conn.execute(self._sql.scan, params)]

    # -- the storage contract -----------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return self._sync(self._get, key, write=False)

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        self._sync(self._set, key, value, ttl_seconds(ttl), write=True)

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only where no live record is (an expired one counts as none); one
        statement. ``False``, and nothing written, when a live record holds the key."""
        return self._sync(self._create, key, value, ttl_seconds(ttl), write=True)

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return self._sync(self._replace, key, value, ttl_seconds(ttl), write=True)

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it is live and holds exactly ``expected``; one ``UPDATE``."""
        return self._sync(self._replace_if, key, expected, value, ttl_seconds(ttl), write=True)

    def take(self, key: str) -> bool:
        """Delete ``key`` (an expired remnant too); return whether a live record was there."""
        return self._sync(self._take, key, write=True)

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        return self._sync(self._touch, key, ttl_seconds(ttl), write=True)

    def delete(self, key: str) -> None:
        self._sync(self._delete, key, write=True)

    def reset(self) -> None:
        """Delete every row of this storage's table (and nothing else in the file)."""
        self._sync(self._reset, write=True)

    def drop(self) -> None:
        """Drop this storage's table, its index with it, and close the storage (``reset``
        empties the table and keeps it, as a namespace in use needs).

        For a tool that made a table of its own and must not leave it behind in the user's
        database file: ``sessionkit check --reset-scratch`` drops its ``skcheck_...`` table
        with it. Nothing on the request path calls it. The storage is closed with it: its
        connections made the table when they opened, and would not make it again.
        """
        try:
            self._sync(lambda conn: conn.execute(self._sql.drop_table), write=True)
        finally:
            self.close()

    def close(self) -> None:
        """Close the connections; closing again does nothing, any other call raises.

        A call still waiting on another process's lock keeps its connection until it ends
        (then that connection is closed too): closing never waits for it.
        """
        try:
            self._pool.close()
        except sqlite3.Error as exc:
            raise StorageError(f"{self!r}: {exc}") from exc

    # -- administration -----------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete every expired row, one bounded batch per statement; return how many.

        Each batch is a write call of its own, so requests are served between batches
        (``sessionkit purge --expired-only``).
        """
        limit = self.options.purge_batch
        total = 0
        while True:
            deleted = self._sync(self._purge_batch, write=True)
            total += deleted
            if deleted < limit:
                return total

    def count(self) -> int:
        """Return the number of live (unexpired) sessions. Scans the table: for tools, not requests."""
        return self._sync(self._count, write=False)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)`` in key order, one page per statement.

        A connection is held for a page, never across a ``yield``: requests go on while a tool
        walks the table, and the caller may delete keys already yielded. Each page resumes where
        the last ended (keyset pagination on the primary key); ``last + "\\x00"`` is the
        smallest text after ``last``, so ``key >= start`` never repeats or skips a key.
        """
        start = ""
        while True:
            rows = self._sync(self._scan_page, start, write=False)
            yield from rows
            if len(rows) < self.scan_page:
                return
            start = rows[-1][0] + "\x00"


#: SQLITE_BUSY and SQLITE_LOCKED: the database or a table is locked by another connection.
_BUSY_CODES = frozenset({5, 6})
#: SQLITE_READONLY: a write on a connection SQLite opened read-only.
_READONLY_CODE = 8


def _readonly(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite refusing a write because the connection is read-only."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return bool(code & 0xFF == _READONLY_CODE)
    return "readonly database" in str(exc)


def _busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite saying "locked, try again later"."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc)


def _create_private(path: str) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; return whether it was created.

    SQLite would create it 0644 (less the umask): readable by every user of the machine, and
    it holds live session ids. SQLite gives the ``-wal`` and ``-shm`` files the mode of the
    database file, so they are private too. An empty file is an empty database to SQLite.
    A failure other than "exists" is left for ``sqlite3.connect`` to report in its own words.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError:
        return False
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)  # the umask may have taken bits away; restore exactly 0600
    finally:
        os.close(fd)
    return True


def _warn_if_shared(path: str) -> None:
    """Warn about an existing database file (or its ``-wal``/``-shm``) that other users may
    read. Its mode is left alone: the owner may share it on purpose (a group, a backup user),
    and a library that changed it silently could break such a set-up."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            mode = os.stat(name).st_mode
        except OSError:
            continue
        if stat.S_IMODE(mode) & 0o007:
            log.warning(
                "%s is readable by other users (mode %03o) and holds live session ids; "
                "restrict it (chmod 600) if no other user needs it",
                name,
                stat.S_IMODE(mode),
            )


def _open(options: SQLiteOptions) -> sqlite3.Connection:
    """Open one more connection: autocommit mode (each statement is its own transaction)."""
    conn = sqlite3.connect(
        options.path,
        timeout=options.busy_timeout,
        isolation_level=None,
        check_same_thread=False,  # a pooled connection serves one call at a time, any thread
    )
    if not options.in_memory:
        try:
            # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last saves.
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
    return conn


#: Seconds between two attempts of the first connection's set-up, while the file is busy.
_SETUP_RETRY = 0.01


def _connect(options: SQLiteOptions, sql: Statements) -> sqlite3.Connection:
    """Open the first connection: create the file (0600) if missing, switch it to WAL, and
    create the table and its index if missing.

    SQLite answers the switch to WAL "database is locked" at once, without its busy
    handler, while another connection writes the file: waiting could deadlock, since the
    switch holds a read lock the writer's commit waits for. Workers of one server opening a
    new file together meet that (one creating the table while another switches), so the
    set-up is tried again, every few milliseconds, until ``busy_timeout`` has passed.
    """
    if not options.in_memory and not _create_private(options.path):
        _warn_if_shared(options.path)
    conn = _open(options)
    deadline = time.monotonic() + options.busy_timeout
    try:
        while True:
            try:
                _set_up(conn, options, sql)
                return conn
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() + _SETUP_RETRY > deadline:
                    raise
            time.sleep(_SETUP_RETRY)
    except BaseException:
        conn.close()
        raise


def _set_up(conn: sqlite3.Connection, options: SQLiteOptions, sql: Statements) -> None:
    if not options.in_memory:
        (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            log.warning("%s: WAL unavailable, journal mode is %s", options.path, mode)
    conn.execute(sql.create_table)
    conn.execute(sql.create_index)
