"""Expiry and eviction order kept by the lanes (one deque of writes per TTL), the heap for the
writes no lane takes, and the write-order deque kept under ``max_entries``.

The storage keeps no per-entry heap item when TTLs are few; these tests hold it to the same
answers as the plain model it replaces: a dict in write order, expired entries purged soonest
first, the least recently written evicted at the cap.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sessionkit.testing import FakeClock
from sessionkit_memory import MemoryStorage

HOUR = timedelta(hours=1)
TEN_S = timedelta(seconds=10)


def alive(storage: MemoryStorage, keys: list[str]) -> list[str]:
    return [k for k in keys if storage.get(k) is not None]


def test_equal_ttls_need_no_heap_item() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    for i in range(100):
        clock.advance(1)
        storage.set(f"k{i}", b"v", HOUR)
    storage.touch("k0", HOUR)
    assert storage._heap == []
    clock.advance(3600 - 10)  # k0 to k89 have expired, save k0: touched last
    assert storage.purge_expired() == 89
    assert len(storage) == 11 and storage.get("k0") == b"v"


def test_a_shorter_ttl_written_after_a_longer_one_is_purged_when_it_expires() -> None:
    clock = FakeClock()
    storage = MemoryStorage(purge_batch=16, clock=clock)
    storage.set("long", b"v", HOUR)  # at the front of the write order, expiring last
    for i in range(40):
        storage.set(f"short{i}", b"v", TEN_S)
    clock.advance(11)
    storage.set("w", b"v", HOUR)
    assert len(storage) == 42 - 16  # a batch purged, though the oldest write is alive
    assert storage.purge_expired() == 40 - 16
    assert alive(storage, ["long", "short0", "w"]) == ["long", "w"]


def test_entries_without_expiry_hold_no_purge_back() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    storage.set("first", b"v", TEN_S)
    storage.set("forever", b"v", None)  # reaches the front of the queue once "first" goes
    for i in range(30):
        storage.set(f"k{i}", b"v", TEN_S)
    clock.advance(11)
    assert storage.purge_expired() == 31
    assert len(storage) == 1 and storage.get("forever") == b"v"
    storage.set("again", b"v", TEN_S)
    clock.advance(11)
    storage.set("later", b"v", None)
    assert len(storage) == 2  # "again" purged by the write, past the unexpiring entry


def test_an_entry_without_expiry_keeps_its_place_in_eviction_order() -> None:
    clock = FakeClock()
    storage = MemoryStorage(max_entries=3, clock=clock)
    storage.set("x", b"v", TEN_S)
    storage.set("forever", b"v", None)
    storage.set("y", b"v", HOUR)
    clock.advance(11)
    storage.set("z", b"v", HOUR)  # purges x: "forever" is now the oldest write
    storage.set("w", b"v", HOUR)  # one too many: "forever" is evicted, not y
    assert alive(storage, ["forever", "y", "z", "w"]) == ["y", "z", "w"]


def test_a_rewrite_to_the_same_expiry_is_a_new_write_for_eviction() -> None:
    clock = FakeClock()  # never advances: every write expires at the same time
    storage = MemoryStorage(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        storage.set(key, b"v", HOUR)
    storage.touch("a", HOUR)
    storage.set("d", b"v", HOUR)
    assert alive(storage, ["a", "b", "c", "d"]) == ["a", "c", "d"]

    storage = MemoryStorage(max_entries=3, clock=clock)
    storage.set("forever", b"v", None)
    storage.set("a", b"v", HOUR)
    storage.set("forever", b"w", None)  # rewritten: never expiring, as before
    storage.set("b", b"v", HOUR)
    storage.set("c", b"v", HOUR)  # evicts a, the oldest write
    assert alive(storage, ["forever", "a", "b", "c"]) == ["forever", "b", "c"]


def test_order_and_expiry_survive_the_compaction_of_stale_items() -> None:
    clock = FakeClock()
    storage = MemoryStorage(max_entries=12, clock=clock)
    storage.set("forever", b"v", None)
    for i in range(10):
        storage.set(f"k{i}", b"v", HOUR)
    storage.set("short", b"v", TEN_S)
    for _ in range(600):  # 3 000 rewrites: the stale items are filtered out more than once
        for i in range(5):
            storage.touch(f"k{i}", HOUR)
    queued = sum(len(lane) for lane in storage._lanes.values()) // 2 + len(storage._heap)
    assert queued <= 2 * len(storage) + 1024
    clock.advance(11)
    storage.set("new1", b"v", HOUR)  # purges "short"; 12 entries: no eviction yet
    assert len(storage) == 12
    storage.set("new2", b"v", HOUR)  # evicts the oldest write: "forever"
    storage.set("new3", b"v", HOUR)  # then k5, the oldest of those never rewritten
    assert alive(storage, ["forever", "k5", "k6", "k0", "new3"]) == ["k6", "k0", "new3"]


def test_a_longer_ttl_keeps_the_usual_one_out_of_the_heap() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    storage.set("remember-me", b"v", timedelta(days=30))
    for i in range(100):
        clock.advance(1)
        storage.set(f"k{i}", b"v", HOUR)
    assert storage._heap == []
    clock.advance(3600 - 50)
    assert storage.purge_expired() == 50
    assert alive(storage, ["remember-me", "k49", "k50"]) == ["remember-me", "k50"]


def test_more_ttls_than_lanes_go_to_the_heap_and_expire_in_order() -> None:
    clock = FakeClock()
    storage = MemoryStorage(purge_batch=3, clock=clock)
    for ttl in range(20, 0, -1):  # 20 distinct TTLs, the shortest written last
        storage.set(f"k{ttl}", b"v", timedelta(seconds=ttl))
    assert storage._heap != []
    clock.advance(10.5)
    storage.set("w", b"v", HOUR)
    assert alive(storage, ["k1", "k2", "k3", "k4"]) == []  # purged soonest first, or expired
    assert len(storage) == 21 - 3 - 1  # k1 to k3 purged by the write, k4 dropped on reading
    assert storage.purge_expired() == 10 - 4
    assert alive(storage, ["k10", "k11", "k20", "w"]) == ["k11", "k20", "w"]


def test_a_drained_lane_makes_room_for_another_ttl() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    for ttl in range(1, 9):  # as many TTLs as there are lanes
        storage.set(f"k{ttl}", b"v", timedelta(seconds=ttl))
    clock.advance(9)
    assert storage.purge_expired() == 8
    storage.set("new", b"v", timedelta(seconds=99))
    assert storage._heap == []


def test_a_clock_that_goes_back_still_expires_in_order() -> None:
    times = [1000.0]
    storage = MemoryStorage(clock=lambda: times[0])
    storage.set("a", b"v", TEN_S)  # expires at 1010
    times[0] = 900.0
    storage.set("b", b"v", TEN_S)  # the same TTL, expiring first: at 910
    times[0] = 950.0
    assert storage.purge_expired() == 1
    assert alive(storage, ["a", "b"]) == ["a"]


def test_a_cap_set_after_construction_still_evicts_the_oldest() -> None:
    storage = MemoryStorage()
    storage.max_entries = 2
    for key in ("a", "b", "c"):
        storage.set(key, b"v", HOUR)
    assert alive(storage, ["a", "b", "c"]) == ["b", "c"]


def test_heap_entries_survive_compaction() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    for ttl in range(20, 0, -1):  # the last writes, the shortest, go to the heap
        storage.set(f"k{ttl}", b"v", timedelta(seconds=ttl))
    storage.set("other", b"v", HOUR)
    for _ in range(1100):  # enough stale items to filter them out
        storage.touch("other", HOUR)
    clock.advance(10.5)
    storage.set("w", b"v", HOUR)  # purges a batch, through the heap
    assert len(storage) == 22 - 10
    assert alive(storage, ["k1", "k10", "k11", "other", "w"]) == ["k11", "other", "w"]


def test_an_unexpiring_entry_first_in_write_order_holds_no_purge_back() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    storage.set("forever", b"v", None)
    storage.set("k0", b"v", HOUR)
    for _ in range(1100):  # enough stale items to filter them out
        storage.touch("k0", HOUR)
    for i in range(1, 21):
        storage.set(f"k{i}", b"v", HOUR)
    clock.advance(3600)
    assert storage.purge_expired() == 21
    assert len(storage) == 1


# -- against a model --------------------------------------------------------------------------


class Model:
    """The plain semantics: a dict in write order with an expiry per entry."""

    def __init__(self, max_entries: int | None, purge_batch: int) -> None:
        self.entries: dict[str, tuple[bytes, float]] = {}
        self.max_entries = max_entries
        self.purge_batch = purge_batch

    def live(self, key: str, now: float) -> bytes | None:
        entry = self.entries.get(key)
        return entry[0] if entry is not None and entry[1] > now else None

    def purge(self, now: float, limit: int) -> int:
        soonest = sorted((exp, k) for k, (_, exp) in self.entries.items() if exp <= now)[:limit]
        for _, key in soonest:
            del self.entries[key]
        return len(soonest)

    def store(self, key: str, value: bytes, ttl: float | None, now: float, adds: bool) -> None:
        if adds:
            self.purge(now, self.purge_batch)
        self.entries.pop(key, None)
        self.entries[key] = (value, float("inf") if ttl is None else now + ttl)
        cap = self.max_entries
        if cap is not None and len(self.entries) > cap:
            self.purge(now, len(self.entries) - cap)
            while len(self.entries) > cap:
                del self.entries[next(iter(self.entries))]


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["set", "create", "replace", "touch", "replace_if", "delete", "take", "get", "wait"]
        ),
        st.sampled_from("abcdefg"),
        st.sampled_from([None, *(float(s) for s in range(1, 13))]),  # more than the lanes
        st.integers(0, 12),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops=OPS, max_entries=st.sampled_from([None, 1, 3, 5]), purge_batch=st.integers(1, 3))
def test_same_answers_as_the_model(
    ops: list[tuple[str, str, float | None, int]], max_entries: int | None, purge_batch: int
) -> None:
    clock = FakeClock()
    storage = MemoryStorage(max_entries=max_entries, purge_batch=purge_batch, clock=clock)
    model = Model(max_entries, purge_batch)
    for n, (op, key, seconds, step) in enumerate(ops):
        # A 1/1024 s step before each operation: no two writes ever expire at the same time
        # (TTLs are whole seconds), so "soonest expired first" names one entry.
        now = clock.advance(2**-10)
        value = b"%d" % n
        ttl = None if seconds is None else timedelta(seconds=seconds)
        current = model.live(key, now)
        if op == "wait":
            clock.advance(step)
            continue
        if op == "get":
            assert storage.get(key) == current
            if current is None:
                model.entries.pop(key, None)
        elif op == "set":
            storage.set(key, value, ttl)
            model.store(key, value, seconds, now, adds=True)
        elif op == "create":
            assert storage.create(key, value, ttl) is (current is None)
            if current is None:
                model.store(key, value, seconds, now, adds=True)
        elif op in ("replace", "touch", "replace_if"):
            expected = current if step % 2 and current is not None else b"other"
            if op == "replace":
                done = storage.replace(key, value, ttl)
            elif op == "touch":
                done, value = storage.touch(key, ttl), current or b""
            else:
                done = storage.replace_if(key, expected, value, ttl)
            assert done is (current is not None and (op != "replace_if" or expected == current))
            if done:
                model.store(key, value, seconds, now, adds=False)
        elif op == "delete":
            storage.delete(key)
            model.entries.pop(key, None)
        elif op == "take":
            assert storage.take(key) is (current is not None)
            model.entries.pop(key, None)
        assert len(storage) == len(model.entries)
        now = clock()
        assert list(storage.scan()) == [
            (k, v) for k, (v, exp) in model.entries.items() if exp > now
        ]
        assert storage.count() == sum(exp > now for _, exp in model.entries.values())
    assert storage.purge_expired() == model.purge(clock(), len(model.entries))
    assert len(storage) == len(model.entries)
