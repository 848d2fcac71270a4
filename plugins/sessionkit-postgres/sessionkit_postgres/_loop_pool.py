"""The async connections of one event loop: sessionkit's :class:`~sessionkit.storage.AsyncPool`
of psycopg ``AsyncConnection``\\ s, a pool that runs no task of its own.

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
until ``close()``). What is psycopg's is here: connecting within the call's deadline, the
errors (psycopg_pool's, which are ``psycopg.OperationalError``\\ s), which connection may go
back to the pool, and closing one (``PQfinish``: a goodbye, then the socket closed; libpq's own
socket, so it needs no loop, and a dead loop's connections are closed the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import PoolClosed, PoolTimeout

from sessionkit.storage import AsyncPool, DriverOps

__all__ = ["LoopPool", "reusable"]

AsyncConnection = psycopg.AsyncConnection[Any]

#: Seconds an idle connection (beyond ``min_size``) is kept, and the longest a connection is
#: used at all: psycopg_pool's defaults, so sync and async connections age alike.
MAX_IDLE = 600.0
MAX_LIFETIME = 3600.0


class LoopPool(AsyncPool[AsyncConnection]):
    """Connections for the coroutines of one event loop (see the module's notes):
    ``await acquire(timeout)`` raises :class:`~psycopg_pool.PoolTimeout` when none came in
    time, and a failure to connect as psycopg raised it."""

    def __init__(
        self,
        conninfo: str,
        *,
        connection_class: type[AsyncConnection],
        kwargs: dict[str, Any],
        min_size: int,
        max_size: int,
        timeout: float,
        max_idle: float = MAX_IDLE,
        max_lifetime: float = MAX_LIFETIME,
    ) -> None:
        super().__init__(
            _connector(connection_class, conninfo, kwargs),
            _OPS,
            size=max_size,
            wait=timeout,
            min_idle=min_size,
            max_idle=max_idle,
            max_lifetime=max_lifetime,
            timeout_error=PoolTimeout,
            closed_error=PoolClosed,
        )
        #: The loop this pool serves (it is made in it), held so that the loop outlives the
        #: pool. psycopg's connections do not hold their loop as a transport does; without this
        #: the loop, once closed, was collected at once, ``PerLoop`` dropped the pool with it
        #: instead of releasing it (``release_dead``), and each connection then reported itself
        #: "deleted while still open" (a ``ResourceWarning`` per loop, in an app running a loop
        #: per request).
        self.loop = asyncio.get_running_loop()

    def putconn(self, conn: AsyncConnection) -> None:
        """Give ``conn`` back after a call, by ``ConnectionPool``'s name (a plan gives a
        connection back to either pool alike): kept only if :func:`reusable`, as
        ``ConnectionPool.putconn`` judges for itself."""
        self.release(conn, broken=not reusable(conn))


def reusable(conn: AsyncConnection) -> bool:
    """Whether ``conn`` may go back to the pool after a call: open, and in no transaction."""
    return not conn.closed and conn.pgconn.transaction_status == TransactionStatus.IDLE


def _connector(
    connection_class: type[AsyncConnection], conninfo: str, kwargs: dict[str, Any]
) -> Callable[[float], Awaitable[AsyncConnection]]:
    async def connect(deadline: float) -> AsyncConnection:
        """A new connection by ``deadline`` (the call's), else :class:`PoolTimeout`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise PoolTimeout("no time left to connect")
        try:
            return await asyncio.wait_for(connection_class.connect(conninfo, **kwargs), left)
        except asyncio.TimeoutError:
            raise PoolTimeout(f"could not connect within {left:.2g} s") from None

    return connect


def _open(conn: AsyncConnection) -> bool:
    return not conn.closed


def _finish(conn: AsyncConnection) -> None:
    """Close ``conn`` without awaiting (``PQfinish``: a goodbye, then the socket closed)."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()


#: Closing, in every case, is ``PQfinish`` (what ``AsyncConnection.close()`` does, without
#: awaiting): libpq's own socket, so it needs no loop, a dead loop's included.
_OPS: DriverOps[AsyncConnection] = DriverOps(alive=_open, discard=_finish, close=_finish)
