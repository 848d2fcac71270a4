"""Requirement 18 of ``docs/security.md``:

    "The memory storage has a configurable entry cap and purges expired entries without a full
    scan per request."

Why it matters: the memory storage lives in the web process. Without a cap, a flood of new
sessions (a bot logging in in a loop, a form that writes the session) grows the process until
the OS kills it -- taking every user's session with it. Without purging, expired sessions that
are never requested again stay in memory forever. And purging by walking every entry on every
request turns the clean-up itself into the denial of service: with a million entries each
request would pay a million steps, under the storage's lock. So: ``max_entries`` bounds the
map (expired entries go first, then the least recently written), and expired entries are
found through a heap ordered by expiry, at most ``purge_batch`` per write.

The cap is proven through the public API and through both middlewares. "No full scan" cannot
be seen from outside without timing, and timed tests flake; instead the storage's map is
swapped for a dict that counts the entries anyone walks and the keys anyone looks up -- the
work a write does, counted, not timed. That reaches into ``MemoryStorage._data``; the test says
so loudly if the storage stops keeping its entries in that dict.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from sessionkit import ConfigError, Store, open_storage
from sessionkit.testing import FakeClock
from sessionkit_memory import MemoryStorage
from tests.web._support import Browser, CountingStorage, MakeClient, make_store

MINUTE = timedelta(minutes=1)


def _keys_alive(storage: MemoryStorage, keys: list[str]) -> list[str]:
    return [k for k in keys if storage.get(k) is not None]


# -- the cap ------------------------------------------------------------------------------------


def test_max_entries_caps_the_map_and_evicts_the_least_recently_written(clock: FakeClock) -> None:
    storage = MemoryStorage(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        storage.set(key, b"v", MINUTE)
    storage.set("a", b"v2", MINUTE)  # rewritten: now the most recent
    storage.set("d", b"v", MINUTE)
    assert len(storage) == 3
    assert _keys_alive(storage, ["a", "b", "c", "d"]) == ["a", "c", "d"]  # b was the oldest
    for i in range(100):
        storage.set(f"flood{i}", b"v", None)  # entries without a TTL count too
        assert len(storage) <= 3
    assert _keys_alive(storage, ["flood97", "flood98", "flood99"]) == [
        "flood97",
        "flood98",
        "flood99",
    ]


def test_at_the_cap_expired_entries_go_before_live_ones(clock: FakeClock) -> None:
    storage = MemoryStorage(max_entries=3, clock=clock)
    storage.set("live1", b"v", timedelta(hours=1))  # the least recently written ...
    storage.set("expired", b"v", timedelta(seconds=10))  # ... but this one is dead
    storage.set("live2", b"v", timedelta(hours=1))
    clock.advance(11)
    storage.set("new", b"v", timedelta(hours=1))
    assert len(storage) == 3
    assert _keys_alive(storage, ["live1", "live2", "new"]) == ["live1", "live2", "new"]


def test_max_entries_is_configurable_by_url_and_by_object() -> None:
    by_url = open_storage("memory://?max_entries=5")
    assert isinstance(by_url, MemoryStorage) and by_url.max_entries == 5
    store = Store(storage="memory://?max_entries=7")
    assert isinstance(store.storage, MemoryStorage) and store.storage.max_entries == 7
    assert MemoryStorage(max_entries=9).max_entries == 9
    assert MemoryStorage().max_entries is None  # opt-in, documented as "set it in production"


@pytest.mark.parametrize("bad", [0, -1, True])
def test_max_entries_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ConfigError) as info:
        MemoryStorage(max_entries=bad)
    assert info.value.field == "max_entries"


@pytest.mark.parametrize("url", ["memory://?max_entries=abc", "memory://?max_entries=1.5"])
def test_max_entries_from_a_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_storage(url)
    assert info.value.field == "max_entries"


async def test_a_flood_of_new_sessions_through_the_middleware_stays_within_max_entries(
    make_client: MakeClient, clock: FakeClock
) -> None:
    memory = MemoryStorage(max_entries=50, clock=clock)
    client = make_client(make_store(clock, CountingStorage(memory)))
    first = Browser(client)
    await first.get("/set?user=first")
    for i in range(300):
        reply = await client.get(f"/set?user=bot{i}")
        assert reply.status == 200
        assert len(memory) <= 50
    last = Browser(client)
    await last.get("/set?user=last")
    assert (await last.get("/get?k=user")).text == '"last"'
    # the cost of the cap: the least recently written session was evicted, not adopted
    assert (await first.get("/get?k=user")).text == "null"


# -- purging expired entries --------------------------------------------------------------------


def test_each_write_purges_at_most_a_batch_of_expired_entries_and_all_go_eventually(
    clock: FakeClock,
) -> None:
    storage = MemoryStorage(purge_batch=16, clock=clock)
    for i in range(1000):
        storage.set(f"expired{i}", b"v", timedelta(seconds=10))
    clock.advance(11)
    assert len(storage) == 1000 and storage.count() == 0  # held, but expired

    storage.set("w0", b"v", MINUTE)
    assert len(storage) == 1000 - 16 + 1  # one bounded batch, not everything
    for i in range(1, 63):
        storage.set(f"w{i}", b"v", MINUTE)
    assert len(storage) == 63  # 63 writes x 16 >= 1000: every expired entry is gone
    assert storage.count() == 63


def test_expired_entry_is_absent_on_read_before_any_purge(clock: FakeClock) -> None:
    storage = MemoryStorage(clock=clock)
    storage.set("k", b"v", timedelta(seconds=10))
    clock.advance(10)
    assert storage.get("k") is None
    assert len(storage) == 0  # dropped on the read that found it expired


class WalkCountingDict(dict[str, Any]):
    """A dict that counts the entries walked (any iteration) and the keys looked up."""

    walked = 0
    looked_up = 0

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            self.walked += 1
            yield key

    def keys(self) -> Any:
        return list(iter(self))

    def values(self) -> Any:
        return [super(WalkCountingDict, self).__getitem__(k) for k in self]

    def items(self) -> Any:
        return [(k, super(WalkCountingDict, self).__getitem__(k)) for k in self]

    def get(self, key: str, default: Any = None) -> Any:
        self.looked_up += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.looked_up += 1
        return super().__getitem__(key)


def _instrumented(storage: MemoryStorage) -> WalkCountingDict:
    data = getattr(storage, "_data", None)
    assert type(data) is dict, "MemoryStorage no longer keeps its entries in _data: adapt"
    counting = WalkCountingDict(data)
    storage._data = counting
    return counting


def _fill(storage: MemoryStorage, live: int, expired: int, clock: FakeClock) -> None:
    for i in range(expired):
        storage.set(f"expired{i}", b"v", timedelta(seconds=10))
    clock.advance(11)
    for i in range(live):
        storage.set(f"live{i}", b"v", timedelta(hours=1))


def test_a_write_walks_no_entries_and_looks_up_at_most_a_batch(clock: FakeClock) -> None:
    """10 000 live and 1 000 expired entries: one ``set`` looks up at most ``purge_batch``
    keys (the expired ones it deletes) and walks none of the map."""
    storage = MemoryStorage(purge_batch=16, clock=clock)
    _fill(storage, live=10_000, expired=1_000, clock=clock)
    data = _instrumented(storage)
    storage.set("new", b"v", timedelta(hours=1))
    assert data.walked == 0
    assert data.looked_up <= 16 + 2
    for op in (storage.get, storage.delete):
        op("live5")
    storage.touch("live6", timedelta(hours=2))
    storage.replace("live7", b"w", timedelta(hours=2))
    assert data.walked == 0


def test_a_write_at_the_cap_walks_one_entry_per_eviction(clock: FakeClock) -> None:
    storage = MemoryStorage(max_entries=5_000, clock=clock)
    _fill(storage, live=5_000, expired=0, clock=clock)
    data = _instrumented(storage)
    for i in range(100):
        storage.set(f"more{i}", b"v", timedelta(hours=1))
    assert len(storage) == 5_000
    assert data.walked <= 100  # the oldest entry, found in O(1) each time


def test_renewals_cost_amortised_constant_work_and_bookkeeping_stays_bounded(
    clock: FakeClock,
) -> None:
    """Each renewal leaves a stale expiry behind; they are compacted now and then, which walks
    the map -- but never more than one entry per write on average, and the expiry index never
    grows beyond a constant factor of the live entries."""
    storage = MemoryStorage(clock=clock)
    _fill(storage, live=2_000, expired=0, clock=clock)
    data = _instrumented(storage)
    writes = 0
    for round_ in range(5):
        for i in range(2_000):
            clock.advance(0.001)
            if i % 2:
                storage.touch(f"live{i}", timedelta(hours=1))
            else:
                storage.set(f"live{i}", b"v%d" % round_, timedelta(hours=1))
            writes += 1
    assert data.walked <= writes
    assert len(storage._heap) <= 3 * len(storage) + 1024


async def test_requests_through_the_middleware_never_walk_the_map(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """10 000 sessions stored, 1 000 of them expired: 100 requests that log in, read and
    update sessions walk no entry at all."""
    memory = MemoryStorage(clock=clock)
    _fill(memory, live=10_000, expired=1_000, clock=clock)
    data = _instrumented(memory)
    client = make_client(Store(storage=memory, clock=clock, expiration=timedelta(hours=1)))
    for _ in range(50):
        browser = Browser(client)
        await browser.get("/set?user=ada")
        assert (await browser.get("/count")).text == "1"
    assert data.walked == 0
    assert len(memory) < 11_000  # and the expired ones are being purged as it goes
