"""Redis / Valkey storage: one key per session, the TTL kept by the server.

Every operation is one command, so one round trip (the walks of the namespace aside):

========================  ====================================
``get``                   ``GET``
``set``                   ``SET key value PX ms`` (plain ``SET`` for no expiry)
``replace``               ``SET key value XX PX ms`` (written only if the key still lives)
``create``                ``SET key value NX PX ms`` (written only if no live key is there)
``touch``                 ``PEXPIRE key ms`` (``GETEX key PERSIST`` for no expiry)
``get_and_touch``         ``GETEX key PX ms`` (read and renew together)
``delete``                ``DEL``
``take``                  ``DEL`` (its count says whether a live key was there)
``replace_if``            ``EVALSHA`` of one Lua script: ``GET``, compare, ``SET [PX ms]``
``reset``                 ``SCAN MATCH <prefix>*`` and ``UNLINK`` in batches; never FLUSHDB
``count``                 ``SCAN MATCH <prefix>*``, counting the names (never ``KEYS``/``DBSIZE``)
``scan``                  ``SCAN MATCH <prefix>*``, then one pipeline of ``GET`` per page
``purge_expired``         nothing: the server expires keys itself
========================  ====================================

``replace_if`` runs as one script, so nothing comes between its compare and its write (Redis
before 8.4 has no compare-and-set command). It names its one key, so a cluster routes it to
the key's slot. It is sent by SHA; a server without the script in its cache (restarted,
``SCRIPT FLUSH``, another node) answers ``NOSCRIPT``, and the script goes once more in full
(``EVAL``), which caches it again. A server that refuses scripts altogether (an ACL without
``@scripting``, a proxy) gets ``WATCH``, ``GET``, ``MULTI``/``SET``/``EXEC`` instead.

TTLs go in milliseconds, rounded up, so a sub-second TTL is honoured. Expiry is the server's:
an expired key is absent to every command at once, whatever its background cleanup has done.
The server must be Redis >= 6.2 or Valkey (``GETEX``).

Keys are the prefix followed by the key, literally. Only the walks of the namespace
(``reset``, ``count``, ``scan``) use a pattern, and they escape the prefix's glob characters,
so ``sess*`` as a prefix matches itself and nothing else. Two storages whose prefixes start one
another (``a:`` and ``a:b:``) are not separate: Redis has no namespaces, only names, so the
shorter prefix's walks take in the longer one's keys (``reset`` empties both, ``count`` and
``scan`` include both). Give each app a prefix that no other prefix starts with.

Connections: from a URL, a storage makes its own ``redis.Redis`` (one connection pool) and,
lazily, one ``redis.asyncio.Redis`` per event loop; ``close``/``aclose`` disconnect them. The
pools are blocking ones (``max_connections``, 64 by default): a call that finds every
connection busy waits up to ``pool_timeout`` for one rather than failing at once. The client
of an event loop that has been closed is released (its sockets closed) when another loop
makes its client, so a loop per request leaks nothing (see ``sessionkit.PerLoop``). Its
single-key commands skip the pool's per-command checkout, on connections it keeps (see
``_lane``: about 25 µs less per command). A ``redis+cluster://`` URL gets redis-py's cluster
clients, a ``redis+sentinel://`` URL the primary its Sentinels name (see ``_topology``; the
URL forms are in ``_options``).

With ``client_cache=true`` (one server only), reads go through a client-side cache that the
server invalidates (see ``_cache``): a read of a session unchanged since this process last read
it makes no round trip, a miss sends ``GET`` and ``PTTL`` together, and every write here drops
its key from the cache as it returns.

With ``wait_replicas=N`` every write is followed by ``WAIT N ms`` on its connection, in the
same round trip, and one that fewer than ``N`` replicas acknowledged within ``wait_timeout``
is a :class:`~sessionkit.StorageError` (a delete is logged instead: see
:meth:`_check_acked`): Redis replicates asynchronously, and a write only the primary had is
lost when a replica takes its place. ``WAIT`` must follow the write on its own connection, so it is refused for Redis
Cluster, whose clients may send the two on different ones.

Or pass clients you built, which the storage uses through their own ``execute_command`` and
never closes::

    # Redis Cluster: every primary is scanned by reset(); UNLINK is split per hash slot.
    from redis.cluster import RedisCluster
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    storage = RedisStorage(client=RedisCluster.from_url("redis://node1:7000"),
                           async_client=AsyncRedisCluster.from_url("redis://node1:7000"))

    # Sentinel: the master's client follows failovers.
    from redis.sentinel import Sentinel
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    storage = RedisStorage(
        client=Sentinel([("sentinel1", 26379)]).master_for("mymaster"),
        async_client=AsyncSentinel([("sentinel1", 26379)]).master_for("mymaster"),
    )

A storage given only ``client`` serves the sync API, one given only ``async_client`` the async
API; calling the other side is a :class:`~sessionkit.ConfigError`. Clients must not decode
responses (``decode_responses=False``, the default).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from sessionkit import ConfigError, PerLoop, StorageError, ttl_seconds
from sessionkit.storage import ENTER, EXIT, Plan, arun_plan, run_plan

from ._cache import ClientCache
from ._lane import Arg, AsyncClient, AsyncLane, SyncClient, SyncLane, Wait
from ._options import (
    CLUSTER_NO_WAIT,
    DEFAULT_PREFIX,
    Target,
    check_prefix,
    parse_url,
    typed_target,
    wait_options,
)
from ._plan import TAKE, Batches
from ._topology import CommandTable, async_lane, connections, sync_lane

__all__ = ["AsyncClient", "RedisStorage", "SyncClient", "glob_escape"]

#: A side's lane, as a plan gets it: ``RedisStorage._sync_lane`` or ``_async_lane_here``.
LaneOf = Callable[[], SyncLane | AsyncLane]

#: Keys asked of each SCAN call (a hint to the server), and the size of the pages that
#: ``reset`` unlinks and ``scan`` fetches in one round trip each.
SCAN_COUNT = 500

_ONE_MS = timedelta(milliseconds=1)
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")

#: ``replace_if``: KEYS[1] the name; ARGV the expected bytes, the new value, and the TTL in
#: milliseconds (absent for no expiry, which a plain ``SET`` gives, as ``set`` does). A
#: missing (or expired) key reads as ``false``, which equals no string. Lua strings are
#: binary-safe, so the comparison is of the bytes, exactly.
REPLACE_IF_SCRIPT = b"""\
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""
#: The script's name in the server's cache (SHA-1 is what ``EVALSHA`` takes, no security).
REPLACE_IF_SHA = hashlib.sha1(REPLACE_IF_SCRIPT, usedforsecurity=False).hexdigest()


def glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters so ``text`` matches only itself in ``SCAN MATCH``."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def ttl_ms(ttl: timedelta | None) -> int | None:
    """``ttl`` in whole milliseconds, rounded up (a positive TTL never becomes zero)."""
    if ttl is None:
        return None
    ttl_seconds(ttl)  # rejects a zero or negative TTL, as every storage does
    return -(-ttl // _ONE_MS)


class _failures:  # lower case: it reads as a function, ``with _failures("GET"):``
    """Report a driver or socket failure as a StorageError with the cause chained.

    A class rather than a ``contextlib`` generator: it wraps every command, and costs a
    fifth as much this way (0.3 µs, not 1.5).

    Given a client-side cache, the block is a write of ``name`` (``None``: of every key), and
    the cache forgets it on the way out, whether the write succeeded or failed (a failed one
    may have been made): a read that starts after the write returns never sees the old value
    here, even before the server's message about it arrives.
    """

    __slots__ = ("cache", "name", "operation")

    def __init__(
        self, operation: str, cache: ClientCache | None = None, name: str | None = None
    ) -> None:
        self.operation = operation
        self.cache = cache
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if self.cache is not None:
            self.cache.invalidate(self.name)
        if isinstance(exc, _DRIVER_ERRORS):
            raise StorageError(f"redis {self.operation} failed: {exc}") from exc


#: What redis-py raises when a call fails (a cluster it cannot reach: not a RedisError).
_DRIVER_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
logger = logging.getLogger("sessionkit_redis")


def _short(operation: str, acked: int, wait: Wait) -> str:
    return (
        f"redis {operation}: made on the primary, but {acked} of the {wait[1]} replicas asked "
        f"for (wait_replicas) acknowledged it within {wait[2]} ms; a failover could lose it"
    )


def _expiry_args(ttl: timedelta | None) -> tuple[str, int] | tuple[str]:
    """``PX ms``, or ``PERSIST`` for no expiry (as ``GETEX`` takes them)."""
    ms = ttl_ms(ttl)
    return ("PERSIST",) if ms is None else ("PX", ms)


def _touch_args(name: str, ms: int | None) -> tuple[str, str, str, str] | tuple[str, str, str, int]:
    """``touch``'s operation and command: ``PEXPIRE key ms``, or ``GETEX key PERSIST`` for no
    expiry (``PERSIST`` alone would answer 0 for a live key that has none already)."""
    if ms is None:
        return ("GETEX", "GETEX", name, "PERSIST")
    return ("PEXPIRE", "PEXPIRE", name, ms)


def _touched(ms: int | None, reply: object) -> bool:
    """Whether ``touch`` found a live key: ``PEXPIRE`` answers 1, ``GETEX`` the value."""
    return reply is not None if ms is None else bool(reply)


def _set_args(name: str, value: bytes, ttl: timedelta | None) -> tuple[Arg, ...]:
    """``SET name value PX ms``, or a plain ``SET`` for no expiry."""
    ms = ttl_ms(ttl)
    return ("SET", name, value) if ms is None else ("SET", name, value, "PX", ms)


def _replace_if_args(
    name: str, expected: bytes, value: bytes, ttl: timedelta | None
) -> tuple[Arg, ...]:
    """The script's ``numkeys key ARGV...``, after ``EVALSHA sha`` or ``EVAL script``."""
    ms = ttl_ms(ttl)
    return (1, name, expected, value) if ms is None else (1, name, expected, value, ms)


def _scripts_refused(exc: redis.exceptions.ResponseError) -> bool:
    """Whether the server refuses to run scripts at all, rather than this one call failing: an
    ACL user without ``@scripting`` (``NOPERM``), or a proxy or managed service that does not
    know ``EVALSHA``. Renewals then go through ``WATCH`` instead of failing every time, which
    would log every active user out one lifetime later."""
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return True
    text = str(exc).lower()
    return "unknown command" in text or "noperm" in text


def _as_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise StorageError(f"redis returned {type(value).__name__}, not bytes: decode_responses is on")


def _release_dead_loop(lane: AsyncLane, loop: object) -> None:
    """Close the sockets of a lane whose event loop was closed (``PerLoop``'s ``release``).

    ``aclose()`` cannot run without the loop, and the transports close their sockets through
    it, so each connection of its clients (the pool's idle and busy ones, the lane's, each
    cluster node's, each Sentinel's) has the socket under its transport closed directly, and
    is marked disconnected.
    """
    conns = connections(lane)
    lane.forget()
    for conn in conns:
        writer = getattr(conn, "_writer", None)
        if writer is not None:
            PerLoop.close_transport(writer.transport)
            conn._reader = conn._writer = None
    if isinstance(lane.client, redis.asyncio.cluster.RedisCluster):
        # What its aclose() sets: closed (redis-py 8 reads the default node, earlier releases
        # _initialize). Left unset, the client, once collected, reports itself "Unclosed" at
        # ERROR through whatever event loop is running then.
        lane.client._initialize = True
        lane.client.nodes_manager.default_node = None  # type: ignore[assignment]


def _filled(
    cache: ClientCache, name: str, ticket: int, sent: float, replies: list[Any]
) -> bytes | None:
    """The value a cache miss read (``GET`` and ``PTTL`` of ``name``), kept in ``cache`` if
    its ticket still holds; an error reply to the ``GET`` raises (and keeps nothing)."""
    value, pttl = replies
    if isinstance(value, Exception):
        cache.abandon(name, ticket)
        raise value
    data = _as_bytes(value)
    cache.fill(name, ticket, sent, data, pttl)
    return data


def _check_raw(client: SyncClient | AsyncClient | None, name: str) -> None:
    kwargs: Mapping[str, Any] = client.get_connection_kwargs() if client is not None else {}
    if kwargs.get("decode_responses"):
        raise ConfigError(name, "must not decode responses (decode_responses=False)")


class RedisStorage:
    """Session storage in Redis or Valkey, keys namespaced by ``prefix``.

    ``RedisStorage("redis://host:6379/0", prefix="app:sess:", socket_timeout=2.0)`` builds its
    own clients (any redis-py connection option is accepted, checked by name; a call waits at
    most ``pool_timeout`` = 2 s for one of ``max_connections`` = 64 connections, then
    ``socket_timeout`` = 3 s for its reply). ``RedisStorage(client=..., async_client=...)``
    uses yours.
    """

    def __init__(
        self,
        url: str | Target | None = None,
        *,
        client: SyncClient | None = None,
        async_client: AsyncClient | None = None,
        prefix: str | None = None,
        **options: Any,
    ) -> None:
        self._closed = False
        #: The server refused scripts (an ACL without ``@scripting``, a proxy): ``replace_if``
        #: uses ``WATCH``/``MULTI``/``EXEC`` from then on (see :func:`_scripts_refused`).
        self._no_scripts = False
        self._lane: SyncLane | None = None
        self._loop_lanes: PerLoop[AsyncLane] | None = None
        self._async_lane: AsyncLane | None = None
        #: What the URL asked for (``None``: clients were passed in).
        self._target: Target | None = None
        self._making = threading.Lock()
        #: ``WAIT replicas ms`` sent behind every write, or ``None`` (``wait_replicas=0``).
        self._wait: Wait | None = None
        #: The client-side cache (``client_cache=true``; see ``_cache``), or ``None``.
        self._cache: ClientCache | None = None
        if url is not None:
            if client is not None or async_client is not None:
                raise ConfigError("client", "give a URL or clients, not both")
            if isinstance(url, Target):  # read already (from_url)
                if options:
                    raise ConfigError(min(options), "give options with a URL, not with a target")
                target = self._target = url
            else:
                target = self._target = parse_url(url, options)
            own = target.prefix if target.prefix is not None else DEFAULT_PREFIX
            self._set_prefix(own if prefix is None else prefix)
            self._set_wait(target.wait_replicas, target.wait_timeout)
            if target.kind != "cluster":  # a cluster's sync client connects when made
                self._lane = sync_lane(target)
            if target.cache is not None:  # one server only (parse_url refuses the others)
                pool = getattr(self._lane and self._lane.client, "connection_pool", None)
                self._cache = ClientCache(pool, self._prefix, target.cache)
            commands = CommandTable()  # a cluster's, handed from one loop's client to the next
            self._loop_lanes = PerLoop(lambda: async_lane(target, commands), _release_dead_loop)
            return
        self._set_prefix(DEFAULT_PREFIX if prefix is None else prefix)
        replicas, wait_timeout = wait_options(options)
        if options:
            raise ConfigError(
                min(options), "connection options need a URL; set them on your client"
            )
        if client is None and async_client is None:
            raise ConfigError("storage", "RedisStorage needs a URL, a client or an async_client")
        _check_raw(client, "client")
        _check_raw(async_client, "async_client")
        clusters = (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)
        if replicas and any(isinstance(c, clusters) for c in (client, async_client)):
            raise ConfigError("wait_replicas", CLUSTER_NO_WAIT)
        self._set_wait(replicas, wait_timeout)
        if client is not None:
            self._lane = SyncLane(client, direct=False)
        if async_client is not None:
            self._async_lane = AsyncLane(async_client, direct=False)

    @classmethod
    def from_url(cls, url: str, options: Mapping[str, Any]) -> RedisStorage:
        """Build from ``redis://host:port/db?prefix=...`` and options (the plugin's opener):
        the options come typed and checked by the core, the query read (``Backend(options=...)``)."""
        return cls(typed_target(url, options))

    def _set_prefix(self, prefix: object) -> None:
        self._prefix = check_prefix(prefix)
        self._pattern = glob_escape(self._prefix) + "*"

    def _set_wait(self, replicas: int, timeout: float) -> None:
        if replicas:
            self._wait = ("WAIT", replicas, max(1, math.ceil(timeout * 1000)))

    @property
    def wait_replicas(self) -> int:
        """How many replicas every write waits for (``WAIT``) before it counts as done."""
        return 0 if self._wait is None else self._wait[1]

    def conn(self) -> SyncClient:
        """The redis-py client this storage talks through (Fiber's ``Conn()``), for an
        operator's own commands. Its keys start with this storage's ``prefix``; do not close
        it yourself: ``close()`` does."""
        return self._sync_lane().client

    def aconn(self) -> AsyncClient:
        """The asyncio client of the running event loop (one per loop, see ``PerLoop``)."""
        return self._async_lane_here().client

    @property
    def prefix(self) -> str:
        """What every key of this storage starts with."""
        return self._prefix

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("redis storage is closed")

    def _sync_lane(self) -> SyncLane:
        self._check_open()
        lane = self._lane
        if lane is not None:
            return lane
        if self._target is not None:  # a Redis Cluster URL: its sync client, made on first use
            return self._make_sync_lane(self._target)
        raise ConfigError("client", "this storage has only an async_client; pass client= too")

    def _make_sync_lane(self, target: Target) -> SyncLane:
        """Make the sync client of a cluster, which asks a node for the cluster's layout (a
        failure is a StorageError, and the next call tries again)."""
        with self._making:
            if self._lane is None:
                with _failures("connect"):
                    self._lane = sync_lane(target)
            return self._lane

    def _async_lane_here(self) -> AsyncLane:
        self._check_open()
        if self._loop_lanes is not None:
            return self._loop_lanes.get()
        if self._async_lane is None:
            raise ConfigError("async_client", "this storage has only a client; pass async_client=")
        return self._async_lane

    def _sync(self) -> SyncClient:
        return self._sync_lane().client

    def _async(self) -> AsyncClient:
        return self._async_lane_here().client

    def _call(self, *args: Arg) -> Any:
        """One single-key command, on the lane's own connections where it has them."""
        return self._sync_lane().command(*args)

    async def _acall(self, *args: Arg) -> Any:
        return await self._async_lane_here().command(*args)

    def _write(self, operation: str, *args: Arg, erase: bool = False) -> Any:
        """A command that stores a session (``erase``: that deletes); with ``wait_replicas``,
        ``WAIT`` behind it (see :meth:`_written`). Without, the one call goes straight out:
        there is nothing to decide, so no plan to drive."""
        if self._wait is None:
            return self._sync_lane().command(*args)
        return run_plan(self._written(self._sync_lane, operation, args, erase))

    async def _awrite(self, operation: str, *args: Arg, erase: bool = False) -> Any:
        if self._wait is None:
            return await self._async_lane_here().command(*args)
        return await arun_plan(self._written(self._async_lane_here, operation, args, erase))

    def _check_acked(self, operation: str, acked: int, erase: bool = False) -> None:
        """A write that fewer replicas than ``wait_replicas`` acknowledged is a StorageError; a
        delete (``erase``) is logged, not raised: it is done on the primary and cannot be
        undone, and reporting it failed would make the caller act as if the record were
        still there (a ``regenerate()`` would drop its new copy: a user logged out)."""
        wait = self._wait
        if wait is not None and acked < wait[1]:
            if not erase:
                raise StorageError(_short(operation, acked, wait))
            logger.warning("%s", _short(operation, acked, wait))

    # -- plans: the calls and decisions of each operation of several steps, written once -------
    # ``lane`` is the side's lane getter (``_sync_lane`` or ``_async_lane_here``), called where
    # the direct code called it; see ``_plan``.

    def _written(
        self, lane: LaneOf, operation: str, args: tuple[Arg, ...], erase: bool = False
    ) -> Plan[Any]:
        """The reply to a write, with ``WAIT`` behind it in the same round trip when
        ``wait_replicas`` asks for it (see :meth:`_check_acked` for a short count)."""
        wait = self._wait
        if wait is None:
            return (yield lane(), "command", args)
        reply, acked = yield lane(), "command_waited", (args, wait)
        self._check_acked(operation, acked, erase)
        return reply

    def _read_through(self, lane: LaneOf, cache: ClientCache, name: str) -> Plan[bytes | None]:
        """A read the client cache could not serve: ``GET`` and ``PTTL`` together, the value
        kept if nothing changed the key meanwhile (see ``_cache``); a plain ``GET`` while
        the cache cannot keep anything."""
        with _failures("GET"):
            ticket = cache.begin(name)
            if ticket is None:  # the cache cannot keep what is read now
                return _as_bytes((yield lane(), "command", ("GET", name)))
            sent = time.monotonic()
            try:
                replies = yield lane(), "commands", ((("GET", name), ("PTTL", name)),)
            except BaseException:  # a cancelled task too
                cache.abandon(name, ticket)
                raise
            return _filled(cache, name, ticket, sent, replies)

    def _replace_if(
        self, lane: LaneOf, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> Plan[bool]:
        """``replace_if``: the script by SHA, in full if the server lost it, and the ``WATCH``
        transaction once the server has refused scripts."""
        name = self._key(key)
        args = _replace_if_args(name, expected, value, ttl)
        with _failures("replace_if", self._cache, name):
            if not self._no_scripts:
                try:
                    try:
                        sha = ("EVALSHA", REPLACE_IF_SHA, *args)
                        reply = yield from self._written(lane, "replace_if", sha)
                    except redis.exceptions.NoScriptError:  # not cached there: send it whole
                        whole = ("EVAL", REPLACE_IF_SCRIPT, *args)
                        reply = yield from self._written(lane, "replace_if", whole)
                    return bool(reply)
                except redis.exceptions.ResponseError as exc:
                    if not _scripts_refused(exc):
                        raise
                    self._no_scripts = True
            write = _set_args(name, value, ttl)
            return (yield from self._watched(lane().client, name, expected, write))

    def _watched(
        self, client: SyncClient | AsyncClient, name: str, expected: bytes, write: tuple[Arg, ...]
    ) -> Plan[bool]:
        """``WATCH``, ``GET``, compare, then ``MULTI``/the write/``EXEC`` on a pipeline (a ``with``
        block; redis-py's pipelines ignore the exception their exit is given)."""
        manager = client.pipeline(transaction=True)
        pipe = yield manager, ENTER, ()
        try:
            yield pipe, "watch", (name,)
            if (yield pipe, "get", (name,)) != expected:
                return False
            if self._wait is not None:
                return (yield from self._exec_waited(pipe, write))
            pipe.multi()
            pipe.execute_command(*write)
            yield pipe, "execute", ()
        except redis.exceptions.WatchError:  # written meanwhile: that write stands
            return False
        finally:
            yield manager, EXIT, (None, None, None)
        return True

    def _exec_waited(self, pipe: Any, write: tuple[Arg, ...]) -> Plan[bool]:
        """``MULTI``, the write, ``EXEC`` then ``WAIT``, each at once on the connection the
        pipeline holds since its ``WATCH`` (``WAIT`` must follow on that one). A connection
        an error leaves inside ``MULTI`` is closed, never given back that way."""
        try:
            yield pipe, "immediate_execute_command", ("MULTI",)
            yield pipe, "immediate_execute_command", write
            if (yield pipe, "immediate_execute_command", ("EXEC",)) is None:
                return False  # written meanwhile: that write stands
            acked = yield pipe, "immediate_execute_command", self._wait  # type: ignore[misc]
        except BaseException:
            if pipe.connection is not None:
                yield pipe.connection, "disconnect", ()
            raise
        self._check_acked("replace_if", int(acked))
        return True

    def _reset(self, lane: LaneOf) -> Plan[None]:
        """``reset``: unlink the names under the prefix a page at a time (through the client,
        which splits them per hash slot on a cluster), and ``WAIT`` behind each page when
        ``wait_replicas`` asks for it."""
        here = lane()
        client = here.client
        with _failures("reset", self._cache):
            yield here, "ready", ()
            pages = self._walk(client)
            while names := (yield pages, TAKE, ()):
                if self._wait is None:
                    yield client, "unlink", tuple(names)
                else:
                    yield from self._written(lane, "UNLINK", ("UNLINK", *names), erase=True)

    def _walk(self, client: SyncClient | AsyncClient) -> Batches[bytes]:
        """The names under this storage's prefix, in pages of at most ``SCAN_COUNT``.

        ``SCAN`` walks the keyspace a slice at a time without blocking the server (``KEYS``
        would), and tolerates keys being deleted meanwhile; a cluster client scans every
        primary. Use inside ``_failures``.
        """
        return Batches(client.scan_iter(match=self._pattern, count=SCAN_COUNT), SCAN_COUNT)

    def _close(self, in_loop: bool) -> Plan[None]:
        """``close`` (``in_loop``: ``aclose``, which also closes the running loop's client)."""
        if self._closed:
            return
        self._closed = True
        if self._cache is not None:
            self._cache.close()
        if self._loop_lanes is not None:  # the storage made its clients
            lane = self._loop_lanes.pop_current() if in_loop else None
            self._loop_lanes.clear()
            with _failures("close"):
                if lane is not None:
                    yield lane, "aclose", ()
                if self._lane is not None:
                    self._lane.close()

    # -- sync ----------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        # Not a plan: the hottest call, one command, or an answer from the client cache.
        name = self._key(key)
        cache = self._cache
        if cache is None:
            with _failures("GET"):
                return _as_bytes(self._call("GET", name))
        value = cache.get(name)
        if value is not None:
            return value
        return run_plan(self._read_through(self._sync_lane, cache, name))

    def set(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        name = self._key(key)
        with _failures("SET", self._cache, name):
            self._write("SET", *_set_args(name, value, ttl))

    def replace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it exists and has not expired (``SET ... XX``)."""
        name = self._key(key)
        with _failures("SET XX", self._cache, name):
            return bool(self._write("SET XX", *_set_args(name, value, ttl), "XX"))

    def create(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if no live record holds it (``SET ... NX``); False otherwise.

        An expired key is absent to the server, so ``NX`` takes its place. Sent again after a
        lost reply, it finds its own first write and answers False: the core then draws
        another id, and the orphan expires with its TTL, so it errs the safe way.
        """
        name = self._key(key)
        with _failures("SET NX", self._cache, name):
            return bool(self._write("SET NX", *_set_args(name, value, ttl), "NX"))

    def touch(self, key: str, ttl: timedelta | None) -> bool:
        ms = ttl_ms(ttl)
        name = self._key(key)
        with _failures("PEXPIRE", self._cache, name):
            return _touched(ms, self._write(*_touch_args(name, ms)))

    def get_and_touch(self, key: str, ttl: timedelta | None) -> bytes | None:
        """Read ``key`` and renew its TTL in one round trip (``GETEX``); ``None`` if absent."""
        name = self._key(key)
        with _failures("GETEX", self._cache, name):
            return _as_bytes(self._write("GETEX", "GETEX", name, *_expiry_args(ttl)))

    def delete(self, key: str) -> None:
        name = self._key(key)
        with _failures("DEL", self._cache, name):
            self._write("DEL", "DEL", name, erase=True)

    def take(self, key: str) -> bool:
        """Delete ``key``; return whether a live record was there (``DEL`` counted it)."""
        name = self._key(key)
        with _failures("DEL", self._cache, name):
            return bool(self._write("DEL", "DEL", name, erase=True))

    def replace_if(self, key: str, expected: bytes, value: bytes, ttl: timedelta | None) -> bool:
        """Write ``key`` only if it lives and holds exactly ``expected`` (one Lua script, or a
        ``WATCH`` transaction where the server refuses scripts)."""
        return run_plan(self._replace_if(self._sync_lane, key, expected, value, ttl))

    def reset(self) -> None:
        """Delete every key under this storage's prefix, and no other."""
        run_plan(self._reset(self._sync_lane))

    def _pages(self, client: SyncClient) -> Iterator[list[bytes]]:
        """:meth:`_walk` as an iterator of pages (for the sync walks, ``count`` and ``scan``)."""
        pages = self._walk(client)
        while page := pages.take():
            yield page

    def _unprefixed(self, name: bytes) -> str | None:
        """The storage key of a Redis name, or ``None`` for a name no key of ours could make.

        Keys are ``str``, written UTF-8 encoded: a name that does not decode was put under the
        prefix by someone else, and could not be read or deleted through this storage.
        """
        try:
            return name.decode()[len(self._prefix) :]
        except UnicodeDecodeError:
            return None

    # -- optional abilities for operators (see sessionkit._inspect) ----------------------------

    def count(self) -> int:
        """Count the names under the prefix with ``SCAN`` (the server has no per-prefix count).

        ``DBSIZE`` would count the whole database, other apps' keys included, and ``KEYS``
        would block the server for the whole walk. ``SCAN`` never returns an expired key, so
        the count is of live ones. It is a walk, not a snapshot: keys written or deleted during
        it may or may not be counted, and a key may be counted twice if the server shrinks its
        table meanwhile (``SCAN`` promises every key at least once, not exactly once). Names
        that :meth:`scan` would not yield (not UTF-8) are not counted either.

        Known limitation: the walk is by prefix, so with prefix ``a:`` the keys of a storage
        with prefix ``a:b:`` are counted (and scanned) too; see the module's note.
        """
        client = self._sync()
        with _failures("SCAN"):
            pages = self._pages(client)
            return sum(1 for names in pages for name in names if self._unprefixed(name) is not None)

    def scan(self) -> Iterator[tuple[str, bytes]]:
        """Yield each live ``(key, value)`` under the prefix, a page of values at a time.

        Each ``SCAN`` page's values come in one pipelined round trip (a pipeline rather than
        ``MGET``, so a cluster client can route each ``GET`` to its slot's node). A key that
        expired or was deleted between ``SCAN`` and ``GET`` is skipped, so the caller may
        delete what it has been given. Like :meth:`count`, a walk and not a snapshot.
        """
        client = self._sync()
        with _failures("SCAN"):
            for names in self._pages(client):
                yield from self._fetch(client, names)

    def _fetch(self, client: SyncClient, names: list[bytes]) -> Iterator[tuple[str, bytes]]:
        """``(key, value)`` for each of ``names`` that still exists, in one round trip."""
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
            values = pipe.execute()
        for name, value in zip(names, values, strict=True):
            key, data = self._unprefixed(name), _as_bytes(value)
            if key is not None and data is not None:
                yield key, data

    def purge_expired(self) -> int:
        """Return 0: Redis deletes expired keys itself, so a client has nothing to purge.

        An expired key is absent to every command the moment it expires (``GET``, ``SCAN``,
        ``count``), and the server reclaims its memory on access and in a background sweep.
        Deleting keys one by one from a client would only race the server.
        """
        self._sync()  # a closed or async-only storage fails here as it would anywhere else
        return 0

    def close(self) -> None:
        """Disconnect the pools this storage made; a client passed in is left open.

        asyncio clients cannot be closed from sync code; call ``aclose()`` from the loop.
        """
        run_plan(self._close(in_loop=False))

    # -- async ---------------------------------------------------------------------------------

    async def aget(self, key: str) -> bytes | None:
        name = self._key(key)
        cache = self._cache
        if cache is None:
            with _failures("GET"):
                return _as_bytes(await self._acall("GET", name))
        value = cache.get(name)
        if value is not None:
            return value
        return await arun_plan(self._read_through(self._async_lane_here, cache, name))

    async def aset(self, key: str, value: bytes, ttl: timedelta | None) -> None:
        name = self._key(key)
        with _failures("SET", self._cache, name):
            await self._awrite("SET", *_set_args(name, value, ttl))

    async def areplace(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        name = self._key(key)
        with _failures("SET XX", self._cache, name):
            return bool(await self._awrite("SET XX", *_set_args(name, value, ttl), "XX"))

    async def acreate(self, key: str, value: bytes, ttl: timedelta | None) -> bool:
        name = self._key(key)
        with _failures("SET NX", self._cache, name):
            return bool(await self._awrite("SET NX", *_set_args(name, value, ttl), "NX"))

    async def atouch(self, key: str, ttl: timedelta | None) -> bool:
        ms = ttl_ms(ttl)
        name = self._key(key)
        with _failures("PEXPIRE", self._cache, name):
            return _touched(ms, await self._awrite(*_touch_args(name, ms)))

    async def aget_and_touch(self, key: str, ttl: timedelta | None) -> bytes | None:
        name = self._key(key)
        with _failures("GETEX", self._cache, name):
            return _as_bytes(await self._awrite("GETEX", "GETEX", name, *_expiry_args(ttl)))

    async def adelete(self, key: str) -> None:
        name = self._key(key)
        with _failures("DEL", self._cache, name):
            await self._awrite("DEL", "DEL", name, erase=True)

    async def atake(self, key: str) -> bool:
        name = self._key(key)
        with _failures("DEL", self._cache, name):
            return bool(await self._awrite("DEL", "DEL", name, erase=True))

    async def areplace_if(
        self, key: str, expected: bytes, value: bytes, ttl: timedelta | None
    ) -> bool:
        return await arun_plan(self._replace_if(self._async_lane_here, key, expected, value, ttl))

    async def areset(self) -> None:
        await arun_plan(self._reset(self._async_lane_here))

    async def aclose(self) -> None:
        """Disconnect this loop's asyncio pool and the sync pool, if this storage made them."""
        await arun_plan(self._close(in_loop=True))
