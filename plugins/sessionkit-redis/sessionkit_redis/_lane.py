"""The storage's single-key commands, sent on connections it keeps rather than checks out.

redis-py's client takes a connection from its pool and gives it back around every command.
The checkout polls the socket for stray bytes (a non-blocking ``recv`` between two timeout
changes) and, under asyncio, takes the pool's lock and records pool metrics; measured on a
loopback server it costs about 25 µs a command, a fifth of the round trip, and a session
makes one or two commands a request. So a storage that built its own client keeps the
connections it has used in a free list of its own (a *lane*) and sends ``GET``/``SET``/...
on them with the connection's own ``send_command`` and ``read_response``; under asyncio, a
plain connection's replies are read by a protocol of the lane's own instead (``_wire``).

Why skipping the poll is safe: redis-py's connection disconnects itself when a send or a
read fails or is interrupted (any ``BaseException``: a socket timeout, a cancelled task), so
a connection back on the free list has either read its whole reply or is closed, and a
closed one reconnects on its next command. A connection or timeout error is retried under
the connection's own ``Retry`` policy, disconnecting between tries, as the client does. The
pool's poll also catches a connection the server closed while it sat idle (Redis's
``timeout``, a proxy's idle limit) and reconnects it before sending; the lane finds that out
by the send failing, so a ``ConnectionError`` on a connection that was kept idle gets one
more try on a fresh connection. Every command sent this way is idempotent (``GET``, ``SET``,
``SET XX``, ``SET NX``, ``PEXPIRE``, ``GETEX``, ``DEL``, and ``replace_if``'s script), so a try
whose reply was lost may be repeated. Only three answers can change: ``take``'s ``DEL`` repeated
after it deleted counts 0, ``create``'s ``SET NX`` repeated after it wrote finds its own key
and answers nil, and ``replace_if``'s script repeated after it wrote finds its new value, not
the expected one, and answers 0 (the client's own retries, where there is no lane, do the
same). All err the safe way: a ``regenerate()`` then carries no data over, a new session draws
another id (the orphan expires with its TTL), and a renewal that happened is reported as
skipped. The connections stay counted as in use by the pool, so the
pool's ``max_connections`` still bounds them and closing the client disconnects them. A
forked child forgets its parent's free lists (the pool resets itself in the child the same
way).

Where there is no lane: a storage given clients (yours may be a cluster, a sentinel's, or
carry client-side caching), one on a Redis Cluster URL, and one speaking RESP3 (``protocol=3``,
whose push messages the client handles) send every command through the client's
``execute_command``; their lane is only a pass-through. redis-py's OpenTelemetry command
metrics are not recorded for commands that go direct (the pool's connection metrics are).

A write that must reach replicas (``wait_replicas``) goes with ``WAIT`` right behind it on the
same connection, in one round trip (:meth:`SyncLane.command_waited`): both are sent, then both
replies read, so an error reply to the write still leaves the connection in step. Through a
pass-through lane the pair goes as a pipeline, which redis-py also sends on one connection.
``WAIT`` counts the replicas that have everything this connection wrote, so it must follow on
the connection that made the write, never on another.

Behind Sentinel (a pool of redis-py's ``SentinelConnectionPool``), the connections a lane keeps
follow the primary: one connected to another server than the one the pool last heard the
Sentinels name is reconnected before it is used (redis-py's pool does the same to the
connections it gets back, by ``owns_connection``), and the lane asks the Sentinels again every
``check_every`` seconds, since a primary demoted by ``SENTINEL FAILOVER`` keeps serving reads
and writes on its open connections for seconds (until the Sentinels turn it into a replica)
and nothing else would tell a process that only reads. A connection whose write fell short of
its replicas is closed too: its server may have been replaced, and reconnecting asks the
Sentinels.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from sessionkit.storage import Plan, arun_plan, run_plan

from . import _wire

__all__ = ["AsyncClient", "AsyncLane", "LaneFull", "SyncClient", "SyncLane", "lane_limit"]

SyncClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster
AsyncClient: TypeAlias = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster
Arg: TypeAlias = str | bytes | int
#: ``("WAIT", replicas, milliseconds)``.
Wait: TypeAlias = tuple[str, int, int]

_LANES: weakref.WeakSet[SyncLane | AsyncLane] = weakref.WeakSet()


def _forget_all() -> None:
    """In a forked child: drop every free list (its sockets are the parent's)."""
    for lane in list(_LANES):
        lane.forget()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_all)


class LaneFull(redis.ConnectionError):
    """No connection of the lane came free within the wait (every one busy, none to open).

    A ``ConnectionError``, as redis-py's blocking pool raises for the same wait, so the
    storage reports it as a :class:`~sessionkit.StorageError` like any other outage.
    """


def lane_limit(max_connections: int) -> int:
    """How many of a pool's ``max_connections`` a lane may hold.

    The lane keeps the connections it has used checked out of the pool, so the pool only
    gets them back when the client closes. If the lane could hold them all, a ``SCAN`` walk,
    a pipeline (the ``WATCH`` fallback of ``replace_if``) or a command sent through the
    client would wait for a connection that never comes back. So a sixteenth of the pool,
    at least one connection, stays for those; a pool of one is the lane's alone.
    """
    if max_connections <= 1:
        return 1
    return max_connections - max(1, max_connections // 16)


def _pool_bounds(client: SyncClient | AsyncClient) -> tuple[int, float | None]:
    """``(lane limit, seconds a call waits for a connection)`` for a client's pool."""
    pool = getattr(client, "connection_pool", None)
    max_connections = getattr(pool, "max_connections", None)
    wait = getattr(pool, "timeout", None)  # a BlockingConnectionPool's; None: no wait bound
    if not isinstance(max_connections, int) or max_connections < 1:
        max_connections = 2**31
    return lane_limit(max_connections), wait if isinstance(wait, (int, float)) else None


class SyncLane:
    """Free connections of one sync client, for the storage's single-key commands.

    ``direct=False`` makes it a pass-through to ``client.execute_command``.

    The lane holds at most :func:`lane_limit` connections. A call that finds none free and
    the lane at its limit *waits* for one to come back, up to the pool's ``timeout`` (a
    :class:`redis.BlockingConnectionPool`'s wait), then fails with :class:`LaneFull`: heavy
    concurrency queues briefly instead of failing, and only a storage that stays busy or
    stalled past the wait fails.
    """

    __slots__ = (
        "__weakref__",
        "_check_every",
        "_checking",
        "_checkout",
        "_cond",
        "_execute",
        "_idle",
        "_limit",
        "_next_check",
        "_owned",
        "_sentinel_pool",
        "_wait",
        "_waiting",
        "client",
        "helpers",
    )

    def __init__(
        self,
        client: SyncClient,
        *,
        direct: bool,
        helpers: tuple[redis.Redis, ...] = (),
        check_every: float | None = None,
    ) -> None:
        self.client = client
        #: Clients closed with this lane's (a Sentinel's connections to its Sentinels).
        self.helpers = helpers
        self._checkout: Callable[[], Any] | None = None
        if direct and isinstance(client, redis.Redis):
            self._checkout = client.connection_pool.get_connection
        self._execute: Callable[..., Any] = client.execute_command
        self._limit, self._wait = _pool_bounds(client)
        self._idle: list[Any] = []
        self._owned = 0  # connections this lane holds, idle or busy
        self._waiting = 0  # calls waiting for one to come back
        self._cond = threading.Condition(threading.Lock())
        pool = getattr(client, "connection_pool", None)
        self._sentinel_pool: Any = (
            pool if isinstance(pool, redis.sentinel.SentinelConnectionPool) else None
        )
        self._check_every = check_every if self._sentinel_pool is not None and check_every else None
        self._next_check = 0.0
        self._checking = threading.Lock()
        _LANES.add(self)

    def close(self) -> None:
        """Close the client and its helpers (for a client the storage made)."""
        self.client.close()
        for helper in self.helpers:
            helper.close()

    def ready(self) -> None:
        """Nothing to do: :meth:`AsyncLane.ready`'s twin (a sync cluster client reads the
        cluster's layout when it is made), so a plan makes the same call on either side."""

    def forget(self) -> None:
        self._idle.clear()
        self._owned = 0
        self._waiting = 0
        self._cond = threading.Condition(threading.Lock())  # a lock held at fork stays held
        self._checking = threading.Lock()

    def _follow(self, conn: Any) -> None:
        """Behind Sentinel: disconnect ``conn`` if it is connected to another server than the
        primary the Sentinels named last, and connect a disconnected one through the
        Sentinels (``connect()`` asks them; a send on a disconnected connection would
        reconnect to the address it had, the old primary's)."""
        if (conn.host, conn.port) != self._sentinel_pool.master_address:
            conn.disconnect()  # harmless on a connection not connected yet
        if conn._sock is None:
            conn.connect()

    def _acquire(self) -> tuple[Any, bool]:
        """A connection and whether it was kept idle (else freshly checked out)."""
        idle = self._idle
        try:
            return idle.pop(), True  # list.pop is atomic: threads never share a connection
        except IndexError:
            pass
        deadline = None if self._wait is None else time.monotonic() + self._wait
        with self._cond:
            while True:
                if idle:
                    return idle.pop(), True
                if self._owned < self._limit:
                    self._owned += 1
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise LaneFull(f"no connection came free within {self._wait}s")
                self._waiting += 1
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting -= 1
        try:
            return self._checkout(), False  # type: ignore[misc]
        except BaseException:
            with self._cond:
                self._owned -= 1
                self._cond.notify()
            raise

    def _release(self, conn: Any) -> None:
        self._idle.append(conn)
        # A waiter counts itself under the lock before it looks at the free list, so either
        # it sees this connection or it is counted here and woken.
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def command(self, *args: Arg) -> Any:
        """Send one command and return its reply (an error reply raises ResponseError)."""
        if self._check_every is not None and time.monotonic() >= self._next_check:
            self.check_primary()
        if self._checkout is None:
            return self._execute(*args)
        conn, reused = self._acquire()
        try:
            if self._sentinel_pool is not None:
                self._follow(conn)
            try:
                return _exchange(conn, args)
            except redis.ConnectionError:
                if not reused:
                    raise
                # Kept idle, it may have been closed by the server's ``timeout`` or a proxy
                # (the pool's poll would have noticed before sending). It is disconnected
                # now and reconnects for one more try; every command sent here is idempotent.
                if self._sentinel_pool is not None:
                    self._follow(conn)
                return _exchange(conn, args)
        finally:
            self._release(conn)

    def command_waited(self, args: tuple[Arg, ...], wait: Wait) -> tuple[Any, int]:
        """Send a write and ``WAIT`` behind it on one connection: ``(its reply, replicas that
        acknowledged it)``. An error reply to the write raises once both replies are read."""
        return _pair(self.commands((args, wait), short_of=wait[1]))

    def commands(self, commands: tuple[tuple[Arg, ...], ...], *, short_of: int = 0) -> list[Any]:
        """Send ``commands`` together on one connection (one round trip) and return their
        replies in order, an error reply as the ``ResponseError`` in its place: every reply
        is read, so the connection stays in step.

        ``short_of``: the last command is a ``WAIT`` for that many replicas, and a connection
        whose ``WAIT`` counted fewer is closed (its server may have been replaced:
        reconnecting asks the Sentinels again)."""
        return run_plan(_commands(self, commands, short_of))

    def _exchange_on(self, conn: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
        """The I/O :func:`_commands` calls on either lane: here sync, on the async lane awaited."""
        return _exchange_many(conn, commands)

    def _pipeline(self, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
        return _pipelined(self.client, commands)

    def check_primary(self) -> None:
        """Ask the Sentinels which server is the primary (one caller at a time; the others
        go on with what was known). An answer naming another server makes every connection
        reconnect before its next use; no answer changes nothing (the connections' own
        errors tell)."""
        pool = self._sentinel_pool
        if pool is None or not self._checking.acquire(blocking=False):
            return
        try:
            self._next_check = time.monotonic() + (self._check_every or 0.0)
            with contextlib.suppress(redis.RedisError, OSError):
                pool.get_master_address()
        finally:
            self._checking.release()


def _commands(
    lane: SyncLane | AsyncLane, commands: tuple[tuple[Arg, ...], ...], short_of: int
) -> Plan[list[Any]]:
    """The calls and decisions of :meth:`SyncLane.commands`, for either lane (see ``_plan``).

    The single ``command`` of each lane is not a plan: it serves every ``get``, and makes the
    same decisions without a generator to drive."""
    if lane._check_every is not None and time.monotonic() >= lane._next_check:
        yield lane, "check_primary", ()
    replies: list[Any]
    if lane._checkout is None:
        replies = yield lane, "_pipeline", (commands,)
        return replies
    conn, reused = yield lane, "_acquire", ()
    try:
        if lane._sentinel_pool is not None:
            yield lane, "_follow", (conn,)
        try:
            replies = yield lane, "_exchange_on", (conn, commands)
        except redis.ConnectionError:
            if not reused:
                raise
            if lane._sentinel_pool is not None:
                yield lane, "_follow", (conn,)
            replies = yield lane, "_exchange_on", (conn, commands)  # idempotent, as above
        if short_of and _short_of(replies, short_of):
            yield conn, "disconnect", ()
        return replies
    finally:
        lane._release(conn)


def _exchange(conn: Any, args: tuple[Arg, ...]) -> Any:
    """Send and read under the connection's retry policy, disconnecting between tries (and on
    any interruption: redis-py's Sentinel connections would not, by default)."""

    def once() -> Any:
        if _wire.packs_plainly(conn):
            conn.send_packed_command([_wire.packed(conn, (args,))])
        else:
            conn.send_command(*args)
        return conn.read_response(disconnect_on_error=True)

    return conn.retry.call_with_retry(once, lambda _error: conn.disconnect())


def _exchange_many(conn: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
    """:func:`_exchange` of several commands sent together; an error reply is returned in its
    place (the replies after it still follow, and are read)."""

    def once() -> list[Any]:
        if _wire.packs_plainly(conn):
            conn.send_packed_command([_wire.packed(conn, commands)])
        else:
            conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response(disconnect_on_error=True))
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies

    replies: list[Any] = conn.retry.call_with_retry(once, lambda _error: conn.disconnect())
    return replies


def _pair(replies: list[Any]) -> tuple[Any, int]:
    """``(a write's reply, replicas that acknowledged it)`` from the replies to the write and
    its ``WAIT``; an error reply to either raises."""
    reply, acked = replies
    for result in (reply, acked):
        if isinstance(result, Exception):
            raise result
    return reply, int(acked)


def _short_of(replies: list[Any], replicas: int) -> bool:
    """Whether the last reply, ``WAIT``'s, counts fewer than ``replicas``."""
    acked = replies[-1]
    return not isinstance(acked, Exception) and int(acked) < replicas


def _pipelined(client: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
    """Commands through a client's pipeline (one connection, one round trip); an error reply
    is returned in its place."""
    with client.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        replies: list[Any] = pipe.execute(raise_on_error=False)
    return replies


class AsyncLane:
    """:class:`SyncLane` for an asyncio client (whose connections belong to one event loop).

    A call that waits is handed a connection directly by the call that gives one back
    (first come, first served), so no connection sits idle while a call waits.
    """

    __slots__ = (
        "__weakref__",
        "_check_every",
        "_checking",
        "_checkout",
        "_execute",
        "_idle",
        "_init",
        "_init_lock",
        "_limit",
        "_next_check",
        "_owned",
        "_sentinel_pool",
        "_wait",
        "_waiters",
        "client",
        "helpers",
    )

    def __init__(
        self,
        client: AsyncClient,
        *,
        direct: bool,
        helpers: tuple[redis.asyncio.Redis, ...] = (),
        check_every: float | None = None,
        init: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.client = client
        self.helpers = helpers
        #: Made ready by ``await init()`` before the first command, once (a cluster client's
        #: ``initialize``: redis-py's asyncio cluster client, used by many tasks at once
        #: before it has read the cluster's layout, breaks some of their connections).
        self._init = init
        self._init_lock: asyncio.Lock | None = None
        self._checkout: Callable[[], Awaitable[Any]] | None = None
        if direct and isinstance(client, redis.asyncio.Redis):
            self._checkout = client.connection_pool.get_connection
        self._execute: Callable[..., Awaitable[Any]] = client.execute_command
        self._limit, self._wait = _pool_bounds(client)
        self._idle: list[Any] = []
        self._owned = 0
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        pool = getattr(client, "connection_pool", None)
        self._sentinel_pool: Any = (
            pool if isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool) else None
        )
        self._check_every = check_every if self._sentinel_pool is not None and check_every else None
        self._next_check = 0.0
        self._checking = False
        _LANES.add(self)

    async def aclose(self) -> None:
        """Close the client and its helpers (for a client the storage made)."""
        await self.client.aclose()
        for helper in self.helpers:
            await helper.aclose()

    def forget(self) -> None:
        self._idle.clear()
        self._owned = 0
        self._waiters.clear()

    def connections(self) -> list[Any]:
        """The connections this lane holds idle (to close them when its loop is gone)."""
        return list(self._idle)

    async def _follow(self, conn: Any) -> None:
        """:meth:`SyncLane._follow`."""
        if (conn.host, conn.port) != self._sentinel_pool.master_address:
            await conn.disconnect()
        if not conn.is_connected:
            await conn.connect()

    async def _acquire(self) -> tuple[Any, bool]:
        if self._idle:
            return self._idle.pop(), True
        if self._owned < self._limit:
            self._owned += 1
            try:
                return await self._checkout(), False  # type: ignore[misc]
            except BaseException:
                self._owned -= 1
                self._wake_one_to_check_out()
                raise
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            # wait_for, not asyncio.timeout (3.11+): cancels the waiter when time is up.
            conn = await asyncio.wait_for(waiter, self._wait)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                self._release(waiter.result())  # handed one just as the wait ended
            elif not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if isinstance(exc, asyncio.TimeoutError):  # not TimeoutError before 3.11
                raise LaneFull(f"no connection came free within {self._wait}s") from None
            raise
        if conn is None:  # a checkout failed and left room: check one out ourselves
            return await self._acquire()
        return conn, True

    def _wake_one_to_check_out(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, conn: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    async def ready(self) -> None:
        """Run ``init`` if it has not succeeded yet (one task at a time; a failure raises
        here, and the next call tries again)."""
        if self._init is None:
            return
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if self._init is not None:
                await self._init()
                self._init = None

    async def command(self, *args: Arg) -> Any:
        """Send one command and return its reply (an error reply raises ResponseError)."""
        if self._check_every is not None and time.monotonic() >= self._next_check:
            await self.check_primary()
        if self._checkout is None:
            if self._init is not None:
                await self.ready()
            return await self._execute(*args)
        conn, reused = await self._acquire()
        try:
            if self._sentinel_pool is not None:
                await self._follow(conn)
            try:
                return await _aexchange(conn, args)
            except redis.ConnectionError:
                if not reused:
                    raise
                if self._sentinel_pool is not None:
                    await self._follow(conn)
                return await _aexchange(conn, args)
        finally:
            self._release(conn)

    async def command_waited(self, args: tuple[Arg, ...], wait: Wait) -> tuple[Any, int]:
        """:meth:`SyncLane.command_waited`."""
        return _pair(await self.commands((args, wait), short_of=wait[1]))

    async def commands(
        self, commands: tuple[tuple[Arg, ...], ...], *, short_of: int = 0
    ) -> list[Any]:
        """:meth:`SyncLane.commands`."""
        return await arun_plan(_commands(self, commands, short_of))

    async def _exchange_on(self, conn: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
        return await _aexchange_many(conn, commands)

    async def _pipeline(self, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
        if self._init is not None:
            await self.ready()
        return await _apipelined(self.client, commands)

    async def check_primary(self) -> None:
        """:meth:`SyncLane.check_primary`."""
        pool = self._sentinel_pool
        if pool is None or self._checking:
            return
        self._checking = True
        try:
            self._next_check = time.monotonic() + (self._check_every or 0.0)
            with contextlib.suppress(redis.RedisError, OSError):
                await pool.get_master_address()
        finally:
            self._checking = False


async def _asend(conn: Any, packed: list[bytes]) -> None:
    """Write ``packed`` to an asyncio connection, as its ``send_packed_command`` does, without
    wrapping every write in ``asyncio.wait_for``.

    With ``socket_timeout`` set (the storage always sets it) redis-py bounds each write with
    ``wait_for``, which on Python 3.11 makes a task and a timer per command: about 14 µs of
    CPU, a tenth of a loopback round trip (docs/performance.md). A command goes into the
    transport's buffer at once, and only a full buffer (a server not reading) makes a write
    wait: that wait alone is bounded, by the same timeout. The reply is still read under
    ``socket_timeout``, so a stalled server fails the call exactly as before.
    """
    if not conn.is_connected:
        await conn.connect_check_health(check_health=False)
    if conn.health_check_interval:
        await conn.check_health()
    writer = conn._writer
    try:
        writer.writelines(packed)
        if writer.transport.get_write_buffer_size() > _wire.WRITE_BUFFER_HIGH:
            await asyncio.wait_for(writer.drain(), conn.socket_timeout)
    except asyncio.TimeoutError:
        await conn.disconnect(nowait=True)
        raise redis.TimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        await conn.disconnect(nowait=True)
        raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc
    except BaseException:
        await conn.disconnect(nowait=True)
        raise


async def _aexchange(conn: Any, args: tuple[Arg, ...]) -> Any:
    """:func:`_exchange` on an asyncio connection: through its :mod:`~sessionkit_redis._wire`
    where it takes one, else redis-py's own send and read."""
    if _wire.plain(conn):
        return await conn.retry.call_with_retry(
            lambda: _wire.exchange(conn, args), lambda _error: conn.disconnect()
        )

    async def once() -> Any:
        await _asend(conn, conn.pack_command(*args))
        return await conn.read_response(disconnect_on_error=True)

    return await conn.retry.call_with_retry(once, lambda _error: conn.disconnect())


async def _aexchange_many(conn: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
    """:func:`_exchange_many` on an asyncio connection (as :func:`_aexchange`)."""
    if _wire.plain(conn):
        many: list[Any] = await conn.retry.call_with_retry(
            lambda: _wire.exchange_many(conn, commands), lambda _error: conn.disconnect()
        )
        return many

    async def once() -> list[Any]:
        await _asend(conn, conn.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response(disconnect_on_error=True))
            except redis.ResponseError as exc:
                replies.append(exc)
        return replies

    replies: list[Any] = await conn.retry.call_with_retry(once, lambda _error: conn.disconnect())
    return replies


async def _apipelined(client: Any, commands: tuple[tuple[Arg, ...], ...]) -> list[Any]:
    """:func:`_pipelined` through an asyncio client."""
    async with client.pipeline(transaction=False) as pipe:
        for args in commands:
            pipe.execute_command(*args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    return replies
