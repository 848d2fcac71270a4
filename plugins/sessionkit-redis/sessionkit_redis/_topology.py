"""The clients a URL asks for: one server, a Redis Cluster, or the primary Sentinels name.

Each kind of :class:`~sessionkit_redis._options.Target` gets a sync lane (made once) and an
asyncio lane per event loop (made by :func:`async_lane` inside the loop's first call), on
clients built so that no call can outlast the documented timeouts:

* **one server**: a ``redis.Redis`` on a blocking pool (``max_connections``, waiting
  ``pool_timeout`` for a free one), commands on the lane's own connections.
* **Redis Cluster**: ``redis.cluster.RedisCluster`` (``redis.asyncio.cluster.RedisCluster``)
  with the URL's hosts as startup nodes, ``max_connections`` per node, and no retries: a node
  that fails a call fails it (``StorageError``), and the client learns the new layout of the
  cluster for the next call (redis-py refreshes its slot table on a connection error or
  ``MOVED``). Commands go through the cluster client, which routes each key to its node.
* **Sentinel**: ``Sentinel(...).master_for(SERVICE)``, its pool a blocking one too, with the
  Sentinels' own timeouts (``sentinel_socket_timeout``, ``sentinel_socket_connect_timeout``:
  0.5 s each) and no retries; commands on the lane's connections, which follow the primary.

The sync cluster client asks its startup nodes for the slot table when it is made, so the
storage makes it on first use: opening a storage never connects, whatever the URL.
"""

from __future__ import annotations

import weakref
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.backoff
import redis.cluster
import redis.retry
import redis.sentinel

from sessionkit import ConfigError

from ._lane import AsyncLane, SyncLane
from ._options import Target

__all__ = ["CommandTable", "async_lane", "connections", "sync_lane"]


class BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's Sentinel pool, waiting ``timeout`` for a free connection past
    ``max_connections`` rather than failing at once (as the one-server pool does)."""


class AsyncBlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    """:class:`BlockingSentinelPool` for asyncio."""


def _no_retries() -> redis.retry.Retry:
    return redis.retry.Retry(redis.backoff.NoBackoff(), 0)


def _ano_retries() -> redis.asyncio.retry.Retry:
    return redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)


def _cluster_kwargs(target: Target, retry: object) -> dict[str, Any]:
    nodes_kwargs: dict[str, Any] = {"retry": retry, **target.kwargs}
    if target.tls:
        nodes_kwargs["ssl"] = True
    return nodes_kwargs


#: redis-py classes that are not typed.
_Sentinel: Any = redis.sentinel.Sentinel
_AsyncSentinel: Any = redis.asyncio.sentinel.Sentinel
_ClusterNode: Any = redis.cluster.ClusterNode


def _direct(target: Target) -> bool:
    """Whether the lane sends commands on its own connections (RESP3 pushes: the client's)."""
    return target.kind != "cluster" and target.kwargs.get("protocol") in (None, 2, "2")


def _pool_kwargs(target: Target) -> dict[str, Any]:
    kwargs = dict(target.kwargs)
    kwargs["timeout"] = kwargs.pop("pool_timeout")  # the blocking pool's name for it
    return kwargs


def sync_lane(target: Target) -> SyncLane:
    """The sync lane of ``target`` (for a cluster: call it on first use, it connects)."""
    if target.kind == "cluster":
        nodes = [_ClusterNode(host, port) for host, port in target.hosts]
        kwargs = _cluster_kwargs(target, _no_retries())
        return SyncLane(redis.cluster.RedisCluster(startup_nodes=nodes, **kwargs), direct=False)
    if target.kind == "sentinel":
        sentinel = _Sentinel(
            list(target.hosts),
            min_other_sentinels=target.min_other_sentinels,
            sentinel_kwargs={"retry": _no_retries(), **target.sentinel_kwargs},
        )
        client = sentinel.master_for(
            target.service, connection_pool_class=BlockingSentinelPool, **_pool_kwargs(target)
        )
        return SyncLane(
            client,
            direct=_direct(target),
            helpers=tuple(sentinel.sentinels),
            check_every=target.sentinel_check_interval,
        )
    try:
        pool = redis.BlockingConnectionPool.from_url(target.driver_url, **_pool_kwargs(target))
    except (TypeError, ValueError) as exc:  # a malformed URL (a port that is no number)
        raise ConfigError("storage", f"not a usable redis URL: {exc}") from exc
    return SyncLane(redis.Redis.from_pool(pool), direct=_direct(target))


class CommandTable:
    """The command table of a storage's asyncio cluster clients, handed from one to the next.

    Each event loop gets a cluster client of its own, and a new one asks a node for
    ``COMMAND`` before its first call: some 250 entries, parsed in Python, about 40 % of the
    CPU a new loop's client costs (docs/backends/redis.md). redis-py 8.2 and later skip that
    ask when the client's table is already filled, so a new client takes the previous one's,
    if it had fetched it. Earlier releases ask anyway (the table is then replaced, no harm).
    The table is the server's description of its commands, the same for every client of one
    cluster; a command missing from it (a server upgraded meanwhile) is fetched on its own by
    redis-py. Only a weak reference to the last client is kept: a client of a closed loop is
    not kept alive here.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: weakref.ref[Any] | None = None

    def lend(self, cluster: Any) -> None:
        """Fill ``cluster``'s table from the last client's, if it has one; remember it."""
        last = self._last() if self._last is not None else None
        parser = getattr(last, "commands_parser", None)
        table = getattr(parser, "commands", None)
        if table:
            mine = cluster.commands_parser
            mine.commands = dict(table)
            specs = getattr(parser, "_movablekeys_specs", None)
            if specs is not None and hasattr(mine, "_movablekeys_specs"):
                mine._movablekeys_specs = dict(specs)
        self._last = weakref.ref(cluster)


def async_lane(target: Target, commands: CommandTable | None = None) -> AsyncLane:
    """An asyncio lane of ``target``, for the running event loop (nothing connects yet);
    ``commands``: the command table a cluster client takes from the previous one."""
    if target.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.hosts]
        kwargs = _cluster_kwargs(target, _ano_retries())
        cluster = redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **kwargs)
        if commands is not None:
            commands.lend(cluster)
        return AsyncLane(cluster, direct=False, init=cluster.initialize)
    if target.kind == "sentinel":
        sentinel = _AsyncSentinel(
            list(target.hosts),
            min_other_sentinels=target.min_other_sentinels,
            sentinel_kwargs={"retry": _ano_retries(), **target.sentinel_kwargs},
        )
        client = sentinel.master_for(
            target.service,
            connection_pool_class=AsyncBlockingSentinelPool,
            **_pool_kwargs(target),
        )
        return AsyncLane(
            client,
            direct=_direct(target),
            helpers=tuple(sentinel.sentinels),
            check_every=target.sentinel_check_interval,
        )
    kwargs = _pool_kwargs(target)
    if kwargs.get("protocol") is None:
        # RESP2 unless the URL asks for RESP3: redis-py's default before 8.0 (so every
        # supported redis-py behaves the same) and what a Wire reads (see _wire: no push
        # messages between replies). The storage's commands use nothing of RESP3.
        kwargs["protocol"] = 2
    pool = redis.asyncio.BlockingConnectionPool.from_url(target.driver_url, **kwargs)
    return AsyncLane(redis.asyncio.Redis.from_pool(pool), direct=_direct(target))


def connections(lane: AsyncLane) -> set[Any]:
    """Every connection an asyncio lane's clients hold (idle, busy, kept by the lane): of its
    pool, of each node of a cluster, of each Sentinel."""
    found: set[Any] = set(lane.connections())
    for client in (lane.client, *lane.helpers):
        pool: Any = getattr(client, "connection_pool", None)
        if pool is not None:
            found.update(pool._available_connections)
            found.update(pool._in_use_connections)
        manager: Any = getattr(client, "nodes_manager", None)
        if manager is not None:
            nodes = [*manager.nodes_cache.values(), *manager.startup_nodes.values()]
            for node in nodes:
                found.update(node._connections)
    return found
