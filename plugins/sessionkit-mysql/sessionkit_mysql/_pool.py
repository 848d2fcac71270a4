"""Bounded connection pools: one of PyMySQL connections for the sync methods, and one of
aiomysql connections per event loop for the async methods.

Why our own pools. PyMySQL has none. aiomysql's waits for a free connection without a time
limit, and its connections wait for the server's replies without one too. Both pools here hold
at most ``max_connections`` connections, hand out the most recently used idle one first (so the
surplus of a burst goes idle and stays few), and make a caller wait at most ``pool_timeout``
for one when all are busy. A connection is opened only when none is idle.

**A connection the server has closed is never handed out.** When the server restarts (or kills
idle connections after ``wait_timeout``), every idle connection in the pool is dead, and the
first statement on each would fail. Before handing out an idle connection, the pool asks its
socket, without waiting, whether the server sent anything: an idle connection of a healthy
server has nothing to say, while a closed one reads as end-of-file (or holds the error packet
MySQL sends before it closes). Such a connection is closed and the next one tried, or a new one
opened. The check costs a few microseconds and no round trip, so a restarted server costs no
failed request.

**A connection is never shared by two processes.** A server that forks its workers after the
application was loaded (``gunicorn --preload``) hands each child the parent's pool: the first
call in a child finds the pool made in another process and forgets its connections (closing
the child's copies of the sockets, which leaves the parent's connections open and untouched)
before opening its own.

**A connection whose call failed on the connection itself** (a timeout, a lost connection, a
cancelled task mid-statement) is closed, never put back: the server may still be working on
its statement, and its reply would be read as the next caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["AsyncPool", "PoolClosed", "PoolTimeout", "SyncPool", "bounded", "socket_has_news"]

C = TypeVar("C")
T = TypeVar("T")


#: Taken by the first call of a forked child that finds a pool of its parent, so that two
#: threads of the child do not both start it afresh. Made anew in every child: a thread of the
#: parent may have held it at the fork.
_fork_lock = threading.Lock()


def _new_fork_lock() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_new_fork_lock)


class PoolTimeout(Exception):
    """Every connection stayed busy for ``pool_timeout``."""


class PoolClosed(Exception):
    """The storage was closed."""


if sys.version_info >= (3, 11):

    async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, cancelled after ``seconds`` (``TimeoutError``)."""
        async with asyncio.timeout(seconds):
            return await awaitable

else:  # pragma: no cover - Python 3.10

    async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
        """``await awaitable``, cancelled after ``seconds`` (``asyncio.TimeoutError``)."""
        return await asyncio.wait_for(awaitable, seconds)


def socket_has_news(sock: Any) -> bool:
    """Whether an idle connection's socket has anything to read, or is gone: either way the
    server has closed the connection (or is closing it: MySQL may send an error packet first),
    so it must not be used. Asked without waiting, of plain and TLS sockets alike (an idle TLS
    connection has nothing to read either); nothing is read."""
    try:
        fd = sock.fileno()
    except (AttributeError, OSError, ValueError):
        return True
    if fd < 0:
        return True
    try:
        if _poll is not None:
            poller = _poll()
            poller.register(fd, select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP)
            return bool(poller.poll(0))
        readable, _, broken = select.select([fd], [], [fd], 0)
        return bool(readable or broken)
    except (OSError, ValueError):
        return True


_poll = getattr(select, "poll", None)  # not on Windows, where select() has no descriptor limit


class SyncConnection(Protocol):
    """What the pool needs of a connection (PyMySQL's, or a test's stand-in)."""

    def close(self) -> None: ...


class SyncPool(Generic[C]):
    """At most ``size`` connections made by ``connect``, shared by threads.

    ``alive(connection)`` says whether an idle connection may still be used; ``discard``
    closes one at once (without a goodbye to a server that may not answer); ``close`` takes
    one politely. Connections busy when the pool is closed are discarded when they come back.
    """

    def __init__(
        self,
        connect: Callable[[], C],
        *,
        size: int,
        wait: float,
        alive: Callable[[C], bool],
        discard: Callable[[C], None],
        close: Callable[[C], None],
    ) -> None:
        self._connect = connect
        self._alive = alive
        self._discard = discard
        self._close = close
        self._wait = wait
        self._size = size
        self._slots = threading.BoundedSemaphore(size)
        self._mutex = threading.Lock()
        self._idle: list[C] = []
        self._closed = False
        self._pid = os.getpid()

    @property
    def closed(self) -> bool:
        return self._closed

    def idle(self) -> int:
        return len(self._idle)

    def acquire(self) -> C:
        """A connection for one call: an idle one that is still alive, else a new one.

        Raises :class:`PoolTimeout` when none came free within ``wait``, :class:`PoolClosed`
        after :meth:`close`, and whatever ``connect`` raises.
        """
        if self._closed:
            raise PoolClosed
        if self._pid != os.getpid():
            with _fork_lock:
                if self._pid != os.getpid():
                    self._forked()
        if not self._slots.acquire(timeout=self._wait):
            raise PoolTimeout
        try:
            while True:
                with self._mutex:
                    if self._closed:
                        raise PoolClosed
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect()
                if self._alive(conn):
                    return conn
                self._quietly(self._discard, conn)
        except BaseException:
            self._slots.release()
            raise

    def _forked(self) -> None:
        """This process was forked from the one that made the pool: start afresh. The locks
        are made anew too (another thread of the parent may have held one at the fork)."""
        inherited, self._idle = self._idle, []
        self._mutex = threading.Lock()
        self._slots = threading.BoundedSemaphore(self._size)
        self._pid = os.getpid()
        for conn in inherited:
            self._quietly(self._discard, conn)

    def release(self, conn: C, *, broken: bool) -> None:
        """Give ``conn`` back after a call; a ``broken`` one (or any, once closed) is closed."""
        if self._pid != os.getpid():  # made before a fork, used in the child since: not ours
            self._quietly(self._discard, conn)
            return
        try:
            with self._mutex:
                if not broken and not self._closed:
                    self._idle.append(conn)
                    return
            self._quietly(self._discard, conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections now and the busy ones as they come back."""
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            self._quietly(self._close, conn)

    @staticmethod
    def _quietly(how: Callable[[C], None], conn: C) -> None:
        with contextlib.suppress(Exception):  # closing: nothing to report to, nobody to tell
            how(conn)


class AsyncPool(Generic[C]):
    """At most ``size`` connections of one event loop, made by ``await connect()``.

    Like :class:`SyncPool`, for coroutines of the loop it was made in. ``abandon(conn)``
    frees a connection's socket without its loop, for the pool of a loop that has been closed
    (:meth:`release_dead`).
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[C]],
        *,
        size: int,
        wait: float,
        alive: Callable[[C], bool],
        discard: Callable[[C], None],
        close: Callable[[C], None],
        abandon: Callable[[C], None],
    ) -> None:
        self._connect = connect
        self._alive = alive
        self._discard = discard
        self._close = close
        self._abandon = abandon
        self._wait = wait
        self._slots = asyncio.Semaphore(size)
        self._idle: list[C] = []
        self._members: dict[int, C] = {}
        self._closed = False

    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> C:
        if self._closed:
            raise PoolClosed
        try:
            await bounded(self._slots.acquire(), self._wait)
        except (asyncio.TimeoutError, TimeoutError):
            raise PoolTimeout from None
        try:
            while True:
                if self._closed:
                    raise PoolClosed
                conn = self._idle.pop() if self._idle else None
                if conn is None:
                    conn = await self._connect()
                    self._members[id(conn)] = conn
                    return conn
                if self._alive(conn):
                    return conn
                self._forget(conn)
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: C, *, broken: bool) -> None:
        try:
            if not broken and not self._closed:
                self._idle.append(conn)
                return
            self._forget(conn)
        finally:
            self._slots.release()

    def _forget(self, conn: C, how: Callable[[C], None] | None = None) -> None:
        self._members.pop(id(conn), None)
        with contextlib.suppress(Exception):  # closing: nothing to report to
            (how or self._discard)(conn)

    def close(self) -> None:
        """Close the idle connections now (in the pool's loop) and the busy ones as they come
        back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._forget(conn, self._close)

    def release_dead(self) -> None:
        """Free every socket of this pool, whose loop is closed (``PerLoop``'s ``release``):
        the transports cannot close through a closed loop, so their sockets are closed
        directly."""
        self._closed = True
        members, self._members, self._idle = list(self._members.values()), {}, []
        for conn in members:
            with contextlib.suppress(Exception):
                self._abandon(conn)
