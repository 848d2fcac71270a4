"""``wait_replicas``: every write followed by ``WAIT`` on its own connection, in one round trip.

On a private primary with one replica (a module's own). A write that returns is on the
replica already; one that fewer replicas acknowledged in time is a ``StorageError`` (a delete
is only logged: it cannot be undone); the pair never leaves a stray reply on a connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from sessionkit import StorageError
from sessionkit_redis import RedisStorage
from tests._servers import ServerGroup, ServerProcess, start_redis_replicated

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)
SLACK = 1.0


@pytest.fixture(scope="module")
def pair() -> Iterator[ServerGroup]:
    group = start_redis_replicated(1)
    yield group
    for server in group.servers:
        server.resume()
    group.close()


@pytest.fixture
def primary(pair: ServerGroup) -> ServerProcess:
    return pair.servers[0]


@pytest.fixture
def replica(pair: ServerGroup) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(pair.servers[1].url)
    yield client
    client.close()


@pytest.fixture
def prefix() -> str:
    return f"wait:{uuid.uuid4().hex[:8]}:"


def _url(primary: ServerProcess, query: str) -> str:
    return f"{primary.url}?{query}"


def _ops(
    storage: RedisStorage,
) -> list[tuple[str, Callable[[], Any], Callable[[redis.Redis, str], bool]]]:
    """(name, call, what the replica holds right after it) for every write."""
    return [
        ("set", lambda: storage.set("k", b"1", HOUR), lambda r, p: r.get(p + "k") == b"1"),
        ("replace", lambda: storage.replace("k", b"2", HOUR), lambda r, p: r.get(p + "k") == b"2"),
        ("create", lambda: storage.create("c", b"c", HOUR), lambda r, p: r.get(p + "c") == b"c"),
        (
            "touch",
            lambda: storage.touch("k", timedelta(hours=2)),
            lambda r, p: r.pttl(p + "k") > 3_600_000,
        ),
        (
            "get_and_touch",
            lambda: storage.get_and_touch("k", timedelta(hours=3)),
            lambda r, p: r.pttl(p + "k") > 7_200_000,
        ),
        (
            "touch without expiry",
            lambda: storage.touch("k", None),
            lambda r, p: r.pttl(p + "k") == -1,
        ),
        (
            "replace_if",
            lambda: storage.replace_if("k", b"2", b"3", HOUR),
            lambda r, p: r.get(p + "k") == b"3" and r.pttl(p + "k") > 3_500_000,
        ),
        ("take", lambda: storage.take("c"), lambda r, p: r.get(p + "c") is None),
        ("delete", lambda: storage.delete("k"), lambda r, p: r.get(p + "k") is None),
    ]


def test_every_write_is_on_the_replica_when_it_returns(
    primary: ServerProcess, replica: redis.Redis, prefix: str
) -> None:
    storage = RedisStorage(_url(primary, "wait_replicas=1"), prefix=prefix)
    try:
        for name, call, held in _ops(storage):
            call()
            assert held(replica, prefix), name
        storage.set("r", b"x", HOUR)
        storage.reset()
        assert replica.get(prefix + "r") is None
    finally:
        storage.close()


def test_every_async_write_is_on_the_replica_when_it_returns(
    primary: ServerProcess, replica: redis.Redis, prefix: str
) -> None:
    storage = RedisStorage(_url(primary, "wait_replicas=1"), prefix=prefix)

    async def run() -> None:
        await storage.aset("k", b"1", HOUR)
        assert replica.get(prefix + "k") == b"1"
        assert await storage.areplace("k", b"2", HOUR)
        assert replica.get(prefix + "k") == b"2"
        assert await storage.acreate("c", b"c", HOUR)
        assert replica.get(prefix + "c") == b"c"
        assert await storage.atouch("k", timedelta(hours=2))
        assert replica.pttl(prefix + "k") > 3_600_000
        assert await storage.aget_and_touch("k", timedelta(hours=3)) == b"2"
        assert replica.pttl(prefix + "k") > 7_200_000
        assert await storage.areplace_if("k", b"2", b"3", None)
        assert replica.get(prefix + "k") == b"3" and replica.pttl(prefix + "k") == -1
        assert await storage.atake("c")
        assert replica.get(prefix + "c") is None
        await storage.adelete("k")
        assert replica.get(prefix + "k") is None
        await storage.aset("r", b"x", HOUR)
        await storage.areset()
        assert replica.get(prefix + "r") is None
        await storage.aclose()

    asyncio.run(run())


def test_a_write_too_few_replicas_acknowledged_is_a_storage_error(
    primary: ServerProcess, prefix: str
) -> None:
    """Two replicas asked for, one there: the write is made on the primary, and reported
    failed after ``wait_timeout``. Every write, sync and async."""
    storage = RedisStorage(_url(primary, "wait_replicas=2&wait_timeout=0.1"), prefix=prefix)
    raw = redis.Redis.from_url(primary.url)
    try:
        raw.set(prefix + "k", b"0")
        calls: list[Callable[[], Any]] = [
            lambda: storage.set("k", b"1", HOUR),
            lambda: storage.replace("k", b"2", HOUR),
            lambda: storage.create("c", b"c", HOUR),
            lambda: storage.touch("k", HOUR),
            lambda: storage.get_and_touch("k", HOUR),
            lambda: storage.replace_if("k", b"2", b"3", HOUR),
            lambda: asyncio.run(storage.aset("k", b"4", HOUR)),
            lambda: asyncio.run(storage.areplace_if("k", b"4", b"5", HOUR)),
        ]
        for call in calls:
            began = time.monotonic()
            with pytest.raises(StorageError, match="1 of the 2 replicas") as caught:
                call()
            assert 0.1 <= time.monotonic() - began < 0.1 + SLACK
            assert caught.value.__cause__ is None
        assert raw.get(prefix + "k") == b"5"  # made on the primary all the same
        assert storage.get("k") == b"5"  # and the connections are in step
    finally:
        storage.close()
        raw.close()


def test_a_delete_too_few_replicas_acknowledged_is_logged_not_raised(
    primary: ServerProcess, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A delete is done on the primary and cannot be undone: reporting it failed would make a
    ``regenerate()`` drop its new copy and log the user out."""
    storage = RedisStorage(_url(primary, "wait_replicas=2&wait_timeout=0.05"), prefix=prefix)
    raw = redis.Redis.from_url(primary.url)
    try:
        raw.set(prefix + "a", b"1")
        raw.set(prefix + "b", b"1")
        with caplog.at_level(logging.WARNING, logger="sessionkit_redis"):
            assert storage.take("a") is True
            storage.delete("b")
            assert asyncio.run(storage.atake("b")) is False
        assert raw.exists(prefix + "a", prefix + "b") == 0
        assert len([r for r in caplog.records if "1 of the 2 replicas" in r.message]) == 3
    finally:
        storage.close()
        raw.close()


def test_a_frozen_replica_fails_writes_within_wait_timeout_and_reads_go_on(
    pair: ServerGroup, prefix: str
) -> None:
    primary, replica = pair.servers
    storage = RedisStorage(_url(primary, "wait_replicas=1&wait_timeout=0.2"), prefix=prefix)
    try:
        storage.set("k", b"before", HOUR)
        with replica.frozen():
            began = time.monotonic()
            with pytest.raises(StorageError, match="0 of the 1"):
                storage.set("k", b"during", HOUR)
            assert time.monotonic() - began < 0.2 + SLACK
            assert storage.get("k") == b"during"  # reads need no replica
        storage.set("k", b"after", HOUR)  # the replica catches up and acknowledges again
    finally:
        storage.close()


@pytest.mark.parametrize("query", ["wait_replicas=1", "wait_replicas=1&protocol=3"])
def test_a_write_and_its_wait_go_in_one_round_trip(
    primary: ServerProcess, prefix: str, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the lane's connection, or (RESP3) as a pipeline through the client."""
    storage = RedisStorage(_url(primary, query), prefix=prefix)
    sent: list[bytes] = []
    original: Any = redis.Connection.send_packed_command

    def counting(conn: redis.Connection, command: Any, check_health: bool = True) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else command)
        original(conn, command, check_health)

    try:
        storage.set("warm", b"v", HOUR)  # connected, handshake done
        storage.replace_if("warm", b"v", b"v", HOUR)  # and the script loaded (no NOSCRIPT retry)
        monkeypatch.setattr(redis.Connection, "send_packed_command", counting)
        storage.set("k", b"v", HOUR)
        assert storage.replace_if("k", b"v", b"w", HOUR) is True
        assert len(sent) == 2 and all(b"WAIT" in packet for packet in sent)
    finally:
        storage.close()


def test_clients_passed_in_wait_through_a_pipeline(
    primary: ServerProcess, replica: redis.Redis, prefix: str
) -> None:
    client = redis.Redis.from_url(primary.url)
    storage = RedisStorage(client=client, prefix=prefix, wait_replicas=1, wait_timeout=0.5)
    storage.set("k", b"v", HOUR)
    assert replica.get(prefix + "k") == b"v"
    assert storage.take("k") and replica.get(prefix + "k") is None
    short = RedisStorage(client=client, prefix=prefix, wait_replicas=2, wait_timeout=0.05)
    with pytest.raises(StorageError, match="1 of the 2"):
        short.set("k", b"v", HOUR)
    client.close()


def test_an_error_reply_leaves_the_connection_in_step(primary: ServerProcess, prefix: str) -> None:
    """The write's error is read, then WAIT's reply, so the next command reads its own."""
    storage = RedisStorage(_url(primary, "wait_replicas=1"), prefix=prefix)
    raw = redis.Redis.from_url(primary.url)
    try:
        raw.rpush(prefix + "list", b"x")
        for _ in range(3):
            with pytest.raises(StorageError) as caught:
                storage.replace_if("list", b"x", b"y", HOUR)
            assert isinstance(caught.value.__cause__, redis.ResponseError)
            storage.set("k", b"v", HOUR)
            assert storage.get("k") == b"v"
    finally:
        storage.close()
        raw.close()


def _user_without_scripts(primary: ServerProcess) -> str:
    admin = redis.Redis.from_url(primary.url)
    admin.acl_setuser(
        "app", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-@scripting"]
    )
    admin.close()
    return primary.url.replace("redis://", "redis://app:pw@")


def test_replace_if_without_scripting_waits_too(
    primary: ServerProcess, replica: redis.Redis, prefix: str
) -> None:
    """The ``WATCH`` fallback: ``MULTI``, the write, ``EXEC``, then ``WAIT``, all on the
    connection that watched; a short count leaves no connection inside ``MULTI``."""
    url = _user_without_scripts(primary)
    storage = RedisStorage(f"{url}?wait_replicas=1", prefix=prefix)
    short = RedisStorage(f"{url}?wait_replicas=2&wait_timeout=0.05", prefix=prefix)
    try:
        storage.set("k", b"loaded", HOUR)
        assert storage.replace_if("k", b"loaded", b"renewed", HOUR) is True
        assert storage._no_scripts and replica.get(prefix + "k") == b"renewed"
        assert storage.replace_if("k", b"loaded", b"stale", HOUR) is False
        assert asyncio.run(storage.areplace_if("k", b"renewed", b"again", None)) is True
        assert replica.get(prefix + "k") == b"again"
        for _ in range(2):
            with pytest.raises(StorageError, match="1 of the 2"):
                short.replace_if("k", b"again", b"again", HOUR)
            assert short.get("k") == b"again" and short.take("absent") is False
    finally:
        storage.close()
        short.close()
