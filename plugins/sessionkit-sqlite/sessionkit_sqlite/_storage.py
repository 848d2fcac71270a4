"""SQLite storage: one table per storage, one connection guarded by a lock.

Why one connection and a lock rather than a connection per thread: for the small statements a
session store runs, both measured the same (about 11 us per read and 35-45 us per upsert, 1 or 8
threads, WAL file), and the single connection is simpler where it matters: ``:memory:`` is
shared by every thread (a per-thread connection would each see its own empty database),
``close()`` closes everything from any thread, and threads of one process never wait on each
other through SQLite's sleeping busy handler. ``busy_timeout`` is left for other processes.

Expired rows are invisible at once (every statement compares ``expires_at`` with the clock)
and deleted later: every :attr:`SQLiteStorage.purge_every` writes, one bounded ``DELETE``
removes at most ``purge_batch`` of them through the index on ``expires_at``, so no request ever
pays for a scan of the table. :meth:`SQLiteStorage.purge_expired` empties them all on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import attrs

from sessionkit import AsyncFromSyncMixin, StorageError, ttl_seconds

from ._options import MEMORY, SQLiteOptions
from ._sql import Statements

__all__ = ["SQLiteStorage"]

log = logging.getLogger("sessionkit.sqlite")

T = TypeVar("T")

#: ``DELETE ... RETURNING`` came with SQLite 3.35.0 (2021); Python builds may link an older one.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


class SQLiteStorage(AsyncFromSyncMixin):
    """A thread-safe SQLite storage; the async twins run the sync methods in a worker thread.

    Every ``sqlite3.Error`` surfaces as a :class:`~sessionkit.StorageError` with the driver's
    exception chained. Keys are always bound parameters, never SQL. It is an
    :class:`~sessionkit.AtomicStorage`: ``take`` and ``replace_if`` are each one statement (``take``
    a short transaction on a SQLite older than 3.35).
    """

    #: How many writes (``set``/``replace``/``replace_if``) pass between two bounded purges of
    #: expired rows.
    purge_every: ClassVar[int] = 64
    #: Whether ``take`` is one ``DELETE ... RETURNING`` (SQLite 3.35+) rather than a transaction
    #: of two ``DELETE`` statements. The tests turn it off to check the older way too.
    take_returning: ClassVar[bool] = HAS_RETURNING
    #: How many rows one statement of :meth:`scan` reads.
    scan_page: ClassVar[int] = 256

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
        # Re-entrant: an async twin holds it while running the sync method, which takes it too.
        self._lock = threading.RLock()
        self._restore_busy = f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}"
        self._writes = itertools.count(1)
        try:
            self._conn: sqlite3.Connection | None = _connect(self.options, self._sql)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self!r}: {exc}") from exc

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> SQLiteStorage:
        """Open ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite://:memory:``."""
        return cls(**attrs.asdict(SQLiteOptions.from_url(url, options), recurse=False))

    def __repr__(self) -> str:
        return f"<SQLiteStorage {self.options.path!r} table {self.options.table!r}>"

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and the open connection; turn driver errors into StorageError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self!r} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StorageError(f"{self!r}: {exc}") from exc

    def _times(self, ttl: timedelta | None) -> tuple[float, float | None]:
        """Return (now, expires_at); rejects a non-positive TTL before any I/O."""
        seconds = ttl_seconds(ttl)
        now = self._clock()
        return now, None if seconds is None else now + seconds

    def _wrote(self, conn: sqlite3.Connection, now: float) -> None:
        """Count a write; every ``purge_every`` writes, purge one bounded batch.

        The caller's write has succeeded by now, so a failed purge is logged, not raised: a
        clean-up problem must not turn a saved session into an error.
        """
        if next(self._writes) % self.purge_every:
            return
        try:
            conn.execute(self._sql.purge, {"now": now, "limit": self.options.purge_batch})
        except sqlite3.Error as exc:
            # Busy: another process is writing (or an inline attempt would not wait); the
            # next batch will do. Anything else is worth a warning.
            level = logging.DEBUG if _busy(exc) else logging.WARNING
            log.log(level, "%r: purging expired rows failed: %s", self, exc)

    # -- the storage contract -----------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        with self._connection() as conn:
            row = conn.execute(self._sql.get, {"key": key, "now": self._clock()}).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        now, expires_at = self._times(ttl)
        params = {"key": key, "value": memoryview(value), "expires_at": expires_at}
        with self._connection() as conn:
            conn.execute(self._sql.set, params)
            self._wrote(conn, now)

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        now, expires_at = self._times(ttl)
        params = {"key": key, "value": memoryview(value), "expires_at": expires_at, "now": now}
        with self._connection() as conn:
            written = conn.execute(self._sql.replace, params).rowcount == 1
            self._wrote(conn, now)
        return written

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it is live and holds exactly ``expected``; one ``UPDATE``."""
        now, expires_at = self._times(ttl)
        params = {
            "key": key,
            "expected": memoryview(expected),
            "value": memoryview(value),
            "expires_at": expires_at,
            "now": now,
        }
        with self._connection() as conn:
            written = conn.execute(self._sql.replace_if, params).rowcount == 1
            self._wrote(conn, now)
        return written

    def take(self, key: str) -> bool:
        """Delete ``key`` (an expired remnant too); return whether a live record was there."""
        now = self._clock()
        with self._connection() as conn:
            if not self.take_returning:
                return self._take_in_transaction(conn, key, now)
            # fetchall() runs the statement to its end, which commits it (autocommit mode).
            rows = conn.execute(self._sql.take, {"key": key}).fetchall()
        return any(expires_at is None or expires_at > now for (expires_at,) in rows)

    def _take_in_transaction(self, conn: sqlite3.Connection, key: str, now: float) -> bool:
        """``take`` without RETURNING: delete the live row (its rowcount is the answer), then
        any expired remnant, in one transaction. ``BEGIN IMMEDIATE`` takes the write lock
        first, and a failure rolls everything back, so a busy database changes nothing (and
        ``_run`` may retry the whole call in a thread)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            live = conn.execute(self._sql.take_live, {"key": key, "now": now}).rowcount == 1
            conn.execute(self._sql.delete, {"key": key})
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                    conn.execute("ROLLBACK")
            raise
        return live

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        now, expires_at = self._times(ttl)
        params = {"key": key, "expires_at": expires_at, "now": now}
        with self._connection() as conn:
            return conn.execute(self._sql.touch, params).rowcount == 1

    def delete(self, key: str) -> None:
        with self._connection() as conn:
            conn.execute(self._sql.delete, {"key": key})

    def reset(self) -> None:
        """Delete every row of this storage's table (and nothing else in the file)."""
        with self._connection() as conn:
            conn.execute(self._sql.reset)

    def close(self) -> None:
        """Close the connection; closing again does nothing, any other call raises."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StorageError(f"{self!r}: {exc}") from exc

    # -- administration -----------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete every expired row, one bounded batch per statement; return how many.

        The lock is released between batches, so requests keep being served during a large
        purge (``sessionkit purge --expired-only``).
        """
        limit = self.options.purge_batch
        total = 0
        while True:
            with self._connection() as conn:
                deleted: int = conn.execute(
                    self._sql.purge, {"now": self._clock(), "limit": limit}
                ).rowcount
            total += deleted
            if deleted < limit:
                return total

    def count(self) -> int:
        """Return the number of live (unexpired) sessions. Scans the table: for tools, not requests."""
        with self._connection() as conn:
            (live,) = conn.execute(self._sql.count, {"now": self._clock()}).fetchone()
        return int(live)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)`` in key order, one page per statement.

        The lock is held for a page, never across a ``yield``: requests go on while a tool walks
        the table, and the caller may delete keys already yielded. Each page resumes where the
        last ended (keyset pagination on the primary key); ``last + "\\x00"`` is the smallest
        text after ``last``, so ``key >= start`` never repeats or skips a key.
        """
        start = ""
        while True:
            params = {"start": start, "now": self._clock(), "limit": self.scan_page}
            with self._connection() as conn:
                rows = conn.execute(self._sql.scan, params).fetchall()
            for key, value in rows:
                yield key, bytes(value)
            if len(rows) < self.scan_page:
                return
            start = rows[-1][0] + "\x00"

    # -- async twins -----------------------------------------------------------------------

    async def _run(self, method: Callable[..., T], *args: Any) -> T:
        """Run a sync ``method`` of this storage for a coroutine: on the event loop when that
        cannot stall it, in a worker thread otherwise.

        A session's statements take microseconds, and a hop to a worker thread costs far more
        (over 100 us on a small VM), so the usual case runs inline: when no other thread holds
        the storage's lock and SQLite answers without waiting. For the attempt the connection's
        busy timeout is 0, so a database locked by another process fails at once (nothing is
        written: each statement is its own transaction, and ``take``'s fallback transaction
        rolls back) and the call is retried in a thread,
        where waiting up to ``busy_timeout`` blocks nobody.
        """
        lock = self._lock
        if lock.acquire(blocking=False):
            try:
                conn = self._conn
                if conn is None:
                    return method(*args)  # raises "closed"
                try:
                    conn.execute("PRAGMA busy_timeout = 0")
                    try:
                        return method(*args)
                    finally:
                        conn.execute(self._restore_busy)
                except StorageError as exc:
                    if not _busy(exc.__cause__):
                        raise
                except sqlite3.Error as exc:  # the PRAGMAs themselves
                    raise StorageError(f"{self!r}: {exc}") from exc
            finally:
                lock.release()
        return await asyncio.to_thread(method, *args)

    async def aget(self, key: str) -> bytes | None:
        return await self._run(self.get, key)

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        await self._run(self.set, key, value, ttl)

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        return await self._run(self.replace, key, value, ttl)

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        return await self._run(self.replace_if, key, expected, value, ttl)

    async def atake(self, key: str) -> bool:
        return await self._run(self.take, key)

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        return await self._run(self.touch, key, ttl)

    async def adelete(self, key: str) -> None:
        await self._run(self.delete, key)

    async def apurge_expired(self) -> int:
        return await asyncio.to_thread(self.purge_expired)

    async def acount(self) -> int:
        return await asyncio.to_thread(self.count)


#: SQLITE_BUSY and SQLITE_LOCKED: the database or a table is locked by another connection.
_BUSY_CODES = frozenset({5, 6})


def _busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLite saying "locked, try again later"."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc)


def _connect(options: SQLiteOptions, sql: Statements) -> sqlite3.Connection:
    """Open the database in autocommit mode (each statement is its own transaction), in WAL
    mode for a file, and create the table and its index if missing."""
    conn = sqlite3.connect(
        options.path,
        timeout=options.busy_timeout,
        isolation_level=None,
        check_same_thread=False,  # shared by threads, serialised by the storage's lock
    )
    try:
        if not options.in_memory:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                log.warning("%s: WAL unavailable, journal mode is %s", options.path, mode)
            # With WAL, NORMAL cannot corrupt the file; a power cut may lose the last saves.
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(sql.create_table)
        conn.execute(sql.create_index)
    except BaseException:
        conn.close()
        raise
    return conn
