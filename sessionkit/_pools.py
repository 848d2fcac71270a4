"""Bounded connection pools: the implementation behind :mod:`sessionkit.storage`'s
``SyncPool``, ``AsyncPool``, ``DriverOps``, ``PoolTimeout`` and ``PoolClosed``.

Plugins import those names from :mod:`sessionkit.storage`, the face that is pinned and kept
from release to release; this module is where they live, and may be rearranged behind it.
They are for a driver that has no pool of its own (PyMySQL), or one whose pool will not do
(aiomysql's waits for a connection without a time limit; psycopg_pool's async one connects in
tasks of its own, which can hold a loop open for ever): the MySQL plugin's pools and the
PostgreSQL plugin's async ones are these.

Two pools, for one connection type ``C`` each, with nothing about any driver inside: the
driver's work comes in when the pool is made, as ``connect`` (a new connection; the async pool
passes the monotonic deadline of the call that asks, for a driver whose connecting must fit in
the call's wait) and :class:`DriverOps`, what the pool does with a connection it holds.

Both hold at most ``size`` connections, in use or idle. A call takes the most recently
returned idle connection (so the surplus of a burst goes idle and stays few), and opens one
only when none is idle; when all are busy it waits for one to come back, up to its timeout.
A connection whose call failed on the connection itself is given back ``broken`` and closed,
never reused: the server may still be working on its statement, and its reply would be read
as the next caller's.

:class:`SyncPool` is shared by threads, and never shared by two processes: a server that forks
its workers after the application was loaded (``gunicorn --preload``) hands each child the
parent's pool; the first call in a child finds the pool made in another process and forgets its
connections (closing only the child's copies of the sockets, which leaves the parent's
connections open and untouched) before opening its own.

:class:`AsyncPool` serves the coroutines of one event loop and runs no task of its own, so a
loop may end at any moment without it: each call connects in its own task, a cancelled call
cancels its own attempt, and nothing is left waiting for ever. Optionally (psycopg_pool's
ways) it closes idle connections beyond ``min_idle`` unused for ``max_idle`` seconds, and any
older than ``max_lifetime``, when next seen.

The pools' own errors, :class:`PoolTimeout` and :class:`PoolClosed`, are
:class:`~sessionkit.StorageError`\\ s, so one that a storage lets escape is still answered
as a storage failure (a 503 without ``Set-Cookie``), never as a crash. A storage may still
raise its own ``StorageError`` saying what the wait means for its backend (which option bounds
it), with the pool's error chained.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._errors import StorageError

__all__ = ["AsyncPool", "DriverOps", "PoolClosed", "PoolTimeout", "SyncPool"]

C = TypeVar("C")


@dataclass(frozen=True)
class DriverOps(Generic[C]):
    """What a pool does with a connection of the driver's, each without waiting.

    ``alive(conn)``: whether an idle connection may still be used (asked before an idle
    connection is handed out: one the server closed is never given to a call). ``discard``:
    close one at once, without waiting for a server that may not answer. ``close``: close one
    politely (the pool's own ``close()``). ``abandon`` (the async pool's): free the socket of a
    connection whose event loop has closed, without that loop; ``discard`` when not given (a
    driver whose ``discard`` needs no loop).
    """

    alive: Callable[[C], bool]
    discard: Callable[[C], None]
    close: Callable[[C], None]
    abandon: Callable[[C], None] | None = None


class PoolTimeout(StorageError):
    """No connection came free within the call's wait.

    A :class:`~sessionkit.StorageError`, so it is answered as a storage failure wherever it
    surfaces; a storage may raise its own, naming the option that bounds the wait, with this
    chained (``raise StorageError(...) from exc``).
    """


class PoolClosed(StorageError):
    """The pool was closed (a storage closes its pools in its ``close()``); a
    :class:`~sessionkit.StorageError`, as :class:`PoolTimeout` is."""


#: Taken by the first call of a forked child that finds a pool of its parent, so that two
#: threads of the child do not both start it afresh. Made anew in every child: a thread of the
#: parent may have held it at the fork.
_fork_lock = threading.Lock()


def _new_fork_lock() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_new_fork_lock)


class _Pool(Generic[C]):
    """What both pools keep: the driver's ways, the bounds, and whether it is closed."""

    def __init__(self, ops: DriverOps[C], *, size: int, wait: float) -> None:
        self._alive, self._discard, self._close = ops.alive, ops.discard, ops.close
        self._size, self._wait = size, wait
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _quietly(self, how: Callable[[C], None], conn: C) -> None:
        with contextlib.suppress(Exception):  # closing: nothing to report to, nobody to tell
            how(conn)


class SyncPool(_Pool[C]):
    """At most ``size`` connections made by ``connect()``, shared by the threads of a process.

    :meth:`acquire` waits ``wait`` seconds at most for one, then raises :class:`PoolTimeout`;
    each connection goes back with :meth:`release`, ``broken=True`` when its call failed on
    the connection itself (it is closed, never reused). A forked child never uses its
    parent's connections: its first call forgets them, and opens its own.
    """

    def __init__(
        self, connect: Callable[[], C], ops: DriverOps[C], *, size: int, wait: float
    ) -> None:
        super().__init__(ops, size=size, wait=wait)
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._mutex = threading.Lock()
        self._idle: list[C] = []
        self._pid = os.getpid()

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


class AsyncPool(_Pool[C]):
    """At most ``size`` connections for the coroutines of one event loop, made by
    ``await connect(deadline)`` (the monotonic time by which the asking call gives up). One
    pool per loop, made by a ``PerLoop``, whose ``release`` calls :meth:`release_dead`: it
    frees a closed loop's connections with ``ops.abandon``.

    A call waits ``wait`` seconds at most for a connection (or the ``timeout`` it gives), then
    raises ``timeout_error(message)``; after :meth:`close`, ``closed_error(message)``: the
    driver's own exception classes, where its callers expect those.
    """

    def __init__(
        self,
        connect: Callable[[float], Awaitable[C]],
        ops: DriverOps[C],
        *,
        size: int,
        wait: float,
        min_idle: int = 0,
        max_idle: float = math.inf,
        max_lifetime: float = math.inf,
        timeout_error: Callable[[str], Exception] = PoolTimeout,
        closed_error: Callable[[str], Exception] = PoolClosed,
    ) -> None:
        super().__init__(ops, size=size, wait=wait)
        self._connect = connect
        self._abandon = ops.discard if ops.abandon is None else ops.abandon
        self._min_idle = min_idle
        self._max_idle = max_idle
        self._max_lifetime = max_lifetime
        self._timeout_error = timeout_error
        self._closed_error = closed_error
        #: Connections out or idle (the slots taken), and the calls waiting for a slot, each
        #: handed one by :meth:`_give_slot` (its future's result) in the order they came.
        self._taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Idle connections, most recently returned last: (connection, returned at, made at).
        self._idle: deque[tuple[C, float, float]] = deque()
        #: Every connection made and not closed since, idle or in use, by ``id``: (connection,
        #: made at). Closed directly when the loop has ended (:meth:`release_dead`).
        self._members: dict[int, tuple[C, float]] = {}

    def idle(self) -> int:
        """How many idle connections the pool holds."""
        return len(self._idle)

    async def acquire(self, timeout: float | None = None) -> C:
        """A connection within ``timeout`` seconds (``wait`` if not given): an idle one that is
        still alive, else a new one. A failure to connect is raised as ``connect`` raised it."""
        if self._closed:
            raise self._closed_error("the pool is closed")
        wait = self._wait if timeout is None else timeout
        deadline = time.monotonic() + wait
        await self._take_slot(wait)
        try:
            if self._closed:  # while this call waited
                raise self._closed_error("the pool is closed")
            conn = self._take_idle()
            if conn is None:
                conn = await self._connect(deadline)
                self._members[id(conn)] = (conn, time.monotonic())
            return conn
        except BaseException:
            self._give_slot()
            raise

    def release(self, conn: C, *, broken: bool) -> None:
        """Give ``conn`` back after a call: kept idle unless ``broken``, too old, or the pool
        closed, else closed at once."""
        try:
            now = time.monotonic()
            _, born = self._members.get(id(conn), (conn, now))
            if broken or self._closed or now - born >= self._max_lifetime:
                self._forget(conn, self._discard)
            else:
                self._idle.append((conn, now, born))
                self._trim(now)
        finally:
            self._give_slot()

    def close(self) -> None:
        """Close the idle connections now (in the pool's loop) and the busy ones as they come
        back."""
        self._closed = True
        idle, self._idle = self._idle, deque()
        for conn, _, _ in idle:
            self._forget(conn, self._close)

    def release_dead(self) -> None:
        """Free every connection of this pool, whose loop is closed (``PerLoop``'s
        ``release``): each is abandoned, its socket closed without the loop."""
        self._closed = True
        members, self._members, self._idle = list(self._members.values()), {}, deque()
        for conn, _ in members:
            self._quietly(self._abandon, conn)

    async def _take_slot(self, timeout: float) -> None:
        """Take a slot: at once when one is free, else the next one given back, within
        ``timeout`` (a slot handed to a call cancelled meanwhile goes on to the next)."""
        if self._taken < self._size and not self._waiters:
            self._taken += 1
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(timeout, self._expire, waiter, timeout)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give_slot()  # handed a slot, but leaving (cancelled): pass it on
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if not waiter.done():
            waiter.set_exception(
                self._timeout_error(f"no connection came free within {timeout:g} s")
            )

    def _give_slot(self) -> None:
        """Give a slot back: to the first call still waiting, else to the free ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._taken -= 1

    def _take_idle(self) -> C | None:
        """The most recently returned idle connection still usable; the others seen on the
        way are closed."""
        now = time.monotonic()
        while self._idle:
            conn, _, born = self._idle.pop()
            if now - born < self._max_lifetime and self._alive(conn):
                return conn
            self._forget(conn, self._discard)
        return None

    def _trim(self, now: float) -> None:
        """Close the idle connections (oldest first) unused for ``max_idle`` seconds, keeping
        ``min_idle`` of them."""
        while len(self._idle) > self._min_idle and now - self._idle[0][1] > self._max_idle:
            conn, _, _ = self._idle.popleft()
            self._forget(conn, self._discard)

    def _forget(self, conn: C, how: Callable[[C], None]) -> None:
        self._members.pop(id(conn), None)
        self._quietly(how, conn)
