"""What the Redis storage does on a real server beyond the shared contract.

Key layout and TTL precision, the one-round-trip commands, ``reset`` confined to its prefix
(glob characters included), clients passed in, failures, Redis Cluster, and the lane (commands
on connections the storage keeps, past the pool's checkout).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis
import redis.asyncio
from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster

import sessionkit_redis._lane
import sessionkit_redis._wire
from sessionkit import StorageError
from sessionkit_redis import RedisStorage
from sessionkit_redis._storage import REPLACE_IF_SHA, SCAN_COUNT
from tests._servers import start_redis

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)


# -- key layout and TTLs -----------------------------------------------------------------------


def test_key_is_prefix_plus_key_with_a_millisecond_ttl(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    storage.set("k", b"v", timedelta(seconds=30))
    assert raw.get(prefix + "k") == b"v"
    assert 29_000 < raw.pttl(prefix + "k") <= 30_000
    storage.set("k", b"w", None)
    assert raw.pttl(prefix + "k") == -1  # plain SET: no expiry left behind


def test_sub_second_ttl_is_honoured(storage: RedisStorage, raw: redis.Redis, prefix: str) -> None:
    storage.set("short", b"v", timedelta(milliseconds=150))
    assert 0 < raw.pttl(prefix + "short") <= 150
    storage.set("tiny", b"v", timedelta(microseconds=1))  # rounds up to 1 ms, not to 0
    time.sleep(0.2)
    assert storage.get("short") is None
    assert storage.get("tiny") is None


def test_replace_never_creates_a_key(storage: RedisStorage, raw: redis.Redis, prefix: str) -> None:
    assert storage.replace("absent", b"v", HOUR) is False
    assert raw.exists(prefix + "absent") == 0


def test_touch_without_ttl_on_a_persistent_key(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    """PERSIST alone would answer 0 here; the key exists, so touch must say True."""
    storage.set("k", b"v", None)
    assert storage.touch("k", None) is True
    storage.set("k", b"v", HOUR)
    assert storage.touch("k", None) is True
    assert raw.pttl(prefix + "k") == -1


def test_get_and_touch_reads_and_renews(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    storage.set("k", b"v", timedelta(seconds=5))
    assert storage.get_and_touch("k", HOUR) == b"v"
    assert raw.pttl(prefix + "k") > 3_500_000
    assert storage.get_and_touch("k", None) == b"v"
    assert raw.pttl(prefix + "k") == -1
    assert storage.get_and_touch("absent", HOUR) is None
    assert raw.exists(prefix + "absent") == 0


async def test_aget_and_touch_reads_and_renews(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    await storage.aset("k", b"v", timedelta(seconds=5))
    assert await storage.aget_and_touch("k", HOUR) == b"v"
    assert raw.pttl(prefix + "k") > 3_500_000
    assert await storage.aget_and_touch("absent", HOUR) is None
    await storage.aclose()


# -- take and replace_if ----------------------------------------------------------------------


def test_replace_if_sets_the_ttl_it_is_given_and_never_creates_a_key(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    storage.set("k", b"v", timedelta(seconds=5))
    assert storage.replace_if("k", b"v", b"w", HOUR) is True
    assert raw.get(prefix + "k") == b"w"
    assert raw.pttl(prefix + "k") > 3_500_000
    assert storage.replace_if("k", b"w", b"x", None) is True
    assert raw.pttl(prefix + "k") == -1  # plain SET in the script: no expiry left behind
    assert storage.replace_if("k", b"w", b"y", HOUR) is False
    assert raw.get(prefix + "k") == b"x"
    assert raw.pttl(prefix + "k") == -1  # a refused replace_if changes nothing
    assert storage.take("k") is True
    assert raw.exists(prefix + "k") == 0
    assert storage.replace_if("k", b"x", b"z", HOUR) is False
    assert raw.exists(prefix + "k") == 0  # never creates a key


def test_replace_if_on_a_key_of_another_type_is_a_storage_error(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    raw.rpush(prefix + "list", b"x")
    with pytest.raises(StorageError, match="replace_if") as caught:
        storage.replace_if("list", b"x", b"y", HOUR)
    assert isinstance(caught.value.__cause__, redis.ResponseError)
    assert raw.lrange(prefix + "list", 0, -1) == [b"x"]


def test_clients_passed_in_take_and_replace_if(redis_url: str, prefix: str) -> None:
    """Through the client's ``execute_command``: no lane, same answers."""
    client = redis.Redis.from_url(redis_url)
    storage = RedisStorage(client=client, prefix=prefix)
    storage.set("k", b"loaded", HOUR)
    assert storage.replace_if("k", b"loaded", b"renewed", HOUR) is True
    assert storage.replace_if("k", b"loaded", b"stale", None) is False
    assert storage.get("k") == b"renewed"
    assert storage.take("k") is True
    assert storage.take("k") is False
    assert storage.replace_if("k", b"renewed", b"back", HOUR) is False
    assert storage.get("k") is None
    storage.close()
    client.close()


async def test_async_clients_passed_in_take_and_replace_if(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    storage = RedisStorage(async_client=client, prefix=prefix)
    await storage.aset("k", b"loaded", HOUR)
    assert await storage.areplace_if("k", b"loaded", b"renewed", None) is True
    assert await storage.areplace_if("k", b"loaded", b"stale", HOUR) is False
    assert await storage.aget("k") == b"renewed"
    assert await storage.atake("k") is True
    assert await storage.atake("k") is False
    assert await storage.areplace_if("k", b"renewed", b"back", HOUR) is False
    assert await storage.aget("k") is None
    await storage.aclose()
    await client.aclose()


def test_replace_if_on_several_event_loops(storage: RedisStorage) -> None:
    """Each loop's own client, built lazily, runs the script (and takes) as well."""
    storage.set("k", b"0", HOUR)
    for round_ in range(3):
        expected, value = str(round_).encode(), str(round_ + 1).encode()
        assert asyncio.run(storage.areplace_if("k", expected, value, HOUR)) is True
        assert asyncio.run(storage.areplace_if("k", expected, value, HOUR)) is False
    assert asyncio.run(storage.atake("k")) is True
    assert storage.get("k") is None


ROUNDS = 300


def test_replace_if_never_undoes_a_concurrent_write(
    storage: RedisStorage, redis_url: str, prefix: str
) -> None:
    """A renewal racing another request's save: whichever lands first, the save stands.

    A GET-then-SET renewal would, now and then, read ``loaded``, let the save in, and then
    write ``renewed`` over it; the script leaves no gap for the save to fall into.
    """
    writer = redis.Redis.from_url(redis_url)
    barrier = threading.Barrier(2)

    def save(name: str, value: bytes) -> None:
        barrier.wait()
        writer.set(name, value, px=3_600_000)

    for index in range(ROUNDS):
        key, saved = f"r{index}", f"saved {index}".encode()
        storage.set(key, b"loaded", HOUR)
        thread = threading.Thread(target=save, args=(prefix + key, saved))
        thread.start()
        barrier.wait()
        storage.replace_if(key, b"loaded", b"renewed", HOUR)
        thread.join()
        assert storage.get(key) == saved, f"round {index}: the renewal undid the save"
    writer.close()


def test_of_two_concurrent_takes_exactly_one_wins(redis_url: str, prefix: str) -> None:
    """Two requests regenerating one session: only the first may carry its data over."""
    first, second = RedisStorage(redis_url, prefix=prefix), RedisStorage(redis_url, prefix=prefix)
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def take(storage: RedisStorage, key: str) -> None:
        barrier.wait()
        results.append(storage.take(key))

    for index in range(ROUNDS // 3):
        key = f"t{index}"
        first.set(key, b"v", HOUR)
        results.clear()
        thread = threading.Thread(target=take, args=(second, key))
        thread.start()
        take(first, key)
        thread.join()
        assert sorted(results) == [False, True], f"round {index}: {results}"
    first.close()
    second.close()


async def test_of_two_concurrent_atakes_exactly_one_wins(storage: RedisStorage) -> None:
    for index in range(ROUNDS // 3):
        key = f"t{index}"
        await storage.aset(key, b"v", HOUR)
        results = await asyncio.gather(storage.atake(key), storage.atake(key))
        assert sorted(results) == [False, True], f"round {index}: {results}"
    await storage.aclose()


# -- round trips -------------------------------------------------------------------------------


class CountingConnection(redis.Connection):
    """Counts packed sends: one per round trip (a pipeline would be one too)."""

    sent: ClassVar[int] = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


class AsyncCountingConnection(redis.asyncio.Connection):
    sent: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        await super().send_packed_command(command, check_health)


#: operation -> (method, arguments after the key)
ROUND_TRIPS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "get": ("get", ()),
    "set": ("set", (b"v", HOUR)),
    "set_no_ttl": ("set", (b"v", None)),
    "replace": ("replace", (b"v", HOUR)),
    "touch": ("touch", (HOUR,)),
    "touch_no_ttl": ("touch", (None,)),
    "get_and_touch": ("get_and_touch", (HOUR,)),
    "delete": ("delete", ()),
    "take": ("take", ()),
}


@pytest.mark.parametrize("operation", list(ROUND_TRIPS))
def test_each_operation_is_one_round_trip(redis_url: str, prefix: str, operation: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    storage = RedisStorage(client=client, prefix=prefix)
    client.ping()  # the connection's handshake is not the operation's
    storage.set("k", b"v", HOUR)
    method, args = ROUND_TRIPS[operation]
    before = CountingConnection.sent
    getattr(storage, method)("k", *args)
    assert CountingConnection.sent - before == 1
    pool.disconnect()


@pytest.mark.parametrize("operation", list(ROUND_TRIPS))
async def test_each_async_operation_is_one_round_trip(
    redis_url: str, prefix: str, operation: str
) -> None:
    pool = redis.asyncio.ConnectionPool.from_url(
        redis_url, connection_class=AsyncCountingConnection
    )
    client = redis.asyncio.Redis(connection_pool=pool)
    storage = RedisStorage(async_client=client, prefix=prefix)
    await client.ping()
    await storage.aset("k", b"v", HOUR)
    method, args = ROUND_TRIPS[operation]
    before = AsyncCountingConnection.sent
    await getattr(storage, f"a{method}")("k", *args)
    assert AsyncCountingConnection.sent - before == 1
    await pool.disconnect()


def test_replace_if_is_one_round_trip_once_its_script_is_cached(
    redis_url: str, prefix: str
) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    storage = RedisStorage(client=client, prefix=prefix)
    storage.set("k", b"v", HOUR)
    storage.replace_if("k", b"v", b"v", HOUR)  # caches the script, if the server had it not
    before = CountingConnection.sent
    assert storage.replace_if("k", b"v", b"w", HOUR) is True
    assert storage.replace_if("k", b"v", b"x", None) is False
    assert CountingConnection.sent - before == 2
    pool.disconnect()


def test_replace_if_sends_its_script_whole_to_a_server_without_it(private_redis: Any) -> None:
    """``EVALSHA`` first; on ``NOSCRIPT`` (a fresh or flushed cache), ``EVAL``, which caches it."""
    raw = redis.Redis.from_url(private_redis.url)
    assert raw.script_exists(REPLACE_IF_SHA) == [False]
    for storage in (
        RedisStorage(private_redis.url),  # the lane
        RedisStorage(client=redis.Redis.from_url(private_redis.url)),  # execute_command
    ):
        storage.set("k", b"v", HOUR)
        assert storage.replace_if("k", b"v", b"w", HOUR) is True
        assert raw.script_exists(REPLACE_IF_SHA) == [True]
        raw.script_flush()
        assert storage.replace_if("k", b"w", b"x", None) is True
        assert storage.replace_if("k", b"w", b"y", None) is False
        assert raw.get("sessionkit:k") == b"x"
        raw.script_flush()
        storage.close()
    raw.close()


async def test_areplace_if_sends_its_script_whole_to_a_server_without_it(
    private_redis: Any,
) -> None:
    raw = redis.Redis.from_url(private_redis.url)
    client = redis.asyncio.Redis.from_url(private_redis.url)
    for storage in (RedisStorage(private_redis.url), RedisStorage(async_client=client)):
        await storage.aset("k", b"v", HOUR)
        assert await storage.areplace_if("k", b"v", b"w", HOUR) is True
        raw.script_flush()
        assert await storage.areplace_if("k", b"w", b"x", None) is True
        assert await storage.aget("k") == b"x"
        raw.script_flush()
        await storage.aclose()
    await client.aclose()
    raw.close()


# -- reset stays inside its prefix -------------------------------------------------------------


def test_reset_treats_glob_characters_in_the_prefix_literally(
    redis_url: str, raw: redis.Redis, glob_prefix: tuple[str, list[str]]
) -> None:
    prefix, bystanders = glob_prefix
    storage = RedisStorage(redis_url, prefix=prefix)
    storage.set("k", b"v", None)
    storage.reset()
    assert storage.get("k") is None
    assert [raw.get(name) for name in bystanders] == [b"keep"] * len(bystanders)
    storage.close()


def test_reset_leaves_other_prefixes_and_plain_keys(
    redis_url: str, raw: redis.Redis, key_root: str
) -> None:
    mine = RedisStorage(redis_url, prefix=f"{key_root}mine:")
    other = RedisStorage(redis_url, prefix=f"{key_root}other:")
    plain = f"{key_root}plain-key"
    raw.set(plain, b"plain")
    mine.set("k", b"m", None)
    other.set("k", b"o", None)
    mine.reset()
    assert (mine.get("k"), other.get("k"), raw.get(plain)) == (None, b"o", b"plain")
    mine.close()
    other.close()


def test_reset_deletes_more_keys_than_one_batch(storage: RedisStorage, raw: redis.Redis) -> None:
    count = SCAN_COUNT * 2 + 7
    with raw.pipeline(transaction=False) as pipe:
        for index in range(count):
            pipe.set(f"{storage.prefix}{index}", b"v")
        pipe.execute()
    storage.reset()
    assert next(raw.scan_iter(match=storage._pattern), None) is None


async def test_areset_deletes_more_keys_than_one_batch(
    storage: RedisStorage, raw: redis.Redis
) -> None:
    for index in range(SCAN_COUNT + 3):
        raw.set(f"{storage.prefix}{index}", b"v")
    await storage.areset()
    assert next(raw.scan_iter(match=storage._pattern), None) is None
    await storage.aclose()


# -- connections -------------------------------------------------------------------------------


def connection_names(raw: redis.Redis) -> list[str]:
    return [entry["name"] for entry in raw.client_list()]


def test_close_disconnects_the_pools_the_storage_made(
    redis_url: str, raw: redis.Redis, prefix: str
) -> None:
    name = f"sk-{uuid.uuid4().hex[:10]}"
    storage = RedisStorage(redis_url, prefix=prefix, client_name=name)
    storage.set("k", b"v", HOUR)

    async def use() -> None:
        await storage.aget("k")
        assert connection_names(raw).count(name) == 2
        await storage.aclose()

    asyncio.run(use())
    # The sockets are closed; the server notices within a moment (on a loaded machine, not
    # always before the next command of another connection).
    deadline = time.monotonic() + 2
    while name in connection_names(raw) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert name not in connection_names(raw)
    with pytest.raises(StorageError, match="closed"):
        storage.get("k")


def test_clients_passed_in_are_not_closed(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    storage = RedisStorage(client=client, prefix=prefix)
    storage.set("k", b"v", HOUR)
    connection = client.client_id()
    storage.close()
    assert client.client_id() == connection  # the same connection, never dropped
    client.close()


async def test_async_clients_passed_in_are_not_closed(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    storage = RedisStorage(async_client=client, prefix=prefix)
    await storage.aset("k", b"v", HOUR)
    connection = await client.client_id()
    await storage.aclose()
    assert await client.client_id() == connection
    await client.aclose()


def test_one_storage_serves_several_event_loops(storage: RedisStorage) -> None:
    """asyncio connections belong to a loop; the storage makes one client per loop."""
    storage.set("k", b"v", HOUR)
    for _ in range(3):
        assert asyncio.run(storage.aget("k")) == b"v"


# -- failures ----------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    from tests._servers import free_port

    return free_port()


def test_unreachable_server_is_a_storage_error_fast(closed_port: int) -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{closed_port}/0")
    started = time.monotonic()
    with pytest.raises(StorageError, match="redis GET failed") as caught:
        storage.get("k")
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    assert time.monotonic() - started < 2
    storage.close()


async def test_unreachable_server_is_a_storage_error_fast_async(closed_port: int) -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{closed_port}/0")
    started = time.monotonic()
    for call in (storage.aget("k"), storage.aset("k", b"v", HOUR), storage.areset()):
        with pytest.raises(StorageError) as caught:
            await call
        assert isinstance(caught.value.__cause__, (redis.RedisError, OSError))
    assert time.monotonic() - started < 2
    await storage.aclose()


@pytest.fixture
def private_redis() -> Iterator[Any]:
    server = start_redis()
    yield server
    server.close()


def test_killed_server_fails_then_recovers_after_restart(private_redis: Any) -> None:
    storage = RedisStorage(private_redis.url)
    storage.set("k", b"v", HOUR)
    private_redis.kill()
    with pytest.raises(StorageError) as caught:
        storage.get("k")
    assert isinstance(caught.value.__cause__, (redis.RedisError, OSError))
    private_redis.restart()  # no persistence: the data is gone, the storage reconnects
    assert storage.get("k") is None
    storage.set("k", b"again", HOUR)
    assert storage.get("k") == b"again"
    storage.close()


def test_wrong_type_under_a_key_is_a_storage_error(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    raw.rpush(prefix + "list", b"x")
    with pytest.raises(StorageError) as caught:
        storage.get("list")
    assert isinstance(caught.value.__cause__, redis.ResponseError)


# -- Redis Cluster -----------------------------------------------------------------------------


def test_cluster_reset_scans_every_primary(redis_cluster_url: str) -> None:
    client = RedisCluster.from_url(redis_cluster_url)
    storage = RedisStorage(client=client, prefix="sess*:")
    keys = [f"k{index}" for index in range(200)]
    for key in keys:
        storage.set(key, key.encode(), HOUR)
    client.set("sessA:bystander", b"keep")
    owners = {client.get_node_from_key(f"sess*:{k}").name for k in keys}  # type: ignore[no-untyped-call]
    assert len(owners) == 3, "the keys should spread over every primary"
    storage.reset()
    assert [storage.get(key) for key in keys] == [None] * len(keys)
    assert client.get("sessA:bystander") == b"keep"
    storage.close()
    client.close()


async def test_cluster_async_operations_and_reset(redis_cluster_url: str) -> None:
    client = AsyncRedisCluster.from_url(redis_cluster_url)
    storage = RedisStorage(async_client=client, prefix="asess:")
    for index in range(50):
        await storage.aset(f"k{index}", b"v", HOUR)
    assert await storage.areplace("k1", b"w", HOUR) is True
    assert await storage.aget("k1") == b"w"
    await storage.areset()
    assert [await storage.aget(f"k{index}") for index in range(50)] == [None] * 50
    await storage.aclose()
    await client.aclose()


def test_cluster_take_and_replace_if_reach_each_keys_node(redis_cluster_url: str) -> None:
    """One key per script, so the cluster client routes it to the key's slot."""
    client = RedisCluster.from_url(redis_cluster_url)
    storage = RedisStorage(client=client, prefix="atomic:")
    keys = [f"k{index}" for index in range(30)]
    for key in keys:
        storage.set(key, key.encode(), HOUR)
    assert all(storage.replace_if(key, key.encode(), b"renewed", HOUR) for key in keys)
    assert not any(storage.replace_if(key, key.encode(), b"stale", HOUR) for key in keys)
    assert [storage.get(key) for key in keys] == [b"renewed"] * len(keys)
    assert all(storage.take(key) for key in keys)
    assert not any(storage.take(key) for key in keys)
    storage.close()
    client.close()


def test_a_new_loops_cluster_client_takes_the_command_table_of_the_last(
    redis_cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loop per request (asgiref's ``async_to_sync``, ``asyncio.run`` per job) makes a
    cluster client per loop, and each asked a node for ``COMMAND`` (about 40 % of its CPU).
    Only the first asks now, on redis-py 8.2 and later (earlier releases ask anyway), and the
    scripts (``EVALSHA``, whose keys redis-py finds through the table) still route."""
    asked: list[object] = []
    ask = AsyncCommandsParser.initialize

    async def counted(parser: AsyncCommandsParser, *args: Any) -> None:
        asked.append(parser)
        await ask(parser, *args)

    monkeypatch.setattr(AsyncCommandsParser, "initialize", counted)
    url = redis_cluster_url.replace("redis://", "redis+cluster://", 1)
    storage = RedisStorage(f"{url}?prefix=cmdtable-{uuid.uuid4().hex}:")
    loops = 4

    async def use(index: int) -> None:
        key = f"k{index}"
        await storage.aset(key, b"v", HOUR)
        assert await storage.areplace_if(key, b"v", b"w", HOUR) is True
        assert await storage.aget(key) == b"w"
        assert await storage.atake(key) is True

    try:
        for index in range(loops):
            asyncio.run(use(index))
    finally:
        storage.close()
    fills_it = tuple(int(part) for part in redis.__version__.split(".")[:2]) >= (8, 2)
    assert len(asked) == (1 if fills_it else loops)


async def test_cluster_async_take_and_replace_if(redis_cluster_url: str) -> None:
    client = AsyncRedisCluster.from_url(redis_cluster_url)
    storage = RedisStorage(async_client=client, prefix="aatomic:")
    keys = [f"k{index}" for index in range(30)]
    for key in keys:
        await storage.aset(key, key.encode(), HOUR)
        assert await storage.areplace_if(key, key.encode(), b"renewed", None) is True
        assert await storage.areplace_if(key, key.encode(), b"stale", HOUR) is False
        assert await storage.atake(key) is True
        assert await storage.atake(key) is False
    await storage.aclose()
    await client.aclose()


# -- the lane: a URL-built storage sends its single-key commands on connections it keeps ------
#
# Each test below can fail on a real server: a command that checks a connection out of the
# pool, a stale reply read after an interrupted command, a connection shared across a fork or
# between threads, a server-closed connection surfacing as an error.


class Counts:
    def __init__(self) -> None:
        self.sent = 0
        self.checkouts = 0


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    """Count commands sent and pool checkouts, sync and asyncio, for this test."""
    seen = Counts()

    def counting(cls: Any, name: str, field: str) -> None:
        original = getattr(cls, name)
        if asyncio.iscoroutinefunction(original):

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                setattr(seen, field, getattr(seen, field) + 1)
                return await original(*args, **kwargs)

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                setattr(seen, field, getattr(seen, field) + 1)
                return original(*args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counting(redis.connection.AbstractConnection, "send_packed_command", "sent")
    counting(redis.asyncio.connection.AbstractConnection, "send_packed_command", "sent")
    # The lane's async commands are written by its own _asend (no wait_for per write), or on a
    # plain connection by its Wire (one call per batch of commands sent together).
    counting(sessionkit_redis._lane, "_asend", "sent")
    counting(sessionkit_redis._wire.Wire, "replies", "sent")
    counting(redis.ConnectionPool, "get_connection", "checkouts")
    counting(redis.asyncio.ConnectionPool, "get_connection", "checkouts")
    counting(redis.BlockingConnectionPool, "get_connection", "checkouts")
    counting(redis.asyncio.BlockingConnectionPool, "get_connection", "checkouts")
    return seen


@pytest.mark.parametrize("operation", list(ROUND_TRIPS))
def test_each_operation_is_one_command_and_no_checkout(
    storage: RedisStorage, counts: Counts, operation: str
) -> None:
    storage.set("k", b"v", HOUR)  # the lane's first connection is checked out here, once
    method, args = ROUND_TRIPS[operation]
    sent, checkouts = counts.sent, counts.checkouts
    getattr(storage, method)("k", *args)
    assert (counts.sent - sent, counts.checkouts - checkouts) == (1, 0)


@pytest.mark.parametrize("operation", list(ROUND_TRIPS))
async def test_each_async_operation_is_one_command_and_no_checkout(
    storage: RedisStorage, counts: Counts, operation: str
) -> None:
    await storage.aset("k", b"v", HOUR)
    method, args = ROUND_TRIPS[operation]
    sent, checkouts = counts.sent, counts.checkouts
    await getattr(storage, f"a{method}")("k", *args)
    assert (counts.sent - sent, counts.checkouts - checkouts) == (1, 0)


def test_a_resp3_storage_goes_through_the_client(
    redis_url: str, prefix: str, counts: Counts
) -> None:
    storage = RedisStorage(redis_url, prefix=prefix, protocol=3)
    storage.set("k", b"v", HOUR)
    checkouts = counts.checkouts
    assert storage.get("k") == b"v"
    assert counts.checkouts - checkouts == 1  # the client's own path, push handling and all
    storage.close()


# -- connections the server closed while they sat idle ----------------------------------------


@pytest.fixture
def named(redis_url: str, prefix: str) -> Iterator[tuple[RedisStorage, str]]:
    name = f"sk-lane-{uuid.uuid4().hex[:10]}"
    storage = RedisStorage(redis_url, prefix=prefix, client_name=name)
    yield storage, name
    storage.close()


def kill_named(raw: redis.Redis, name: str) -> int:
    """Close every server-side connection called ``name``, as a server ``timeout`` would."""
    ids = [entry["id"] for entry in raw.client_list() if entry["name"] == name]
    for client_id in ids:
        raw.client_kill_filter(_id=client_id)
    return len(ids)


def test_a_connection_closed_by_the_server_is_replaced_without_an_error(
    named: tuple[RedisStorage, str], raw: redis.Redis
) -> None:
    storage, name = named
    storage.set("k", b"v", HOUR)
    assert kill_named(raw, name) == 1
    assert storage.get("k") == b"v"  # one more try on a new connection, not a StorageError
    storage.set("k", b"w", HOUR)
    assert storage.get("k") == b"w"


async def test_an_async_connection_closed_by_the_server_is_replaced_without_an_error(
    named: tuple[RedisStorage, str], raw: redis.Redis
) -> None:
    storage, name = named
    await storage.aset("k", b"v", HOUR)
    assert kill_named(raw, name) == 1
    assert await storage.aget("k") == b"v"
    await storage.aset("k", b"w", HOUR)
    assert await storage.aget("k") == b"w"


# -- interrupted commands leave no reply behind ------------------------------------------------


async def test_a_cancelled_read_leaves_no_stale_reply_for_the_next_command(
    private_redis: Any,
) -> None:
    # A private server: CLIENT PAUSE stops every client, and the shared one serves other tests.
    storage = RedisStorage(private_redis.url)
    raw = redis.Redis.from_url(private_redis.url)
    try:
        await storage.aset("a", b"A", HOUR)
        await storage.aset("b", b"B", HOUR)
        raw.client_pause(300)  # every command waits 300 ms: the GET below waits for its reply
        pending = asyncio.ensure_future(storage.aget("a"))
        await asyncio.sleep(0.05)
        assert not pending.done()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await asyncio.sleep(0.35)  # the pause ends, the server answers the cancelled GET
        assert await storage.aget("b") == b"B"  # the reply to *this* GET, not the stale "A"
        assert await storage.aget("a") == b"A"
    finally:
        await storage.aclose()
        raw.close()


def test_a_timed_out_read_leaves_no_stale_reply_for_the_next_command(
    private_redis: Any,
) -> None:
    storage = RedisStorage(private_redis.url, socket_timeout=0.05)
    raw = redis.Redis.from_url(private_redis.url)
    try:
        storage.set("a", b"A", HOUR)
        storage.set("b", b"B", HOUR)
        raw.client_pause(300)
        with pytest.raises(StorageError, match="redis GET failed"):
            storage.get("a")
        threading.Event().wait(0.35)
        assert storage.get("b") == b"B"
        assert storage.get("a") == b"A"
    finally:
        storage.close()
        raw.close()


# -- threads and processes never share a connection --------------------------------------------


def test_threads_never_share_a_connection(storage: RedisStorage) -> None:
    errors: list[str] = []

    def work(n: int) -> None:
        for i in range(200):
            value = f"{n}:{i}".encode()
            storage.set(f"t{n}", value, HOUR)
            got = storage.get(f"t{n}")
            if got != value:
                errors.append(f"thread {n} wrote {value!r}, read {got!r}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(
    named: tuple[RedisStorage, str], raw: redis.Redis
) -> None:
    storage, name = named
    storage.set("k", b"parent", HOUR)
    before = [e for e in raw.client_list() if e["name"] == name]
    assert len(before) == 1
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: use the storage, report, wait to be counted, leave
        try:
            ok = storage.get("k") == b"parent"
            storage.set("c", b"child", HOUR)
            ok = ok and storage.get("c") == b"child"
            os.write(ready_w, b"1" if ok else b"0")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        during = [e for e in raw.client_list() if e["name"] == name]
        assert len(during) == 2  # the child's own connection, not the parent's socket
    finally:
        os.write(done_w, b"x")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)
    assert storage.get("k") == b"parent"  # and the parent's connection is still in step
    assert before[0]["id"] in [e["id"] for e in raw.client_list() if e["name"] == name]


def _user_without_scripts(server: Any) -> str:
    """A URL for an ACL user that may do everything but run scripts (a hardened or managed
    Redis; some proxies refuse EVALSHA outright)."""
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    admin.close()
    return server.url.replace("redis://", "redis://app:pw@")


def test_replace_if_without_scripting_uses_a_watch_transaction(private_redis: Any) -> None:
    """Renewal must keep working without scripts, or every active user is logged out one
    lifetime later (the failed renewals are only logged)."""
    storage = RedisStorage(_user_without_scripts(private_redis))
    storage.set("k", b"loaded", HOUR)
    assert storage.replace_if("k", b"other", b"x", HOUR) is False
    assert storage.replace_if("k", b"loaded", b"renewed", HOUR) is True
    assert storage.get("k") == b"renewed"
    assert storage.replace_if("absent", b"", b"x", HOUR) is False and storage.get("absent") is None

    async def twin() -> None:
        assert await storage.areplace_if("k", b"loaded", b"stale", HOUR) is False
        assert await storage.areplace_if("k", b"renewed", b"again", None) is True
        await storage.aclose()

    asyncio.run(twin())
    storage.close()
    check = redis.Redis.from_url(private_redis.url)
    assert check.get("sessionkit:k") == b"again" and check.ttl("sessionkit:k") == -1
    check.close()


# -- the reply parser ---------------------------------------------------------------------------


def test_replies_are_parsed_by_hiredis_which_the_plugin_requires() -> None:
    """The plugin requires ``redis[hiredis]``, redis-py's C reply parser, so every user has it.

    Without it redis-py parses replies in Python: the command table that each new cluster
    client reads (one per process, and one per event loop) cost 18.7 ms of client CPU against
    2.0 ms with hiredis, and the test suite's worker CPU fell from 285 s to 214 s.
    """
    import importlib.metadata

    from packaging.requirements import Requirement
    from redis.asyncio.connection import DefaultParser as AsyncDefaultParser
    from redis.connection import DefaultParser

    required = [Requirement(r) for r in importlib.metadata.requires("sessionkit-redis") or []]
    assert any(r.name == "redis" and "hiredis" in r.extras for r in required), required
    assert "Hiredis" in DefaultParser.__name__
    assert "Hiredis" in AsyncDefaultParser.__name__
