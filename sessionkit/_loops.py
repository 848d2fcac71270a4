"""One asyncio client per event loop: a helper for storage plugins with an asyncio driver.

asyncio clients (redis-py's, pymongo's, most others) belong to the loop they were opened on;
used from another loop they fail ("Event loop is closed", "attached to a different loop"). A
storage is often built once at import time and then used from whichever loop serves requests
(one per test with pytest-asyncio, one per thread in some servers, one per request where
asgiref's ``async_to_sync`` runs an async view under WSGI), so it makes its asyncio client
lazily, per running loop, with :class:`PerLoop`. The Redis and MongoDB plugins use it; it
lives in the core so that every plugin gets the same, tested behaviour instead of a copy.

Why loops that ended are swept, rather than left to the garbage collector: a real asyncio
client holds its loop (its connections' transports do, its locks and tasks do), so a client
kept as the value of a ``WeakKeyDictionary`` keyed by that loop keeps its own key alive, and
nothing is ever dropped. A loop-per-request server then leaks a client, and its open sockets,
per request. So whenever a loop asks for its first client, :class:`PerLoop` looks for loops
that have been *closed* since: nothing can run on a closed loop again, so their clients are
dead. Each is forgotten, and handed to ``release`` (given by the plugin) to free its sockets
synchronously, since there is no loop left to run the client's own ``aclose()``. The same
happens when the ``PerLoop`` itself is collected (a storage dropped without ``close()``
once its loop ended), so neither a client nor ``release`` may hold the ``PerLoop``'s owner:
its finalizer holds both, and would keep that owner alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["PerLoop"]

T = TypeVar("T")


class PerLoop(Generic[T]):
    """Clients made by ``factory``, one per event loop, on first use in that loop.

    ``get()`` returns the running loop's client, making it on the first call in that loop;
    later calls in the same loop return the same object. Loops are held weakly, and the
    clients of loops that were closed are dropped the next time any loop makes its client
    (or at :meth:`clear`), each passed to ``release(client, loop)`` first: a storage used from
    many short-lived loops keeps no more than the live loops' clients. ``release`` must not
    need the loop (it is closed); :meth:`close_transports` is one that frees every socket
    the loop still had open. Safe to share between threads.
    """

    def __init__(
        self,
        factory: Callable[[], T],
        release: Callable[[T, asyncio.AbstractEventLoop], None] | None = None,
    ) -> None:
        self._factory: Callable[[], T] | None = factory
        self._afactory: Callable[[], Awaitable[T]] | None = None
        self._release = release
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary()
        )
        # A client being made by an async factory, per loop: the other coroutines of that
        # loop wait for it rather than making a second one.
        self._making: dict[asyncio.AbstractEventLoop, asyncio.Future[T]] = {}
        # The last loop asked for and its client, read without the lock: one tuple, replaced
        # whole, so a thread sees an old pair or a new one, never a mix. The loop is held
        # weakly here too. The lock is then taken only when the loop changes, not on every storage
        # operation (figures in docs/performance.md).
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], T] | None = None
        # Released when this PerLoop is collected, too: a storage used from a loop that then
        # closed (``asyncio.run(main())``, a test client's loop) and dropped without
        # ``close()`` would else leave its dead clients to the garbage collector, each
        # connection reporting itself unclosed. A weakref callback runs before the collector
        # finalizes any object of the same garbage (the transports among them); the finalizer
        # holds the clients and ``release``, never this object, so it keeps no storage alive
        # unless one of those holds it.
        self._finalizer = weakref.finalize(
            self, _release_closed, self._clients, self._lock, release
        )

    @classmethod
    def from_async(
        cls,
        factory: Callable[[], Awaitable[T]],
        release: Callable[[T, asyncio.AbstractEventLoop], None] | None = None,
    ) -> PerLoop[T]:
        """Clients made with ``await factory()``, for drivers whose asyncio client must be
        created inside its loop (it connects, or reads the running loop, while being made).

        Ask for the client with ``await per_loop.aget()``; ``get()`` then works only once
        this loop's client exists. Coroutines of one loop that ask while it is being made
        wait for that one client; a factory that fails leaves nothing behind (the next call
        tries again), and its error reaches every coroutine that waited for it.
        """
        per_loop = cls(_no_sync_factory, release)
        per_loop._factory = None
        per_loop._afactory = factory
        return per_loop

    def get(self) -> T:
        """The client of the running loop (must be called from a coroutine)."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        with self._lock:
            client = self._clients.get(loop)
            if client is None and self._factory is None:
                raise RuntimeError(
                    "this PerLoop makes its clients with await: use `await per_loop.aget()`"
                )
            dead = self._take_dead() if client is None else []
            if client is None:
                assert self._factory is not None
                client = self._clients[loop] = self._factory()
            self._last = (weakref.ref(loop, self._forget_last), client)
        _release(self._release, dead)
        return client

    async def aget(self) -> T:
        """The client of the running loop, made with ``await`` (see :meth:`from_async`) or by
        the plain factory, on the first call in that loop."""
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0]() is loop:
            return last[1]
        if self._afactory is None:
            return self.get()
        while True:
            with self._lock:
                client = self._clients.get(loop)
                if client is not None:
                    self._last = (weakref.ref(loop, self._forget_last), client)
                    return client
                making = self._making.get(loop)
                if making is None:
                    making = self._making[loop] = loop.create_future()
                    break
            try:
                return await asyncio.shield(making)
            except _Retry:
                continue  # the coroutine making it was cancelled: make it here
        return await self._make(loop, making, self._afactory)

    async def _make(
        self,
        loop: asyncio.AbstractEventLoop,
        making: asyncio.Future[T],
        factory: Callable[[], Awaitable[T]],
    ) -> T:
        """Make the loop's client with ``factory``; tell those waiting for it how it went."""
        try:
            client = await factory()
        except BaseException as exc:
            with self._lock:
                del self._making[loop]
            failure = _Retry() if isinstance(exc, asyncio.CancelledError) else exc
            making.set_exception(failure)
            making.exception()  # retrieved: nobody may be waiting
            raise
        with self._lock:
            del self._making[loop]
            dead = self._take_dead()
            self._clients[loop] = client
            self._last = (weakref.ref(loop, self._forget_last), client)
        making.set_result(client)
        _release(self._release, dead)
        return client

    def _take_dead(self) -> list[tuple[T, asyncio.AbstractEventLoop]]:
        """Forget the clients of closed loops and return them (call under the lock)."""
        dead = _closed(self._clients)
        for _, loop in dead:
            del self._clients[loop]
        last = self._last
        if last is not None and any(last[0]() is loop for _, loop in dead):
            self._last = None
        return dead

    def _forget_last(self, dead: weakref.ref[asyncio.AbstractEventLoop]) -> None:
        """The last loop was collected: let its client go with it."""
        last = self._last
        if last is not None and last[0] is dead:
            self._last = None

    def pop_current(self) -> T | None:
        """Forget and return the running loop's client, if one was made (to close it there)."""
        with self._lock:
            self._last = None
            return self._clients.pop(asyncio.get_running_loop(), None)

    def clear(self) -> None:
        """Forget every client; those of closed loops are released first (the clients of
        loops still open cannot be closed from here: close them in their loop)."""
        with self._lock:
            dead = self._take_dead()
            self._last = None
            self._clients.clear()
        _release(self._release, dead)

    def __len__(self) -> int:
        """How many clients are held (closed loops' included, until the next sweep)."""
        return len(self._clients)

    @staticmethod
    def close_transports(loop: asyncio.AbstractEventLoop) -> int:
        """Close the sockets of every transport a *closed* loop still has; return how many.

        A transport closes its socket through its loop (``transport.close()`` schedules the
        work with ``call_soon``), which a closed loop refuses, so the sockets of a client
        whose loop ended stay open until the garbage collector finds them. Nothing can use
        a closed loop's transports again, so closing their sockets here is what closing
        them would have done. Works for asyncio's selector loops (the default on POSIX),
        which keep a registry of their transports; any other loop is left alone (0).
        """
        if not loop.is_closed():
            raise RuntimeError("close_transports() is for a closed loop only")
        registry: Any = getattr(loop, "_transports", None)
        if registry is None:
            return 0
        return sum(PerLoop.close_transport(transport) for transport in list(registry.values()))

    @staticmethod
    def close_transport(transport: Any) -> bool:
        """Close the socket under ``transport`` (whose loop is closed); True if one was open.

        For a ``release`` that knows its client's transports (a redis-py connection's
        ``_writer.transport``), rather than every transport of the loop.
        """
        if transport is None:
            return False
        wrapped = transport.get_extra_info("socket")
        sock = getattr(wrapped, "_sock", wrapped)  # asyncio hands out a TransportSocket
        if not isinstance(sock, socket.socket) or sock.fileno() < 0:
            return False
        sock.close()
        _mark_closed(transport)
        return True


def _mark_closed(transport: Any) -> None:
    """Leave ``transport`` (and, under TLS, the one it wraps) as its ``close()`` would, less the
    part that needs the loop: closing, its socket gone. Else, once collected, it and the
    stream writer over it each report themselves unclosed (``ResourceWarning``), though the
    socket was closed. These are asyncio's own attributes, set only where they exist: a
    loop that keeps none is left as it is."""
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    if inner is not None and inner is not transport:
        _mark_closed(inner)
    for name, value in (("_closing", True), ("_closed", True), ("_sock", None)):
        if hasattr(transport, name):
            setattr(transport, name, value)


def _release(
    release: Callable[[T, asyncio.AbstractEventLoop], None] | None,
    dead: list[tuple[T, asyncio.AbstractEventLoop]],
) -> None:
    """Hand each dead client to ``release``; one that fails must not stop the others."""
    if release is None:
        return
    for client, loop in dead:
        with contextlib.suppress(Exception):
            release(client, loop)


def _release_closed(
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T],
    lock: threading.Lock,
    release: Callable[[T, asyncio.AbstractEventLoop], None] | None,
) -> None:
    """A collected ``PerLoop``'s finalizer: release the clients of its closed loops (those of
    loops still open are left to their loop). It also runs at interpreter exit for every
    ``PerLoop`` still alive, where a daemon thread stopped mid-call may hold the lock: then it
    gives up after a second rather than hang the exit."""
    if not lock.acquire(timeout=1.0):
        return
    try:
        dead = _closed(clients)
        clients.clear()
    finally:
        lock.release()
    _release(release, dead)


def _closed(
    clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T],
) -> list[tuple[T, asyncio.AbstractEventLoop]]:
    """The clients of closed loops, with their loops."""
    return [(client, loop) for loop, client in list(clients.items()) if loop.is_closed()]


class _Retry(Exception):
    """The coroutine making a loop's client was cancelled: a waiting one makes it instead."""


def _no_sync_factory() -> Any:
    raise RuntimeError("this PerLoop makes its clients with await: use `await per_loop.aget()`")
