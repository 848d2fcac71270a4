"""The client-side cache (``client_cache=true``): hits make no round trip, and no read that
starts after a change was acknowledged serves the value from before it.

On the real server: changes are made by another client (``raw``) or by the storage itself,
the listener is killed with ``CLIENT KILL ID`` from another connection, and the race of a fill
with a change is driven step by step. The cross-process proof (10,000 trials) is in
``test_client_cache_processes.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis

from sessionkit import ConfigError, Storage, open_storage
from sessionkit.testing import StorageConformance, closed_port
from sessionkit_redis import RedisStorage
from sessionkit_redis._cache import ClientCache
from sessionkit_redis._lane import AsyncLane, SyncLane

pytestmark = pytest.mark.redis

TTL = timedelta(minutes=5)


def cached_url(url: str, **options: object) -> str:
    query = "&".join(
        f"{name}={value}" for name, value in {"client_cache": "true", **options}.items()
    )
    return f"{url}{'&' if '?' in url else '?'}{query}"


def cache_of(storage: RedisStorage) -> ClientCache:
    cache = storage._cache
    assert cache is not None
    return cache


def wait_live(storage: RedisStorage, timeout: float = 5.0) -> ClientCache:
    """Read until the listener is subscribed and a PING came back (hits can be served)."""
    cache = cache_of(storage)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        storage.get("__warm__")
        if cache.live and cache.get("__none__") is None and cache._serving(time.monotonic()):
            return cache
        time.sleep(0.005)
    raise AssertionError("the cache's listener did not come up")


@pytest.fixture
def cached(redis_url: str, prefix: str) -> Iterator[RedisStorage]:
    storage = RedisStorage(cached_url(redis_url), prefix=prefix)
    wait_live(storage)
    yield storage
    storage.close()


@pytest.fixture
def no_round_trips(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it to make every command the storage sends fail the test."""

    def forbid() -> None:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"a round trip was made: {args[1:]!r}")

        for lane in (SyncLane, AsyncLane):
            monkeypatch.setattr(lane, "command", refuse)
            monkeypatch.setattr(lane, "commands", refuse)

    return forbid


# -- options --------------------------------------------------------------------------------


def test_the_cache_is_off_by_default(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(redis_url, prefix=prefix)
    assert storage._cache is None
    storage.close()


@pytest.mark.parametrize("value", ["true", "yes", "1"])
def test_client_cache_turns_it_on_from_the_url(redis_url: str, prefix: str, value: str) -> None:
    storage = open_storage(f"{redis_url}?client_cache={value}&prefix={prefix}")
    assert isinstance(storage, RedisStorage) and storage._cache is not None
    storage.close()


def test_bounds_are_taken_from_the_url_or_keywords() -> None:
    storage = RedisStorage(
        "redis://h/0?client_cache=true&client_cache_max_entries=5", client_cache_max_bytes=4096
    )
    settings = cache_of(storage)._settings
    assert (settings.max_entries, settings.max_bytes) == (5, 4096)
    storage.close()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("redis://h/0?client_cache=maybe", "client_cache"),
        ("redis://h/0?client_cache=true&client_cache_max_entries=0", "client_cache_max_entries"),
        ("redis://h/0?client_cache=true&client_cache_max_bytes=-1", "client_cache_max_bytes"),
        ("redis://h/0?client_cache_max_entries=10", "client_cache_max_entries"),
        ("redis+cluster://h:7000?client_cache=true", "client_cache"),
        ("redis+sentinel://h:26379/mymaster?client_cache=true", "client_cache"),
    ],
)
def test_bad_cache_options_are_refused_at_open(url: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RedisStorage(url)
    assert caught.value.field == field


# -- hits and what ends them ----------------------------------------------------------------


def test_a_hit_makes_no_round_trip(
    cached: RedisStorage, no_round_trips: Callable[[], None]
) -> None:
    cached.set("k", b"v", TTL)
    assert cached.get("k") == b"v"  # the fill
    no_round_trips()
    assert cached.get("k") == b"v"
    assert asyncio.run(cached.aget("k")) == b"v"
    assert cache_of(cached).stats["hits"] == 2


def test_a_change_by_another_client_is_seen_by_the_next_read(
    cached: RedisStorage, raw: redis.Redis
) -> None:
    name = cached.prefix + "k"
    cached.set("k", b"v1", TTL)
    for change, expected in [
        (lambda: raw.set(name, b"v2"), b"v2"),
        (lambda: raw.pexpire(name, 60_000), b"v2"),
        (lambda: raw.append(name, b"+"), b"v2+"),
        (lambda: raw.delete(name), None),
        (lambda: raw.set(name, b"v3"), b"v3"),
        (lambda: raw.unlink(name), None),
    ]:
        assert cached.get("k") is not None or expected is not None
        cached.get("k")
        change()  # acknowledged: no read that starts now may see the value from before
        assert cached.get("k") == expected
        assert asyncio.run(cached.aget("k")) == expected


def test_own_writes_are_seen_at_once(cached: RedisStorage) -> None:
    cache = cache_of(cached)
    steps: list[tuple[Callable[[], object], bytes | None]] = [
        (lambda: cached.set("k", b"2", TTL), b"2"),
        (lambda: cached.replace("k", b"3", TTL), b"3"),
        (lambda: cached.replace_if("k", b"3", b"4", TTL), b"4"),
        (lambda: cached.touch("k", None), b"4"),
        (lambda: cached.delete("k"), None),
        (lambda: cached.create("k", b"5", TTL), b"5"),
        (lambda: cached.take("k"), None),
        (lambda: cached.set("k", b"6", TTL), b"6"),
        (lambda: cached.reset(), None),
        (lambda: asyncio.run(cached.aset("k", b"7", TTL)), b"7"),
        (lambda: asyncio.run(cached.areplace_if("k", b"7", b"8", TTL)), b"8"),
        (lambda: asyncio.run(cached.adelete("k")), None),
        (lambda: asyncio.run(cached.acreate("k", b"9", TTL)), b"9"),
        (lambda: asyncio.run(cached.atake("k")), None),
        (lambda: asyncio.run(cached.aset("k", b"10", TTL)), b"10"),
        (lambda: asyncio.run(cached.areset()), None),
    ]
    cached.set("k", b"1", TTL)
    for write, expected in steps:
        cached.get("k")
        cached.get("k")  # cached, if there is a value
        write()
        assert name_absent(cache, cached.prefix + "k")  # forgotten on the write's return
        assert cached.get("k") == expected


def test_changes_of_one_key_in_one_server_turn_come_as_one_message(
    cached: RedisStorage, raw: redis.Redis
) -> None:
    """Why a write here forgets its key instead of keeping what it wrote: in broadcast mode
    Redis merges the changes of one key made in one turn of its event loop into one message
    naming it once, so the message of this process's write may stand for another client's
    change made just after it too, and letting "its own" message through would keep a value
    that change replaced (docs/performance.md, the client cache under load)."""
    cache = cache_of(cached)
    name = cached.prefix + "k"
    before = cache.stats["invalidated"]
    with raw.pipeline(transaction=True) as both:  # MULTI/EXEC: one turn of the server's loop
        both.set(name, b"one client's change")
        both.set(name, b"a change just after it")
        both.execute()
    time.sleep(0.05)
    cache.get("other")  # a read applies what the listener got
    assert cache.stats["invalidated"] - before == 1


def name_absent(cache: ClientCache, name: str) -> bool:
    return name not in cache._entries


def test_an_entry_is_not_served_past_its_ttl(cached: RedisStorage) -> None:
    cached.set("k", b"v", timedelta(milliseconds=300))
    assert cached.get("k") == b"v"
    deadline = cache_of(cached)._entries[cached.prefix + "k"][1]
    assert deadline <= time.monotonic() + 0.3
    time.sleep(0.35)
    assert cached.get("k") is None


def test_flushdb_of_another_database_does_not_matter_but_a_message_for_all_empties(
    cached: RedisStorage,
) -> None:
    cache = cache_of(cached)
    cached.set("k", b"v", TTL)
    cached.get("k")
    with cache._lock:
        cache._apply([b"message", b"__redis__:invalidate", None], time.monotonic())
    assert len(cache) == 0


def test_the_cache_is_bounded(redis_url: str, prefix: str) -> None:
    storage = RedisStorage(cached_url(redis_url, client_cache_max_entries=3), prefix=prefix)
    cache = wait_live(storage)
    for i in range(10):
        storage.set(str(i), b"x" * 10, TTL)
        storage.get(str(i))
    assert len(cache) == 3
    assert [name.removeprefix(prefix) for name in cache._entries] == ["7", "8", "9"]
    storage.close()
    small = RedisStorage(cached_url(redis_url, client_cache_max_bytes=1000), prefix=prefix)
    cache = wait_live(small)
    for i in range(10):
        small.set(str(i), b"x" * 300, TTL)
        small.get(str(i))
    assert 0 < cache.size <= 1000 and len(cache) == 1
    small.set("big", b"x" * 2000, TTL)
    assert small.get("big") == b"x" * 2000  # read, never kept
    assert prefix + "big" not in cache._entries
    small.close()


# -- the fill race ---------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["sync", "async"])
def test_a_change_between_the_reply_and_the_fill_is_not_lost(
    cached: RedisStorage, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch, side: str
) -> None:
    """A read misses and gets the old value; before it stores it, another client changes the
    key and a read on another thread drains the message. The value must not be kept."""
    cache = cache_of(cached)
    name = cached.prefix + "k"
    cached.set("k", b"old", TTL)
    real_sync, real_async = SyncLane.commands, AsyncLane.commands

    def change_meanwhile() -> None:
        raw.set(name, b"new")
        drained = threading.Thread(target=lambda: cache.get("other"))
        drained.start()  # another thread's read applies the message
        drained.join()
        assert cache.stats["invalidated"] >= 1

    def sync_commands(self: SyncLane, commands: Any, **kwargs: Any) -> list[Any]:
        replies = real_sync(self, commands, **kwargs)
        change_meanwhile()
        return replies

    async def async_commands(self: AsyncLane, commands: Any, **kwargs: Any) -> list[Any]:
        replies = await real_async(self, commands, **kwargs)
        change_meanwhile()
        return replies

    monkeypatch.setattr(SyncLane, "commands", sync_commands)
    monkeypatch.setattr(AsyncLane, "commands", async_commands)
    if side == "sync":
        assert cached.get("k") == b"old"  # what the server said when asked
    else:
        assert asyncio.run(cached.aget("k")) == b"old"
    monkeypatch.undo()
    assert cached.get("k") == b"new"
    assert name not in cache._entries or cache._entries[name][0] == b"new"


def test_a_message_taken_out_of_the_socket_by_another_read_is_applied_before_this_one_looks(
    cached: RedisStorage, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another thread's drain may have taken a change's message out of the socket and not
    applied it yet: the socket is empty, the entry still there. The cache's lock, which that
    drain holds until the message is applied, keeps a read from serving the value the message
    voids. (A hit served without the lock, to save its cost, would serve it: this is the test
    such a change must pass.)"""
    cache = cache_of(cached)
    name = cached.prefix + "k"
    cached.set("k", b"old", TTL)
    cached.get("k")
    assert cached.get("k") == b"old"  # a hit: cached
    real_apply = ClientCache._apply
    taken, looked = threading.Event(), threading.Event()

    def slow_apply(self: ClientCache, message: Any, now: float) -> None:
        if not taken.is_set():
            taken.set()  # the message is out of the socket, not applied yet
            looked.wait(0.5)  # the other read polls (empty) and waits for the lock
        real_apply(self, message, now)

    monkeypatch.setattr(ClientCache, "_apply", slow_apply)
    raw.set(name, b"new")  # acknowledged: no read that starts now may see "old"
    deadline = time.monotonic() + 2
    while not cache._poll() and time.monotonic() < deadline:  # the message is here
        time.sleep(0.001)
    drainer = threading.Thread(target=lambda: cache.get("other"))
    drainer.start()
    assert taken.wait(2)
    polled = cache._poll()
    seen: list[bytes | None] = []
    reader = threading.Thread(target=lambda: seen.append(cached.get("k")))
    reader.start()
    time.sleep(0.05)
    looked.set()
    drainer.join()
    reader.join()
    assert not polled  # the socket was empty when the read polled it
    assert seen == [b"new"]


# -- the listener ----------------------------------------------------------------------------


def test_a_killed_listener_stops_the_cache_until_it_is_back(
    cached: RedisStorage, raw: redis.Redis
) -> None:
    cache = cache_of(cached)
    name = cached.prefix + "k"
    cached.set("k", b"v1", TTL)
    cached.get("k")
    assert cached.get("k") == b"v1" and cache.stats["hits"] >= 1
    killed = cache.listener_id
    assert raw.execute_command("CLIENT", "KILL", "ID", killed) == 1
    raw.set(name, b"v2")  # after the kill: the server has no one to tell
    assert cached.get("k") == b"v2"  # the break is seen: nothing stale
    assert cache.stats["breaks"] == 1
    hits = cache.stats["hits"]
    cached.get("k")
    assert cache.stats["hits"] == hits or cache.listener_id != killed
    wait_live(cached)
    assert cache.listener_id not in (0, killed)
    cached.get("k")
    assert cached.get("k") == b"v2" and cache.stats["hits"] > hits  # serving again
    raw.set(name, b"v3")
    assert cached.get("k") == b"v3"  # and tracking again


def test_a_listener_that_cannot_connect_leaves_reads_to_the_server(prefix: str) -> None:
    storage = RedisStorage(cached_url(f"redis://127.0.0.1:{closed_port()}/0"), prefix=prefix)
    cache = cache_of(storage)
    with pytest.raises(Exception, match="redis GET failed"):
        storage.get("k")
    time.sleep(0.2)
    assert not cache.live
    storage.close()


def test_close_ends_the_listener(redis_url: str, prefix: str, raw: redis.Redis) -> None:
    storage = RedisStorage(cached_url(redis_url), prefix=prefix)
    cache = wait_live(storage)
    listener = cache.listener_id
    storage.close()
    ids = {int(client["id"]) for client in raw.client_list()}
    assert listener not in ids


# -- threads and event loops -----------------------------------------------------------------


def test_threads_and_loops_never_read_a_value_older_than_the_last_acknowledged(
    cached: RedisStorage, raw: redis.Redis
) -> None:
    """Writers (another client) count up; readers on threads and on event loops check that
    no read returns less than the count acknowledged before it began."""
    name = cached.prefix + "n"
    raw.set(name, b"0")
    acknowledged = [0]
    stop = threading.Event()
    stale: list[tuple[int, int]] = []

    def writer() -> None:
        for n in range(1, 2000):
            raw.set(name, str(n).encode())
            acknowledged[0] = n
        stop.set()

    def check(floor: int, value: bytes | None) -> None:
        if value is None or int(value) < floor:
            stale.append((floor, int(value or b"-1")))

    def sync_reader() -> None:
        while not stop.is_set():
            floor = acknowledged[0]
            check(floor, cached.get("n"))

    def loop_reader() -> None:
        async def run() -> None:
            while not stop.is_set():
                floor = acknowledged[0]
                check(floor, await cached.aget("n"))
                await asyncio.sleep(0)

        asyncio.run(run())

    threads = [
        threading.Thread(target=f) for f in (sync_reader, sync_reader, loop_reader, loop_reader)
    ]
    for thread in threads:
        thread.start()
    writer()
    for thread in threads:
        thread.join()
    assert stale == []
    assert cache_of(cached).stats["hits"] > 0


# -- the conformance suite, cache on ---------------------------------------------------------


class TestCachedRedisStorage(StorageConformance):
    """The shared storage suite on a storage whose reads go through the cache."""

    clock_injectable = False
    conditional = True
    atomic = True
    creating = True
    processes_share_storage = True
    bad_urls: ClassVar[Sequence[str]] = (
        "redis://127.0.0.1:6379/0?client_cache=maybe",
        "redis://127.0.0.1:6379/0?client_cache=true&client_cache_max_entries=0",
        "redis://127.0.0.1:6379/0?client_cache_max_bytes=100",
        "redis+cluster://127.0.0.1:7000?client_cache=true",
    )

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, key_root: str) -> None:
        self.url = cached_url(redis_url)
        self.root = key_root

    def make_storage(self, namespace: str, clock: Callable[[], float] | None) -> Storage:
        assert clock is None
        storage = RedisStorage(self.url, prefix=f"{self.root}{namespace}:")
        wait_live(storage)
        return storage

    def make_broken_storage(self, namespace: str) -> Storage:
        return RedisStorage(
            cached_url(f"redis://127.0.0.1:{closed_port()}/0"), prefix=f"{namespace}:"
        )

    def storage_url(self, namespace: str) -> str:
        return f"{self.url}&prefix={self.root}{namespace}:"
