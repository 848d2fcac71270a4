"""The Redis storage's abilities for operators: ``count``, ``scan``, ``purge_expired``.

The shared conformance suite checks what every backend promises; these check how Redis keeps
it: by ``SCAN`` of the escaped prefix only (never ``KEYS`` or ``DBSIZE``), pages of values in
one round trip, keys that vanish mid-walk, a Redis Cluster, and failures.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis
import redis.asyncio
from redis.cluster import RedisCluster

from sessionkit import (
    ConfigError,
    CountableStorage,
    PurgeableStorage,
    ScannableStorage,
    StorageError,
)
from sessionkit_redis import RedisStorage
from sessionkit_redis._storage import SCAN_COUNT
from tests._servers import free_port

pytestmark = pytest.mark.redis

HOUR = timedelta(hours=1)


def fill(raw: redis.Redis, prefix: str, count: int) -> dict[str, bytes]:
    """``count`` keys under ``prefix`` in one round trip; return them by storage key."""
    written = {f"k{index}": f"v{index}".encode() for index in range(count)}
    with raw.pipeline(transaction=False) as pipe:
        for key, value in written.items():
            pipe.set(prefix + key, value)
        pipe.execute()
    return written


def test_the_storage_has_all_three_abilities(storage: RedisStorage) -> None:
    assert isinstance(storage, CountableStorage)
    assert isinstance(storage, ScannableStorage)
    assert isinstance(storage, PurgeableStorage)


# -- what is sent --------------------------------------------------------------------------------


class RecordingConnection(redis.Connection):
    """Records the name of every single command sent, and counts sends (one per round trip,
    a whole pipeline included)."""

    commands: ClassVar[list[str]] = []
    sends: ClassVar[int] = 0

    def send_command(self, *args: Any, **kwargs: Any) -> None:
        type(self).commands.append(str(args[0]).upper())
        super().send_command(*args, **kwargs)  # type: ignore[no-untyped-call]

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sends += 1
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.fixture
def recorded(redis_url: str, prefix: str) -> Iterator[RedisStorage]:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=RecordingConnection)
    client = redis.Redis(connection_pool=pool)
    client.ping()  # the handshake is not the operation's
    RecordingConnection.commands.clear()
    yield RedisStorage(client=client, prefix=prefix)
    pool.disconnect()


def test_count_walks_the_prefix_with_scan_never_keys_or_dbsize(
    recorded: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    fill(raw, prefix, 3)
    assert recorded.count() == 3
    commands = set(RecordingConnection.commands)
    assert commands == {"SCAN"}, commands


def test_scan_fetches_each_page_of_values_in_one_round_trip(
    recorded: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    written = fill(raw, prefix, SCAN_COUNT + 10)  # two pages
    before = RecordingConnection.sends
    assert dict(recorded.scan()) == written
    scans = RecordingConnection.commands.count("SCAN")  # a pipeline sends no single command
    assert set(RecordingConnection.commands) == {"SCAN"}
    assert RecordingConnection.sends - before == scans + 2  # and one pipeline per page


# -- the namespace -------------------------------------------------------------------------------


def test_glob_characters_in_the_prefix_are_literal(
    redis_url: str, glob_prefix: tuple[str, list[str]]
) -> None:
    prefix, _ = glob_prefix
    storage = RedisStorage(redis_url, prefix=prefix)
    storage.set("k", b"mine", None)
    assert storage.count() == 1
    assert list(storage.scan()) == [("k", b"mine")]
    storage.close()


def test_overlapping_prefixes_are_one_namespace_a_known_limitation(
    redis_url: str, key_root: str
) -> None:
    """Redis has names, not namespaces: the walk of ``a:`` takes in ``a:b:``'s keys."""
    short = RedisStorage(redis_url, prefix=f"{key_root}a:")
    longer = RedisStorage(redis_url, prefix=f"{key_root}a:b:")
    short.set("x", b"short", None)
    longer.set("x", b"longer", None)
    assert longer.count() == 1 and list(longer.scan()) == [("x", b"longer")]
    assert short.count() == 2
    assert sorted(short.scan()) == [("b:x", b"longer"), ("x", b"short")]
    short.close()
    longer.close()


def test_a_name_that_is_not_utf8_is_neither_counted_nor_scanned(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    """No ``str`` key makes such a name, so it is someone else's; it cannot be read as a key."""
    raw.set(prefix.encode() + b"\xff\xfe", b"foreign")
    storage.set("k", b"v", HOUR)
    assert storage.count() == 1
    assert list(storage.scan()) == [("k", b"v")]


# -- expiry and keys that vanish mid-walk --------------------------------------------------------


def test_expired_keys_are_neither_counted_nor_scanned(storage: RedisStorage) -> None:
    storage.set("short", b"s", timedelta(milliseconds=50))
    storage.set("long", b"l", HOUR)
    time.sleep(0.1)
    assert storage.count() == 1
    assert list(storage.scan()) == [("long", b"l")]


def test_purge_expired_is_zero_and_deletes_nothing(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    """The server expires keys itself; a client-side purge would only race it."""
    storage.set("short", b"s", timedelta(seconds=30))
    storage.set("forever", b"f", None)
    assert storage.purge_expired() == 0
    assert raw.exists(prefix + "short", prefix + "forever") == 2


def test_scan_skips_keys_deleted_between_scan_and_get(
    storage: RedisStorage, raw: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = fill(raw, prefix, 20)
    pages = RedisStorage._pages

    def racing(self: RedisStorage, client: Any) -> Iterator[list[bytes]]:
        for names in pages(self, client):
            raw.delete(names[0])  # gone after SCAN returned it, before its GET
            yield names

    monkeypatch.setattr(RedisStorage, "_pages", racing)
    scanned = dict(storage.scan())
    assert len(scanned) == len(written) - 1
    assert all(written[key] == value for key, value in scanned.items())


def test_scan_and_count_cover_more_than_one_page(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    written = fill(raw, prefix, SCAN_COUNT * 2 + 7)
    assert storage.count() == len(written)
    assert dict(storage.scan()) == written


def test_a_value_of_another_type_under_the_prefix_is_a_storage_error(
    storage: RedisStorage, raw: redis.Redis, prefix: str
) -> None:
    """As for ``get``: the namespace holds something no session storage wrote."""
    raw.rpush(prefix + "list", b"x")
    assert storage.count() == 1
    with pytest.raises(StorageError, match="redis SCAN failed") as caught:
        list(storage.scan())
    assert isinstance(caught.value.__cause__, redis.ResponseError)


# -- failures and clients ------------------------------------------------------------------------


def test_unreachable_server_is_a_storage_error() -> None:
    storage = RedisStorage(f"redis://127.0.0.1:{free_port()}/0")
    for walk in (storage.count, lambda: list(storage.scan())):
        with pytest.raises(StorageError, match="redis SCAN failed") as caught:
            walk()
        assert isinstance(caught.value.__cause__, redis.ConnectionError)
    storage.close()


def test_closed_storage_refuses_every_ability(storage: RedisStorage) -> None:
    storage.close()
    for call in (storage.count, lambda: list(storage.scan()), storage.purge_expired):
        with pytest.raises(StorageError, match="closed"):
            call()


def test_an_async_only_storage_has_no_sync_client_for_them(prefix: str) -> None:
    storage = RedisStorage(async_client=redis.asyncio.Redis(), prefix=prefix)
    for call in (storage.count, lambda: list(storage.scan()), storage.purge_expired):
        with pytest.raises(ConfigError) as caught:
            call()
        assert caught.value.field == "client"


def test_cluster_count_and_scan_cover_every_primary(redis_cluster_url: str) -> None:
    client = RedisCluster.from_url(redis_cluster_url)
    prefix = f"inspect{uuid.uuid4().hex[:6]}:"
    storage = RedisStorage(client=client, prefix=prefix)
    written = {f"k{index}": f"v{index}".encode() for index in range(200)}
    for key, value in written.items():
        storage.set(key, value, HOUR)
    owners = {client.get_node_from_key(prefix + key).name for key in written}  # type: ignore[no-untyped-call]
    assert len(owners) == 3, "the keys should spread over every primary"
    assert storage.count() == len(written)
    assert dict(storage.scan()) == written
    storage.reset()
    assert storage.count() == 0
    client.close()
