"""The async connections of one event loop, in a pool that runs no task of its own.

Why not ``psycopg_pool.AsyncConnectionPool``: it connects in worker tasks of its loop, and
those catch ``asyncio.CancelledError`` while connecting (to keep their books straight), so a
loop that ends while the pool is connecting (the server slow, down or unreachable) never
finishes shutting down: ``asyncio.run()`` cancels every task once and waits for them, and the
worker, having swallowed its cancellation, waits on its queue for ever. Measured here with a
server that accepts connections and never answers: ``asyncio.run()`` hung indefinitely. A
storage serves loops that end without warning (``asyncio.run`` per job, asgiref's loop per
request), so its async pools must never hold a loop open.

So this pool has no background work at all. A call takes the most recently returned idle
connection, or makes one itself, in its own task, within its own deadline: a refused or timed
out connection attempt is that call's error at once, and a cancelled call cancels its own
attempt. At most ``max_size`` connections are out or idle at once; a call that finds them all
busy waits for one to come back, up to its timeout. Idle connections beyond ``min_size``
unused for ``max_idle`` seconds, and any older than ``max_lifetime``, are closed when next seen
(at the next call: a loop that goes quiet keeps its few idle connections until it ends, or
until ``aclose()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import deque
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolClosed, PoolTimeout

__all__ = ["LoopPool"]

AsyncConnection = psycopg.AsyncConnection[Any]

#: Seconds an idle connection (beyond ``min_size``) is kept, and the longest a connection is
#: used at all: psycopg_pool's defaults, so sync and async connections age alike.
MAX_IDLE = 600.0
MAX_LIFETIME = 3600.0


class LoopPool:
    """Connections for the coroutines of one event loop (see the module's notes)."""

    def __init__(
        self,
        conninfo: str,
        *,
        connection_class: type[AsyncConnection],
        kwargs: dict[str, Any],
        min_size: int,
        max_size: int,
        max_idle: float = MAX_IDLE,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        self._conninfo = conninfo
        self._class = connection_class
        self._kwargs = kwargs
        self._min_size = min_size
        self._max_idle = max_idle
        self._max_lifetime = max_lifetime
        self._max_size = max_size
        #: Connections out or idle (the slots taken), and the calls waiting for a slot, each
        #: handed one by :meth:`_release` (its future's result) in the order they came.
        self._taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Idle connections, most recently returned last: (connection, returned at).
        self._idle: deque[tuple[AsyncConnection, float]] = deque()
        self._born: weakref.WeakKeyDictionary[AsyncConnection, float] = weakref.WeakKeyDictionary()
        self._closed = False

    @property
    def connections(self) -> list[AsyncConnection]:
        """Every connection this pool made that is still open, idle or in use."""
        return [conn for conn in list(self._born) if not conn.closed]

    def available(self) -> int:
        """How many idle connections the pool holds."""
        return len(self._idle)

    async def getconn(self, timeout: float) -> AsyncConnection:
        """A connection within ``timeout`` seconds, else :class:`~psycopg_pool.PoolTimeout`
        (a ``psycopg.OperationalError``); a failure to connect is raised as psycopg raised it."""
        if self._closed:
            raise PoolClosed("the pool is closed")
        deadline = time.monotonic() + timeout
        await self._acquire(timeout)
        try:
            conn = self._take_idle()
            if conn is None:
                conn = await self._connect(deadline)
        except BaseException:
            self._release()
            raise
        return conn

    async def _acquire(self, timeout: float) -> None:
        """Take a slot: at once when one is free, else the next one given back, within
        ``timeout`` (a slot handed to a call cancelled meanwhile goes on to the next)."""
        if self._taken < self._max_size and not self._waiters:
            self._taken += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, _expire, waiter, timeout)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # handed a slot, but leaving (cancelled): pass it on
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _release(self) -> None:
        """Give a slot back: to the first call still waiting, else to the free ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._taken -= 1

    async def putconn(self, conn: AsyncConnection) -> None:
        """Give ``conn`` back: kept idle when healthy, else closed."""
        try:
            now = time.monotonic()
            healthy = (
                not self._closed
                and not conn.closed
                and conn.pgconn.transaction_status == TransactionStatus.IDLE
                and now - self._born.get(conn, now) < self._max_lifetime
            )
            if healthy:
                self._idle.append((conn, now))
                self._trim(now)
            else:
                await _close(conn)
        finally:
            self._release()

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, deque()
        for conn, _ in idle:
            await _close(conn)

    def finish_all(self) -> None:
        """Close every connection at once, without the loop (which has ended)."""
        self._closed = True
        self._idle.clear()
        for conn in list(self._born):
            with contextlib.suppress(Exception):
                conn.pgconn.finish()

    def _take_idle(self) -> AsyncConnection | None:
        now = time.monotonic()
        while self._idle:
            conn, _ = self._idle.pop()
            if not conn.closed and now - self._born.get(conn, now) < self._max_lifetime:
                return conn
            _finish(conn)
        return None

    def _trim(self, now: float) -> None:
        """Close the idle connections (oldest first) unused for ``max_idle`` seconds, keeping
        ``min_size`` of them."""
        while len(self._idle) > self._min_size and now - self._idle[0][1] > self._max_idle:
            conn, _ = self._idle.popleft()
            _finish(conn)

    async def _connect(self, deadline: float) -> AsyncConnection:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PoolTimeout("no time left to connect")
        try:
            conn = await asyncio.wait_for(self._class.connect(self._conninfo, **self._kwargs), left)
        except asyncio.TimeoutError:
            raise PoolTimeout(f"could not connect within {left:.2g} s") from None
        self._born[conn] = time.monotonic()
        return conn


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout(f"no connection came free within {timeout:g} s"))


def _finish(conn: AsyncConnection) -> None:
    """Close ``conn`` without awaiting (``PQfinish``: a goodbye, then the socket closed)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


async def _close(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
