"""The storage's single-key commands, sent on connections it keeps rather than checks out.

redis-py's client takes a connection from its pool and gives it back around every command.
The checkout polls the socket for stray bytes (a non-blocking ``recv`` between two timeout
changes) and, under asyncio, takes the pool's lock and records pool metrics; measured on a
loopback server it costs about 25 µs a command, a fifth of the round trip, and a session
makes one or two commands a request. So a storage that built its own client keeps the
connections it has used in a free list of its own (a *lane*) and sends ``GET``/``SET``/...
on them with the connection's own ``send_command`` and ``read_response``.

Why skipping the poll is safe: redis-py's connection disconnects itself when a send or a
read fails or is interrupted (any ``BaseException``: a socket timeout, a cancelled task), so
a connection back on the free list has either read its whole reply or is closed, and a
closed one reconnects on its next command. A connection or timeout error is retried under
the connection's own ``Retry`` policy, disconnecting between tries, as the client does. The
pool's poll also catches a connection the server closed while it sat idle (Redis's
``timeout``, a proxy's idle limit) and reconnects it before sending; the lane finds that out
by the send failing, so a ``ConnectionError`` on a connection that was kept idle gets one
more try on a fresh connection. Every command sent this way is idempotent (``GET``, ``SET``,
``SET XX``, ``PEXPIRE``, ``GETEX``, ``DEL``, and ``replace_if``'s script), so a try whose reply
was lost may be repeated. Only two answers can change: ``take``'s ``DEL`` repeated after it
deleted counts 0, and ``replace_if``'s script repeated after it wrote finds its new value, not
the expected one, and answers 0 (the client's own retries, where there is no lane, do the
same). Both err the safe way: a ``regenerate()`` then carries no data over, and a renewal that
happened is reported as skipped. The connections stay counted as in use by the pool, so the
pool's ``max_connections`` still bounds them and closing the client disconnects them. A
forked child forgets its parent's free lists (the pool resets itself in the child the same
way).

Where there is no lane: a storage given clients (yours may be a cluster, a sentinel's, or
carry client-side caching) and one speaking RESP3 (``protocol=3``, whose push messages the
client handles) send every command through the client's ``execute_command``; their lane is
only a pass-through. redis-py's OpenTelemetry command metrics are not recorded for commands
that go direct (the pool's connection metrics are).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

__all__ = ["AsyncClient", "AsyncLane", "SyncClient", "SyncLane"]

SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AsyncClient: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
Arg: TypeAlias = str | bytes | int

_LANES: weakref.WeakSet[SyncLane | AsyncLane] = weakref.WeakSet()


def _forget_all() -> None:
    """In a forked child: drop every free list (its sockets are the parent's)."""
    for lane in list(_LANES):
        lane.forget()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_all)


class SyncLane:
    """Free connections of one sync client, for the storage's single-key commands.

    ``direct=False`` makes it a pass-through to ``client.execute_command``.
    """

    __slots__ = ("__weakref__", "_checkout", "_execute", "_idle", "client")

    def __init__(self, client: SyncClient, *, direct: bool) -> None:
        self.client = client
        self._checkout: Callable[[], Any] | None = None
        if direct and isinstance(client, redis.Redis):
            self._checkout = client.connection_pool.get_connection
        self._execute: Callable[..., Any] = client.execute_command
        self._idle: list[Any] = []
        _LANES.add(self)

    def forget(self) -> None:
        self._idle.clear()

    def command(self, *args: Arg) -> Any:
        """Send one command and return its reply (an error reply raises ResponseError)."""
        if self._checkout is None:
            return self._execute(*args)
        idle = self._idle
        # list.pop/append are atomic, so threads never share a connection.
        reused = bool(idle)
        conn = idle.pop() if reused else self._checkout()
        try:
            try:
                return _exchange(conn, args)
            except redis.ConnectionError:
                if not reused:
                    raise
                # Kept idle, it may have been closed by the server's ``timeout`` or a proxy
                # (the pool's poll would have noticed before sending). It is disconnected
                # now and reconnects for one more try; every command sent here is idempotent.
                return _exchange(conn, args)
        finally:
            idle.append(conn)


def _exchange(conn: Any, args: tuple[Arg, ...]) -> Any:
    """Send and read under the connection's retry policy, disconnecting between tries."""

    def once() -> Any:
        conn.send_command(*args)
        return conn.read_response()

    return conn.retry.call_with_retry(once, lambda _error: conn.disconnect())


class AsyncLane:
    """:class:`SyncLane` for an asyncio client (whose connections belong to one event loop)."""

    __slots__ = ("__weakref__", "_checkout", "_execute", "_idle", "client")

    def __init__(self, client: AsyncClient, *, direct: bool) -> None:
        self.client = client
        self._checkout: Callable[[], Awaitable[Any]] | None = None
        if direct and isinstance(client, redis.asyncio.Redis):
            self._checkout = client.connection_pool.get_connection
        self._execute: Callable[..., Awaitable[Any]] = client.execute_command
        self._idle: list[Any] = []
        _LANES.add(self)

    def forget(self) -> None:
        self._idle.clear()

    async def command(self, *args: Arg) -> Any:
        """Send one command and return its reply (an error reply raises ResponseError)."""
        if self._checkout is None:
            return await self._execute(*args)
        idle = self._idle
        reused = bool(idle)
        conn = idle.pop() if reused else await self._checkout()
        try:
            try:
                return await _aexchange(conn, args)
            except redis.ConnectionError:
                if not reused:
                    raise
                return await _aexchange(conn, args)
        finally:
            idle.append(conn)


async def _aexchange(conn: Any, args: tuple[Arg, ...]) -> Any:
    async def once() -> Any:
        await conn.send_command(*args)
        return await conn.read_response()

    return await conn.retry.call_with_retry(once, lambda _error: conn.disconnect())
